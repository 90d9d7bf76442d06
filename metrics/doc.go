// Package metrics holds loadpool's Prometheus collectors and the HTTP
// server that exposes them in the text format.
//
// There is one set of collectors per process (Default's registry): the
// coordinator and the step runtime call the one-line hooks below
// (StepApplied, Retry, InFlight, LeaseRenewed, ...) and never see a
// collector. Hooks never block and never fail; a process that serves no
// metrics pays a map lookup per hook.
//
// Jobs by state and computers by state are not counted as they change:
// they are read at scrape time from the coordinator's in-memory indexes
// (AddSource). With no coordinator in the process they are absent; with
// several (tests) the first one added answers, since they all see the
// same buckets.
//
// Serve listens on one address (loopback unless told otherwise) and
// serves /metrics; Close stops it.
package metrics
