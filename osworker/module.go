package osworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/loadpool/loadpool/outcome"
	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/nats-io/nats.go"
)

// Module is one OS family's post-load logic.
type Module interface {
	// Family is the OS family (the pool: postload.request.<family>).
	Family() string
	// Profile is the module's own built-in wait profile for req (its rows
	// of design.md's table). Operator and image overrides and the attempt
	// factor are applied by the runtime afterwards. A module with no row
	// for its family is refused at start (CheckModule).
	Profile(req messages.Request) messages.WaitProfile
	// PostLoad waits for the computer and configures it. Its error is
	// classified by outcome.Of: nil ready, Permanent fail,
	// anything else retry. detail is the human sentence of a success.
	PostLoad(ctx context.Context, req messages.Request, env *Env) (detail string, err error)
}

// Clock is the time source of the wait helpers; tests may move it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// PowerFunc performs a power action on the step's computer.
type PowerFunc func(ctx context.Context, action string, evidence bool) (messages.PowerReply, error)

// Env is what a module gets for one step.
type Env struct {
	// Profile is the effective wait profile: built-in, then the operator's
	// file, then image.wait_profile, then ForAttempt(req.Attempt).
	Profile  messages.WaitProfile
	Progress progress.Progress
	// Dialer and Target reach the computer (Dial combines them).
	Dialer control.Dialer
	Target control.Target
	Clock  Clock
	Logger *slog.Logger
	// PowerFn is what Power calls; the runtime sets it to a request on
	// Subjects.Power(provisioner).
	PowerFn PowerFunc
}

// Dial opens a connection to the step's computer.
func (e *Env) Dial(ctx context.Context) (control.Conn, error) {
	return e.Dialer.Dial(ctx, e.Target)
}

// Power asks the loader of the computer's provisioner to perform action
// (messages.PowerReset, ...); evidence asks it to save the screen.
func (e *Env) Power(ctx context.Context, action string, evidence bool) (messages.PowerReply, error) {
	if e.PowerFn == nil {
		return messages.PowerReply{}, errors.New("no power control for this computer")
	}
	return e.PowerFn(ctx, action, evidence)
}

// Event reports progress (a job event).
func (e *Env) Event(format string, args ...any) {
	if e.Progress != nil {
		e.Progress.Event(fmt.Sprintf(format, args...))
	}
}

func (e *Env) clock() Clock {
	if e.Clock == nil {
		return realClock{}
	}
	return e.Clock
}

// EffectiveProfile is the profile a step runs with: m's built-in profile,
// the operator's overrides, the image's wait_profile, then the attempt
// factor. An image override that does not fit is a Permanent error.
func EffectiveProfile(m Module, ov Overrides, req messages.Request) (messages.WaitProfile, error) {
	p, err := ov.Apply(m.Profile(req), req.Image, req.Computer.Type)
	if err != nil {
		return p, outcome.Permanent(err)
	}
	if raw := req.Image.WaitProfile; len(raw) > 0 && string(raw) != "null" {
		np, err := messages.DecodeProfileOverride(raw, p)
		if err != nil {
			return p, outcome.Permanent(fmt.Errorf("image.wait_profile: %w", err))
		}
		p = np
	}
	if err := p.Validate(); err != nil {
		return p, outcome.Permanent(fmt.Errorf("wait profile %s: %w", p.Name, err))
	}
	return p.ForAttempt(req.Attempt), nil
}

// TargetOf is the control target of a request: the enrolled address,
// the enrolled host keys (pinned, or learned after the last reimage) and a
// fresh store of its own for the key this step may learn (see
// control.HostKeyPolicy; LearnedKey reads it back).
func TargetOf(req messages.Request) control.Target {
	pol := control.HostKeyPolicy{Pinned: req.Computer.HostKey, JobID: req.JobID,
		Attempt: req.Attempt, Reloaded: req.Reloaded, Step: &control.MemHostKeys{}}
	if l := req.Computer.LearnedHostKey; l != nil {
		pol.Learned = &control.HostKeyRecord{Key: l.Key, JobID: l.JobID, Attempt: l.Attempt, Recorded: l.Recorded}
	}
	return control.Target{Address: req.Computer.SSHAddress(), Computer: req.Computer.Name, HostKey: pol,
		Control: req.Computer.Control, Attributes: req.Computer.Attributes}
}

// LearnedKey is the host key the step of t learned (nil: none, because the
// enrolment's key was expected or the computer never answered).
func LearnedKey(ctx context.Context, t control.Target) *messages.LearnedHostKey {
	if t.HostKey.Step == nil {
		return nil
	}
	rec, _, err := t.HostKey.Step.Get(ctx, t.Computer)
	if err != nil {
		return nil
	}
	return &messages.LearnedHostKey{Key: rec.Key, JobID: rec.JobID, Attempt: rec.Attempt, Recorded: rec.Recorded}
}

// NATSPower returns a PowerFunc that calls Subjects.Power(provisioner)
// with a deadline of timeout per request.
func NATSPower(nc *nats.Conn, s messages.Subjects, req messages.Request, timeout time.Duration) PowerFunc {
	job, attempt, computer := req.JobID, req.Attempt, req.Computer // not the whole request: a step holds this for its wait
	return func(ctx context.Context, action string, evidence bool) (messages.PowerReply, error) {
		body := messages.Encode(messages.PowerRequest{JobID: job, Attempt: attempt,
			Computer: computer, Action: action, Evidence: evidence})
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		msg, err := nc.RequestWithContext(ctx, s.Power(computer.Provisioner), body)
		if err != nil {
			return messages.PowerReply{}, fmt.Errorf("power %s of %s through %s: %w", action, computer.Name, s.Power(computer.Provisioner), err)
		}
		return decodePowerReply(msg)
	}
}

func decodePowerReply(msg *nats.Msg) (messages.PowerReply, error) {
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
		var eb messages.ErrorBody
		_ = messages.Decode(msg.Data, &eb, false)
		return messages.PowerReply{}, fmt.Errorf("power endpoint refused (%s): %s", code, eb.Error)
	}
	var r messages.PowerReply
	if err := messages.Decode(msg.Data, &r, false); err != nil {
		return r, fmt.Errorf("power endpoint's reply: %w", err)
	}
	return r, nil
}
