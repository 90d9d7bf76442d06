package stepworker

import (
	"errors"

	"github.com/loadpool/loadpool/messages"
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

// permanent marks an error that reloading the image will not fix.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the step answers "fail" (loading again will
// not help). A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// IsPermanent reports whether err (or anything it wraps) was marked
// Permanent.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// OutcomeOf maps a handler's error onto the tri-state reply, in one place:
// nil is ready, Permanent is fail, anything else is retry.
func OutcomeOf(err error) messages.Outcome {
	switch {
	case err == nil:
		return messages.OutcomeReady
	case IsPermanent(err):
		return messages.OutcomeFail
	default:
		return messages.OutcomeRetry
	}
}
