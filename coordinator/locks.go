package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/metrics"
	"github.com/nats-io/nats.go/jetstream"
)

// errBusy: the computer is held by another live job.
var errBusy = errors.New("computer busy")

// lockComputer takes the computer's lock for job id: kv.Create is the
// lock. The same job taking it again is fine; a lock whose job has ended
// (its release was lost in a crash) is taken over.
func (c *Coordinator) lockComputer(ctx context.Context, name, id string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for range 5 {
		_, err := c.computers.Create(ctx, name, []byte(id))
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("lock computer %s in KV: %w", name, err)
		}
		v, err := c.latest(ctx, c.sub.ComputersBucket(), name)
		if err != nil {
			return err
		}
		if !v.Found {
			continue // released meanwhile
		}
		holder := string(v.Data)
		if holder == id {
			return nil
		}
		if !c.lockIsOrphan(ctx, holder, v.Created) {
			return c.busy(ctx, name, holder)
		}
		c.log.Warn("taking over the lock of an ended job", "computer", name, "holder", holder)
		if err := c.computers.Delete(ctx, name, jetstream.LastRevision(v.Rev)); err != nil && !isRevisionErr(err) {
			return fmt.Errorf("release stale lock of computer %s: %w", name, err)
		}
	}
	return fmt.Errorf("lock computer %s: too much contention, try again", name)
}

func (c *Coordinator) busy(ctx context.Context, name, holder string) error {
	state := "unknown state"
	if rec, _, err := c.read(ctx, holder); err == nil {
		state = "state " + rec.State
	}
	return fmt.Errorf("%w: computer %s is busy: job %s holds it (%s); wait for that job to end or cancel it", errBusy, name, holder, state)
}

// lockIsOrphan: the holder job has ended, or has no record although the
// lock is older than the repair delay (a submit that died half-way).
func (c *Coordinator) lockIsOrphan(ctx context.Context, holder string, created time.Time) bool {
	rec, _, err := c.read(ctx, holder)
	switch {
	case err == nil:
		return messages.Terminal(rec.State)
	case errors.Is(err, errUnknownJob):
		return time.Since(created) > c.repairAfter()
	}
	return false
}

// release frees the computer if job still holds it.
func (c *Coordinator) release(ctx context.Context, name, job string) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	v, err := c.latest(ctx, c.sub.ComputersBucket(), name)
	if err != nil {
		c.log.Warn("computer lock not released (the sweeper will)", "computer", name, "job", job, "err", err)
		return
	}
	if !v.Found || string(v.Data) != job {
		return
	}
	if err := c.computers.Delete(ctx, name, jetstream.LastRevision(v.Rev)); err != nil && !isRevisionErr(err) {
		c.log.Warn("computer lock not released (the sweeper will)", "computer", name, "job", job, "err", err)
		return
	}
	c.index.dropLock(name, v.Rev)
}

func isRevisionErr(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// repairAfter is how old a queued job or an ownerless lock must be before
// the sweeper repairs it: longer than any submit takes.
func (c *Coordinator) repairAfter() time.Duration {
	return min(30*time.Second, max(c.cfg.StepCap/2, time.Second))
}

// repairLocks frees locks whose job has ended or never got a record.
func (c *Coordinator) repairLocks(ctx context.Context, now time.Time) {
	for name, l := range c.index.orphans(now.Add(-c.repairAfter())) {
		if !c.lockIsOrphan(ctx, l.job, l.created) {
			continue
		}
		if rec, _, err := c.read(ctx, l.job); err == nil && c.jobEnded(ctx, rec) != nil {
			continue // the computer is freed only once its state records the job's end
		}
		dctx, cancel := context.WithTimeout(ctx, opTimeout)
		err := c.computers.Delete(dctx, name, jetstream.LastRevision(l.rev))
		cancel()
		if err != nil && !isRevisionErr(err) {
			c.log.Warn("orphan lock not released", "computer", name, "job", l.job, "err", err)
			continue
		}
		if err == nil {
			c.log.Info("released the lock of an ended or unrecorded job", "computer", name, "job", l.job)
			metrics.Repaired("lock")
		}
	}
}
