package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/metrics"
	"github.com/loadpool/loadpool/pool"
)

// sweeper is the one goroutine that enforces the safety cap, dispatches
// first loads a crashed submit left behind, and frees computers held by
// jobs that ended or were never recorded. It
// works from the in-memory index and decides only on records read from
// KV, with compare-and-set, so several coordinators may sweep at once.
//
// It sweeps at once when it starts, then when the next thing falls due
// (a step's deadline, an undispatched job relaunchAfter after its last
// change, a computer held by no live job repairAfter after it was held),
// at most every sweepGap and at least every SweepInterval: a coordinator
// that is restarted every few seconds still repairs.
func (c *Coordinator) sweeper(ctx context.Context) {
	gap := c.sweepGap()
	t := time.NewTimer(0)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.index.wake:
			t.Reset(max(time.Until(c.index.armedAt()), time.Until(last.Add(gap)), 0))
			continue
		case <-t.C:
		}
		c.sweep(ctx)
		last = time.Now()
		next := c.index.schedule(last, last.Add(gap), last.Add(c.cfg.SweepInterval), c.heldDue())
		t.Reset(time.Until(next))
	}
}

// sweepGap is the least time between two sweeps: what a repair that
// keeps failing (KV unreachable) costs.
func (c *Coordinator) sweepGap() time.Duration { return min(c.cfg.SweepInterval, time.Second) }

// relaunchAfter is how long after its record the sweeper makes sure a
// job's first load went out. That is idempotent: the load's Msg-Id
// <job>.1.load deduplicates a second dispatch (and the compare-and-set
// from queued lets one writer win), so a relaunch that races a slow
// submit's own dispatch costs a request, never a second load; the delay
// only spares that work in the common case (a submit dispatches within
// milliseconds, and a load that answers within the delay is never sent
// again).
func (c *Coordinator) relaunchAfter() time.Duration { return min(time.Second, c.repairAfter()) }

// heldDue is when the first computer held by a job the index does not
// hold live falls due (zero: none): repairAfter after it was
// marked held.
func (c *Coordinator) heldDue() time.Time {
	after := c.repairAfter()
	var next time.Time
	c.inv.mu.Lock()
	defer c.inv.mu.Unlock()
	for _, it := range c.inv.items {
		e := it.e
		if job := heldJob(e); job == "" || c.index.isLive(job) {
			continue
		}
		if t := e.Since.Add(after); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

func (c *Coordinator) sweep(ctx context.Context) {
	now := time.Now().UTC()
	overdue, stuck := c.index.due(now)
	for _, id := range overdue {
		if ctx.Err() != nil {
			return
		}
		if err := c.capStep(ctx, id, now); err != nil {
			c.log.Warn("safety cap not applied yet", "job", id, "err", err)
		}
	}
	for _, id := range stuck {
		if ctx.Err() != nil {
			return
		}
		if err := c.relaunch(ctx, id, now); err != nil {
			c.log.Warn("first load of a job not dispatched yet", "job", id, "err", err)
		}
	}
	c.repairInventory(ctx, now)
}

// capStep applies a synthetic retry to a step that ran past its deadline,
// and aborts the attempt for the workers.
func (c *Coordinator) capStep(ctx context.Context, id string, now time.Time) error {
	rec, _, err := c.read(ctx, id)
	if errors.Is(err, errUnknownJob) {
		return nil
	}
	if err != nil {
		return err
	}
	if messages.Terminal(rec.State) || rec.StepDeadline.IsZero() || rec.StepDeadline.After(now) {
		return nil
	}
	step := currentStep(rec)
	res := messages.Result{JobID: id, Attempt: rec.Attempt, Step: step, Outcome: messages.OutcomeRetry,
		Detail: fmt.Sprintf("no %s result within the coordinator's safety cap of %s", step, c.cfg.StepCap),
		Reason: "step-cap", Worker: c.cfg.Name, Started: rec.Updated, Finished: now}
	applied, err := c.apply(ctx, res, false)
	if applied {
		metrics.Repaired("step-cap")
		c.abort(ctx, id, res.Attempt, res.Detail)
		c.log.Warn("step ran past the safety cap", "job", id, "attempt", res.Attempt, "step", step)
	}
	return err
}

// relaunch dispatches the first load of a job whose submit may have died
// before it did: a queued record (launched and marked loading), or a
// fresh one (loading at attempt 1 with no step), whose load is sent again
// with its Msg-Id: within pool.DuplicateWindow of the first dispatch
// JetStream drops the repeat, so the sweeper checks each fresh job once,
// and only while its record is younger than half that window (later, the
// step cap retries it). Either way the job runs only once it holds its
// computer (the hold went out with its record).
func (c *Coordinator) relaunch(ctx context.Context, id string, now time.Time) error {
	// The leader's record: a copy could hide a cancel, and the job would
	// hold its computer again.
	rec, rev, err := c.read(ctx, id)
	if errors.Is(err, errUnknownJob) {
		return nil
	}
	if err != nil {
		return err
	}
	fresh := isFresh(rec.State, rec.Attempt, len(rec.Steps))
	switch {
	case rec.State != messages.StateQueued && !fresh:
		c.index.checked(id)
		return nil
	case rec.Updated.After(now.Add(-c.relaunchAfter())):
		return nil
	case fresh && now.Sub(rec.Updated) > pool.DuplicateWindow/2:
		c.index.checked(id) // too late to send again safely: the step cap retries it
		return nil
	}
	name := computerOf(rec).Name
	it, ok := c.inv.item(name)
	e := it.e
	if !ok || heldJob(e) != id {
		if e, err = c.holdComputer(ctx, name, id); errors.Is(err, errBusy) {
			if rec.Updated.After(now.Add(-c.repairAfter())) {
				return nil // its submit may still be on its way: it refuses the job itself
			}
			return c.lostLock(ctx, rec, rev, err)
		} else if err != nil {
			return err
		}
	}
	// The record's force-reload was decided on the enrolment its submit
	// saw, which may have been behind (the submit rewrites it once its
	// hold is decided on the leader's, and may have died first): decide
	// again on the held enrolment, which keeps the last job's taint and
	// image (nothing changes them while the job holds it).
	if forceReload(e, rec.Spec.Image.Name) && !rec.ForceReload {
		next := rec
		next.ForceReload = true
		if rev, err = c.write(ctx, next, rev); err != nil {
			return err // a conflict: it moved on; the next sweep sees
		}
		rec = next
	}
	if !fresh {
		c.log.Info("launching a job a submit left queued", "job", id)
		metrics.Repaired("relaunch")
		_, err = c.launch(ctx, rec, rev)
		return err
	}
	repeated, err := c.firstLoad(ctx, rec)
	if err != nil {
		return err
	}
	c.reabortIfEnded(ctx, id)
	c.index.checked(id)
	if !repeated {
		c.log.Info("dispatched the first load of a job its submit left undispatched", "job", id)
		metrics.Repaired("relaunch")
	}
	return nil
}

// lostLock ends a job whose submit died before it had its computer (and
// before its first load), which another job holds now: failed, the
// computer untouched.
func (c *Coordinator) lostLock(ctx context.Context, rec messages.JobRecord, rev uint64, busy error) error {
	next := rec
	next.State, next.Updated, next.StepDeadline = messages.StateFailed, time.Now().UTC(), time.Time{}
	next.Error = fmt.Sprintf("its submit did not complete and the computer went to another job meanwhile (%v): submit it again", busy)
	if _, err := c.write(ctx, next, rev); err != nil {
		if errors.Is(err, errConflict) {
			return nil // it moved on meanwhile
		}
		return err
	}
	metrics.Repaired("lost-lock")
	c.abort(ctx, rec.ID, 0, next.Error) // a first load may be out already
	c.log.Warn("a job its submit left without its computer failed", "job", rec.ID, "computer", computerOf(rec).Name)
	c.settle(ctx, c.event(next, "", next.Error, rec.ID+".lost-lock"))
	return nil
}

// repairInventory makes every computer's state agree with the job records
// after a crash between a record's write and the inventory's: a live job's
// computer is held by it, and a computer held by a job that has ended (or
// was never recorded) gets that end. Only mismatches seen in the indexes
// are read and changed, with compare-and-set.
func (c *Coordinator) repairInventory(ctx context.Context, now time.Time) {
	// A job that changed within settleGrace is left to its writer, whose
	// inventory write follows the record's.
	settled := now.Add(-settleGrace)
	for id, e := range c.index.live() {
		it, ok := c.inv.item(e.computer)
		if !ok || heldJob(it.e) == id || e.undispatched() || e.updated.After(settled) {
			continue
		}
		// An undispatched job is the relaunch's; a job past its first
		// load always held its computer, unless an operator's change or a
		// lost write took that away.
		if rec, _, err := c.read(ctx, id); err == nil && !messages.Terminal(rec.State) && rec.State != messages.StateQueued {
			c.log.Info("repairing the inventory: the computer of a live job is held by it", "computer", e.computer, "job", id)
			metrics.Repaired("inventory")
			if _, err := c.holdComputer(ctx, e.computer, id); err != nil {
				c.log.Warn("computer not held by its live job", "computer", e.computer, "job", id, "err", err)
			}
		}
	}
	for name, id := range c.inv.held() {
		if c.index.isLive(id) || c.index.endedSince(id, settled) {
			continue
		}
		rec, _, err := c.read(ctx, id)
		switch {
		case err == nil && messages.Terminal(rec.State) && computerOf(rec).Name == name:
			c.log.Info("repairing the inventory: the computer's job has ended", "computer", name, "job", id, "state", rec.State)
			metrics.Repaired("inventory")
			_ = c.jobEnded(ctx, rec)
		case errors.Is(err, errUnknownJob), err == nil && computerOf(rec).Name != name:
			// No record of this job on this computer (a submit that died,
			// or a resubmitted id that names another computer).
			c.unheld(ctx, name, id, now)
		}
	}
}

// settleGrace is how long the sweeper leaves a job's computer to the
// coordinator that just wrote the job's record (its inventory write comes
// right after, each bounded by opTimeout).
const settleGrace = opTimeout / 2

// unheld frees a computer held by a job that has no record of it
// (expired, a submit that died, or an id resubmitted for another
// computer): available (or still in maintenance) and tainted, its image
// unknown, the job recorded as canceled.
func (c *Coordinator) unheld(ctx context.Context, name, id string, now time.Time) {
	freed := false
	_, err := c.changeComputer(ctx, name, func(e messages.Enrollment) (messages.Enrollment, string, error) {
		freed = false
		if heldJob(e) != id || e.Since.After(now.Add(-c.repairAfter())) {
			return e, "", nil
		}
		freed = true
		if e.State != messages.ComputerMaintenance {
			e.State = messages.ComputerAvailable
		}
		e.Image, e.Tainted, e.JobEnded, e.Since = "", true, messages.StateCanceled, now
		return e, "freed: job " + id + " has no record", nil
	})
	if err != nil && !errors.Is(err, errUnknownComputer) {
		c.log.Warn("computer of an unrecorded job not freed yet", "computer", name, "job", id, "err", err)
	} else if err == nil && freed {
		metrics.Repaired("lock")
	}
}
