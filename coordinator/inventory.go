package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
)

// Refusals of the inventory, mapped onto reply codes by apiError.
var (
	// errUnknownComputer: no enrolment of that name (404).
	errUnknownComputer = errors.New("computer not enrolled")
	// errComputerState: the computer's state forbids the change (409).
	errComputerState = errors.New("computer state")
)

// maxComputerReason bounds the reason kept in an enrolment.
const maxComputerReason = 512

func notEnrolled(name string) error {
	return fmt.Errorf("%w: computer %s is not enrolled: enrol it first (loadpool computer add %s --provisioner P --type T, or %s)",
		errUnknownComputer, name, name, "vcl.computer.add")
}

func stateRefusal(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errComputerState, fmt.Sprintf(format, args...))
}

// readComputer returns a computer's enrolment and KV revision, from the
// stream leader (a compare-and-set loop must see the last write).
func (c *Coordinator) readComputer(ctx context.Context, name string) (messages.Enrollment, uint64, error) {
	e, rev, err := readJSON[messages.Enrollment](ctx, c, c.sub.InventoryBucket(), name, func() error { return notEnrolled(name) })
	if err == nil {
		c.inv.put(e, rev)
	}
	return e, rev, err
}

// writeComputer stores e with a compare-and-set on rev (0: create).
func (c *Coordinator) writeComputer(ctx context.Context, e messages.Enrollment, rev uint64) (uint64, error) {
	data := messages.Encode(e)
	c.inv.own.expect(e.Name, data, e)
	defer c.inv.own.settled(e.Name, data)
	nrev, err := c.putCAS(ctx, c.inventory, e.Name, data, rev)
	if err != nil {
		return 0, err
	}
	c.inv.putSized(e, nrev, len(data))
	return nrev, nil
}

// change is one decision about a computer: the enrolment after it and the
// event's sentence ("" for no change).
type change func(e messages.Enrollment) (messages.Enrollment, string, error)

// changeComputer applies f to the latest enrolment with compare-and-set,
// re-reading and re-deciding on a lost race, and publishes the event of
// the change on vcl.event.computer.<name>. A refusal of f is returned as
// is, with the enrolment as it stands.
func (c *Coordinator) changeComputer(ctx context.Context, name string, f change) (messages.Enrollment, error) {
	e, ev, err := c.changeComputerAsync(ctx, name, false, f)
	c.settle(ctx, ev)
	return e, err
}

// changeComputerAsync is changeComputer with the event left in flight
// for the caller to settle. fromIndex decides first on the index's copy
// of the enrolment: a won compare-and-set proves the copy was current;
// a lost one, a refusal or no change is decided again on the leader's.
func (c *Coordinator) changeComputerAsync(ctx context.Context, name string, fromIndex bool, f change) (messages.Enrollment, pending, error) {
	for round := range maxCASRounds {
		it, ok := c.inv.item(name)
		first := fromIndex && round == 0 && ok
		e, rev := it.e, it.rev
		if !first {
			var err error
			if e, rev, err = c.readComputer(ctx, name); err != nil {
				return e, pending{}, err
			}
		}
		next, msg, err := f(e)
		if first && (err != nil || msg == "") {
			continue // decided on a copy that may be behind: ask the leader
		}
		if err != nil || msg == "" {
			return e, pending{}, err
		}
		next.Name = e.Name
		nrev, err := c.writeComputer(ctx, next, rev)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return e, pending{}, err
		}
		return next, c.computerEvent(next, msg, nrev), nil
	}
	return messages.Enrollment{}, pending{}, fmt.Errorf("computer %s: gave up after %d lost compare-and-set rounds", name, maxCASRounds)
}

// computerEvent publishes one change of a computer (deduplicated by the
// enrolment's revision); a failure is logged by settle: the enrolment is
// the truth.
func (c *Coordinator) computerEvent(e messages.Enrollment, msg string, rev uint64) pending {
	ev := messages.ComputerEvent{Computer: e.Name, Time: time.Now().UTC(), State: e.State, Job: e.Job,
		Tainted: e.Tainted, Source: c.cfg.Name, Message: msg}
	m := &nats.Msg{Subject: c.sub.ComputerEvent(e.Name), Data: messages.Encode(ev)}
	c.log.Info("computer "+msg, "computer", e.Name, "state", e.State, "job", e.Job, "tainted", e.Tainted)
	return c.emit(m, fmt.Sprintf("computer.%s.%d", e.Name, rev))
}

// refusal is why a job naming ref cannot have the enrolled computer e: a
// field that differs (400) or maintenance (409); nil when it can.
func refusal(e messages.Enrollment, ref messages.Computer) error {
	if field, detail := ref.Differs(e.Computer); field != "" {
		return badInput(fmt.Errorf("computer.%s: %s; a job names an enrolled computer and nothing else about it (\"computer\": %q)", field, detail, ref.Name))
	}
	if e.State == messages.ComputerMaintenance {
		return stateRefusal("computer %s is in maintenance (%s) since %s: no new job until an operator undrains it (loadpool computer undrain %s)",
			e.Name, orNone(e.Reason), e.Since.Format(time.RFC3339), e.Name)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// forceReload: the computer is tainted, or not known to run image after a
// post-load, so its load must reimage it whatever the job's reload says.
func forceReload(e messages.Enrollment, image string) bool {
	return e.Tainted || e.Image != image
}

// jobEnded records how a job left its computer, which frees it: ready
// hands it to the
// reservation (inuse, tainted, the image, the host key learned); failed and
// canceled leave it tainted with an unknown image. A drained computer
// stays in maintenance. It changes nothing when another job holds the
// computer meanwhile.
func (c *Coordinator) jobEnded(ctx context.Context, rec messages.JobRecord) error {
	ev, err := c.jobEndedAsync(ctx, rec)
	c.settle(ctx, ev)
	return err
}

// jobEndedAsync is jobEnded with the event left in flight.
func (c *Coordinator) jobEndedAsync(ctx context.Context, rec messages.JobRecord) (pending, error) {
	name := computerOf(rec).Name
	_, ev, err := c.changeComputerAsync(ctx, name, true, func(e messages.Enrollment) (messages.Enrollment, string, error) {
		return endTransition(e, rec, time.Now().UTC())
	})
	if errors.Is(err, errUnknownComputer) {
		return ev, nil // removed meanwhile, or a record from before the inventory
	}
	if err != nil {
		c.log.Warn("computer state not updated yet (the sweeper repairs it)", "computer", name, "job", rec.ID, "err", err)
	}
	return ev, err
}

// endTransition is jobEnded's decision as a pure function.
func endTransition(e messages.Enrollment, rec messages.JobRecord, now time.Time) (messages.Enrollment, string, error) {
	if h := heldJob(e); h != "" && h != rec.ID {
		return e, "", nil // another job holds it now
	}
	if computerOf(rec).Name != e.Name {
		return e, "", nil // the record is of another computer
	}
	if e.Job != rec.ID && e.Job != "" && !e.Since.Before(rec.Created) {
		// A later job's hold or end is recorded (a repeated end, e.g. a
		// redelivered result's effects): this end is old news. An older
		// job's state (this job's hold was lost) is still overwritten.
		return e, "", nil
	}
	if e.Job == rec.ID && e.State != messages.ComputerReloading && e.State != messages.ComputerMaintenance {
		return e, "", nil // already recorded
	}
	if e.Job == rec.ID && e.JobEnded != "" {
		return e, "", nil // already recorded (drained computers too)
	}
	state, reason := "", e.Reason
	switch rec.State {
	case messages.StateReady:
		state = messages.ComputerInUse
		e.Image, e.Tainted, e.Reason = rec.Spec.Image.Name, true, ""
		if k := newestLearnedKey(rec); k != nil && e.HostKey == "" {
			e.LearnedHostKey = k
		}
	case messages.StateFailed:
		state = messages.ComputerFailed
		e.Image, e.Tainted, e.Reason = "", true, truncateReason(rec.Error)
	default: // canceled: maybe half-loaded
		state = messages.ComputerAvailable
		e.Image, e.Tainted, e.Reason = "", true, ""
	}
	if e.State == messages.ComputerMaintenance {
		e.Reason = reason // drained: the operator's reason stays
	} else {
		e.State = state
	}
	e.Job, e.JobEnded, e.Since = rec.ID, rec.State, now
	return e, fmt.Sprintf("job %s ended %s", rec.ID, rec.State), nil
}

func truncateReason(s string) string {
	if len(s) <= maxComputerReason {
		return s
	}
	return s[:maxComputerReason] + "…"
}

// computerOf is the computer a job's requests go to: the enrolment the
// record keeps (the spec's own object for records from before the
// inventory).
func computerOf(rec messages.JobRecord) messages.Computer {
	if rec.Enrolled != nil {
		return *rec.Enrolled
	}
	return rec.Spec.Computer
}
