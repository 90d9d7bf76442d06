package stepworker

import (
	"errors"
)

// Causes with which the runtime cancels a step's context, so a handler (and
// the runtime) can tell why it must stop. None of them uses up an attempt.
var (
	// ErrShutdown: the worker process is stopping; the request goes back to
	// the pool at once.
	ErrShutdown = errors.New("worker is shutting down")
	// ErrAborted: the coordinator abandoned this attempt or the job was
	// canceled (vcl.abort.<job_id>); the request is removed.
	ErrAborted = errors.New("work aborted by the coordinator")
	// ErrLeaseLost: the worker could not extend its lease (AckWait) in time,
	// so another worker may already hold the request; this one gives it up
	// without reporting.
	ErrLeaseLost = errors.New("lease on the request lost")
)
