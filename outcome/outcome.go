// Package outcome classifies a step's error into the tri-state reply, in
// one place for both pools: nil is ready, an error marked Permanent is fail,
// anything else is retry. Apart from the outcome, an error may carry a
// short machine reason ("timeout", "not-found") kept beside the human
// sentence in the result's reason field.
//
// Errors of any type give their reason by a method Reason() string; this
// package's WithReason attaches one to an error that has none. Test with
// errors.Is and errors.As; never by the text.
package outcome

import (
	"errors"

	"github.com/loadpool/loadpool/messages"
)

// Machine reasons that more than one package gives.
const (
	ReasonTimeout    = "timeout"
	ReasonNotFound   = "not-found"
	ReasonAuth       = "auth-refused"
	ReasonConfig     = "config"
	ReasonBadRequest = "bad-request"
	ReasonTransient  = "transient"
)

// permanent marks an error that reloading the image will not fix.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the step answers fail (loading again will not
// help). A nil err stays nil.
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

// Of maps a step's error onto the tri-state reply: nil is ready, Permanent
// is fail, anything else is retry.
func Of(err error) messages.Outcome {
	switch {
	case err == nil:
		return messages.OutcomeReady
	case IsPermanent(err):
		return messages.OutcomeFail
	default:
		return messages.OutcomeRetry
	}
}

// reasoned attaches a machine reason to an error.
type reasoned struct {
	reason string
	err    error
}

func (r *reasoned) Error() string  { return r.err.Error() }
func (r *reasoned) Unwrap() error  { return r.err }
func (r *reasoned) Reason() string { return r.reason }

// WithReason attaches the machine reason to err (nil stays nil). The
// outermost reason wins, so a caller can refine what a callee said.
func WithReason(err error, reason string) error {
	if err == nil {
		return nil
	}
	return &reasoned{reason: reason, err: err}
}

// Reason is the machine reason err carries: the first error in its chain
// with a Reason() string method that answers non-empty; "" when none does.
func Reason(err error) string {
	for err != nil {
		if r, ok := err.(interface{ Reason() string }); ok && r.Reason() != "" {
			return r.Reason()
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if s := Reason(e); s != "" {
					return s
				}
			}
			return ""
		default:
			return ""
		}
	}
	return ""
}
