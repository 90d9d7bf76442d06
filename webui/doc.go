// Package webui is the operators' web page the coordinator process
// serves: a live list of jobs and computers, and a job page with the
// timeline of its attempts and steps.
//
// It is a client of the coordinator like any other: it reads through the
// micro endpoints (job.list, job.get, computer.list) and follows the
// events on <prefix>.event.> with one core NATS subscription that it fans
// out to the browsers as server-sent events. It holds no state of its
// own, so any coordinator process may serve it.
//
// Routes: / (jobs and computers), /job/{id} (the timeline), /api/jobs,
// /api/computers, /api/job/{id} (the record and its timeline as JSON),
// /api/events[?job=ID] (text/event-stream) and /evidence/{name...} (an
// object of the evidence bucket, when Config.Evidence is set). The assets
// are embedded; nothing is fetched at build or run time.
//
// Serve listens (127.0.0.1 unless told otherwise) until Stop, which ends
// the event streams and waits for requests in progress (5s at most).
package webui
