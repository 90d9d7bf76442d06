// Package stepworker is the fetch-and-lease runtime that loader workers
// and OS workers share ([Runtime]): it binds a pool's durable consumer
// (package pool), pulls the pool's requests, keeps each one's lease, runs
// a [Handler] and publishes its result, whose outcome and reason come from
// the handler's error (package outcome).
//
// It lives apart from loaderworker and osworker because both need exactly
// the same lease and report rules, and it must not depend on SSH
// (invariant 7: provisioners never do). The coordinator does not import
// it: what both sides share is in the leaf packages pool, outcome and
// progress.
//
// # Contract
//
// [Runtime.Start] returns once the consumer is bound and the
// fetch loop runs. A handler runs in its own goroutine with a context that
// is cancelled with a cause: ErrShutdown (Stop's grace ran out),
// ErrAborted (vcl.abort.<job_id>), ErrLeaseLost (the lease could not be
// renewed), or the request's deadline. Stop is idempotent and two-phase:
// stop fetching, let running steps finish for the grace period, then
// cancel them; their requests go back to the pool without using an attempt.
package stepworker
