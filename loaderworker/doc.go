// Package loaderworker is the runtime of a loader pool: one process serves
// one provisioner (vmware, xcat, lab, ...). It pulls load requests from the
// pool's durable consumer (loader-<provisioner> on VCL_LOAD) through
// stepworker.Runtime, runs the Provisioner's Load with the request's lease
// kept alive, publishes the tri-state result and progress events, and
// answers the power endpoint vcl.power.<provisioner> that OS workers call
// when a boot hangs.
//
// # Power is owned
//
// The power endpoint serves only the job that holds the computer: a
// request must carry job_id and attempt; the worker reads that job's
// record from the coordinator's KV bucket <prefix>_jobs (bound read-only,
// never created; read through the stream leader, not a direct get, so it
// never follows a state the job has left) and requires state
// postloading, record.Attempt == request.Attempt, and the request's
// computer name equal to the record's enrolled computer (Enrolled, or
// Spec.Computer for records written before the inventory). The
// Provisioner then gets the record's computer, never the request's other
// fields, so no caller can redirect power to other placement. A refusal
// is a micro error with a JSON {"error": "..."} body: 403 (no job_id,
// unknown job, no jobs bucket, a computer the job does not hold or of
// another provisioner), 409 (the job is not in its post-load, or the
// attempt is not its current one), 503 (the record could not be read).
//
// A Provisioner only puts the image on the computer and starts it: it never
// waits for the OS and never speaks SSH (go list -deps ./loaderworker/...
// has no golang.org/x/crypto/ssh; a test proves it).
//
// Start returns once the consumer is bound and the power endpoint answers.
// Stop is idempotent: it stops the power endpoint, then stops the runtime in
// two phases (drain for the grace period, then cancel with
// stepworker.ErrShutdown so the request returns to the pool).
package loaderworker
