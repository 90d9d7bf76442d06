package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errBusy: the computer is held by another live job.
var errBusy = errors.New("computer busy")

// heldJob is the job that holds the computer e describes ("" when it is
// free). The enrolment is the computer's lock: a job holds it from the
// compare-and-set that marks it held (reloading, or maintenance when it
// was drained meanwhile) until the one that records its end (job_ended),
// so two jobs can never hold one computer and the next job always sees
// how the last one left it (invariant 8).
func heldJob(e messages.Enrollment) string {
	if e.Job == "" || e.JobEnded != "" || (e.State != messages.ComputerReloading && e.State != messages.ComputerMaintenance) {
		return ""
	}
	return e.Job
}

// held is the enrolment e held by job id from now.
func held(e messages.Enrollment, id string, now time.Time) messages.Enrollment {
	if e.State != messages.ComputerMaintenance {
		e.State, e.Reason = messages.ComputerReloading, ""
	}
	e.Job, e.JobEnded, e.Since = id, "", now
	return e
}

// holdChange is the decision to hold the computer for job id. check, when
// set, may refuse the enrolment (the job is then not held). The same job
// holding it already is no change; another live job holding it is
// errBusy; a holder that has ended (its end not recorded: a crash), or
// that has no record although it is older than repairAfter (a submit that
// died), is taken over, its end recorded in the same write (a holder
// whose record names another computer, or none, leaves it tainted, its
// image unknown). *out says what the last decision did.
func (c *Coordinator) holdChange(ctx context.Context, id string, check func(messages.Enrollment) error, out *holdOutcome) change {
	return func(e messages.Enrollment) (messages.Enrollment, string, error) {
		*out = holdOutcome{before: e}
		if check != nil {
			if err := check(e); err != nil {
				return e, "", err
			}
		}
		now := time.Now().UTC()
		msg := "held by job " + id
		switch holder := heldJob(e); holder {
		case id:
			return e, "", nil
		case "":
		default:
			rec, ended := c.endedHolder(ctx, holder, e.Since)
			if !ended {
				return e, "", c.busy(ctx, e.Name, holder)
			}
			if rec != nil && computerOf(*rec).Name == e.Name {
				if end, m, _ := endTransition(e, *rec, now); m != "" {
					e, msg = end, m+"; "+msg
				}
			} else {
				e.Image, e.Tainted = "", true
				msg = "freed: job " + holder + " has no record of it; " + msg
			}
			c.log.Debug("taking over the computer of an ended job", "computer", e.Name, "holder", holder, "job", id)
		}
		out.changed = true
		return held(e, id, now), msg, nil
	}
}

// holdOutcome is what a hold decided: whether it changed the enrolment,
// and the enrolment it decided on (what unhold gives back).
type holdOutcome struct {
	changed bool
	before  messages.Enrollment
}

// holdComputer holds the computer for job id (the sweeper's repairs),
// deciding first on the index's copy, and returns the enrolment held.
func (c *Coordinator) holdComputer(ctx context.Context, name, id string) (messages.Enrollment, error) {
	var out holdOutcome
	e, ev, err := c.changeComputerAsync(ctx, name, true, c.holdChange(ctx, id, nil, &out))
	c.settle(ctx, ev)
	return e, err
}

// startedHold is a hold's compare-and-set in flight (sent false: nothing
// was sent, finishHold decides on the leader's enrolment).
type startedHold struct {
	p    pending
	prev messages.Enrollment
	next messages.Enrollment
	data []byte
	sent bool
}

// startHold decides the hold of job id on it, the index's copy of the
// enrolment (which the caller's check accepted), and sends its
// compare-and-set without waiting: submit sends it together with the
// job's record. Nothing is sent when the copy is not free (a lost race, a
// takeover or a resubmission: finishHold reads and decides again).
func (c *Coordinator) startHold(it invItem, id string) startedHold {
	if it.rev == 0 || heldJob(it.e) != "" {
		return startedHold{prev: it.e}
	}
	next := held(it.e, id, time.Now().UTC())
	data := messages.Encode(next)
	c.inv.own.expect(next.Name, data, next)
	p := c.publish("hold of computer "+next.Name, &nats.Msg{Subject: "$KV." + c.sub.InventoryBucket() + "." + next.Name, Data: data},
		jetstream.WithExpectLastSequencePerSubject(it.rev))
	return startedHold{p: p, prev: it.e, next: next, data: data, sent: true}
}

// finishHold completes startHold: the enrolment held, with its event in
// flight, and the enrolment the hold was decided on (before). A lost
// compare-and-set (the copy was behind), or nothing sent, decides again
// on the leader's enrolment.
func (c *Coordinator) finishHold(ctx context.Context, h startedHold, name, id string, check func(messages.Enrollment) error) (e, before messages.Enrollment, ev pending, taken bool, err error) {
	if h.sent {
		ack, err := h.p.wait(ctx)
		defer c.inv.own.settled(name, h.data)
		if err == nil {
			c.inv.putSized(h.next, ack.Sequence, len(h.data))
			return h.next, h.prev, c.computerEvent(h.next, "held by job "+id, ack.Sequence), true, nil
		}
		if !isWrongLastSeq(err) {
			return h.prev, h.prev, pending{}, false, fmt.Errorf("hold computer %s in KV: %w", name, err)
		}
	}
	var out holdOutcome
	e, ev, err = c.changeComputerAsync(ctx, name, false, c.holdChange(ctx, id, check, &out))
	return e, out.before, ev, err == nil && out.changed, err
}

// unhold gives back a computer that job id took but may not keep (its
// record could not be created): the enrolment as it was before, if id
// still holds it since then.
func (c *Coordinator) unhold(ctx context.Context, name, id string, prev, took messages.Enrollment) {
	_, err := c.changeComputer(ctx, name, func(e messages.Enrollment) (messages.Enrollment, string, error) {
		if heldJob(e) != id || !e.Since.Equal(took.Since) {
			return e, "", nil
		}
		e.State, e.Reason, e.Job, e.JobEnded, e.Since = prev.State, prev.Reason, prev.Job, prev.JobEnded, prev.Since
		return e, "hold of job " + id + " withdrawn", nil
	})
	if err != nil && !errors.Is(err, errUnknownComputer) {
		c.log.Warn("computer of a refused job not given back yet (the sweeper frees it)", "computer", name, "job", id, "err", err)
	}
}

// endedHolder: the holder job has ended (its record, nil when it has
// none), or has no record although it took the computer more than the
// repair delay ago (a submit that died half-way).
func (c *Coordinator) endedHolder(ctx context.Context, holder string, since time.Time) (*messages.JobRecord, bool) {
	rec, _, err := c.read(ctx, holder)
	switch {
	case err == nil:
		return &rec, messages.Terminal(rec.State)
	case errors.Is(err, errUnknownJob):
		return nil, time.Since(since) > c.repairAfter()
	}
	return nil, false
}

func (c *Coordinator) busy(ctx context.Context, name, holder string) error {
	state := "unknown state"
	if rec, _, err := c.read(ctx, holder); err == nil {
		state = "state " + rec.State
	}
	return fmt.Errorf("%w: computer %s is busy: job %s holds it (%s); wait for that job to end or cancel it", errBusy, name, holder, state)
}

func isRevisionErr(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// repairAfter is how old a queued job or a computer held by a job with no
// record must be before the sweeper repairs it: longer than any submit
// takes.
func (c *Coordinator) repairAfter() time.Duration {
	return min(30*time.Second, max(c.cfg.StepCap/2, time.Second))
}
