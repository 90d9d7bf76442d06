// Package stepworker is the machinery that loader workers and OS workers
// share: the JetStream streams and pool consumers both sides create
// (Topology, PoolConsumer), the runtime that pulls a pool's requests, keeps
// each one's lease, runs a handler and publishes its result (Runtime), and
// the one place where a handler's error becomes the tri-state reply
// (OutcomeOf, Permanent).
//
// It lives apart from loaderworker and osworker because both need exactly
// the same lease and report rules, and it must not depend on SSH
// (invariant 7: provisioners never do).
//
// Contract of Runtime: Start returns once the consumer is bound and the
// fetch loop runs. A handler runs in its own goroutine with a context that
// is cancelled with a cause: ErrShutdown (Stop's grace ran out),
// ErrAborted (vcl.abort.<job_id>), ErrLeaseLost (the lease could not be
// renewed), or the request's deadline. Stop is idempotent and two-phase:
// stop fetching, let running steps finish for the grace period, then
// cancel them; their requests go back to the pool without using an attempt.
package stepworker
