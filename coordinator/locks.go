package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errBusy: the computer is held by another live job.
var errBusy = errors.New("computer busy")

// lockRevs remembers, per computer, the revision of the lock this process
// took, or of the delete that released it: the next release or create is
// one compare-and-set without a read. A wrong memory (another coordinator
// wrote since) only loses the compare-and-set, and the slow path reads.
type lockRevs struct {
	mu sync.Mutex
	m  map[string]lockRev
}

type lockRev struct {
	job string // "": released at rev
	rev uint64
	// releasing is closed when a release this process sent is answered
	// (a submit for the computer waits for it rather than guess wrong).
	releasing chan struct{}
}

func newLockRevs() *lockRevs { return &lockRevs{m: map[string]lockRev{}} }

func (l *lockRevs) get(name string) (lockRev, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[name]
	return v, ok
}

func (l *lockRevs) set(name, job string, rev uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.m[name]; !ok || old.rev < rev {
		l.m[name] = lockRev{job: job, rev: rev, releasing: old.releasing}
	}
}

// releasing marks job's lock of name as being released; ok is false when
// this process does not know job to hold it.
func (l *lockRevs) releasing(name, job string) (rev uint64, done chan struct{}, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[name]
	if !ok || v.job != job {
		return 0, nil, false
	}
	v.releasing = make(chan struct{})
	l.m[name] = v
	return v.rev, v.releasing, true
}

// released ends a release marked by releasing.
func (l *lockRevs) released(name string, done chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.m[name]; ok && v.releasing == done {
		v.releasing = nil
		l.m[name] = v
	}
	close(done)
}

// held counts the locks this process took and has not seen released.
func (l *lockRevs) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.m {
		if v.job != "" {
			n++
		}
	}
	return n
}

func (c *Coordinator) lockSubject(name string) string {
	return "$KV." + c.sub.ComputersBucket() + "." + name
}

// startLock sends the create of the computer's lock for job id, expecting
// the revision this process last saw the lock released at (0: never
// written). finishLock completes it.
func (c *Coordinator) startLock(ctx context.Context, name, id string) pending {
	l, ok := c.locks.get(name)
	if ok && l.releasing != nil {
		// The last job's release is on its way (its event may be out
		// already): its answer is the revision to expect.
		select {
		case <-l.releasing:
		case <-ctx.Done():
		}
		l, ok = c.locks.get(name)
	}
	var guess uint64
	if ok && l.job == "" {
		guess = l.rev
	}
	return c.publish("lock of computer "+name, &nats.Msg{Subject: c.lockSubject(name), Data: []byte(id)},
		jetstream.WithExpectLastSequencePerSubject(guess))
}

// finishLock waits for startLock's create; when the guess was wrong it
// takes the slow path, lockComputer. taken is false when job id held the
// lock already (a resubmission).
func (c *Coordinator) finishLock(ctx context.Context, p pending, name, id string) (taken bool, err error) {
	ack, err := p.wait(ctx)
	if err == nil {
		c.locks.set(name, id, ack.Sequence)
		return true, nil
	}
	if !isWrongLastSeq(err) {
		return false, fmt.Errorf("lock computer %s in KV: %w", name, err)
	}
	return c.lockComputer(ctx, name, id)
}

// lockComputer takes the computer's lock for job id: kv.Create is the
// lock. The same job taking it again is fine (taken false); a lock whose
// job has ended (its release was lost in a crash, or is still on its
// way) is taken over once the computer's state records that end.
func (c *Coordinator) lockComputer(ctx context.Context, name, id string) (taken bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for range 5 {
		rev, err := c.computers.Create(ctx, name, []byte(id))
		if err == nil {
			c.locks.set(name, id, rev)
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("lock computer %s in KV: %w", name, err)
		}
		v, err := c.latest(ctx, c.sub.ComputersBucket(), name)
		if err != nil {
			return false, err
		}
		if !v.Found {
			continue // released meanwhile
		}
		holder := string(v.Data)
		if holder == id {
			c.locks.set(name, id, v.Rev)
			return false, nil
		}
		rec, ended := c.endedHolder(ctx, holder, v.Created)
		if !ended {
			return false, c.busy(ctx, name, holder)
		}
		if rec != nil && c.jobEnded(ctx, *rec) != nil {
			// The next job must see how this one left the computer
			// (invariant 8): no takeover before it is recorded.
			return false, c.busy(ctx, name, holder)
		}
		c.log.Debug("taking over the lock of an ended job", "computer", name, "holder", holder)
		if err := c.computers.Delete(ctx, name, jetstream.LastRevision(v.Rev)); err != nil && !isRevisionErr(err) {
			return false, fmt.Errorf("release stale lock of computer %s: %w", name, err)
		}
	}
	return false, fmt.Errorf("lock computer %s: too much contention, try again", name)
}

// endedHolder: the holder job has ended (its record, nil when it has
// none), or has no record although the lock is older than the repair
// delay (a submit that died half-way).
func (c *Coordinator) endedHolder(ctx context.Context, holder string, created time.Time) (*messages.JobRecord, bool) {
	rec, _, err := c.read(ctx, holder)
	switch {
	case err == nil:
		return &rec, messages.Terminal(rec.State)
	case errors.Is(err, errUnknownJob):
		return nil, time.Since(created) > c.repairAfter()
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

// lockIsOrphan: the holder job has ended, or has no record although the
// lock is older than the repair delay (a submit that died half-way).
func (c *Coordinator) lockIsOrphan(ctx context.Context, holder string, created time.Time) bool {
	_, ended := c.endedHolder(ctx, holder, created)
	return ended
}

// startRelease sends the delete of job's lock when this process knows
// the lock's revision (finishRelease completes it, done is closed then);
// else nothing is sent and finishRelease takes the slow path, release.
func (c *Coordinator) startRelease(name, job string) (pending, chan struct{}) {
	rev, done, ok := c.locks.releasing(name, job)
	if !ok {
		return pending{}, nil
	}
	return c.publish("release of computer "+name, &nats.Msg{Subject: c.lockSubject(name), Header: nats.Header{"KV-Operation": []string{"DEL"}}},
		jetstream.WithExpectLastSequencePerSubject(rev)), done
}

func (c *Coordinator) finishRelease(ctx context.Context, p pending, done chan struct{}, name, job string) {
	if done == nil {
		c.release(ctx, name, job)
		return
	}
	defer c.locks.released(name, done)
	ack, err := p.wait(ctx)
	switch {
	case err == nil:
		c.locks.set(name, "", ack.Sequence)
		c.index.dropLock(name, ack.Sequence)
	case isWrongLastSeq(err):
		c.release(ctx, name, job) // the lock changed since: read it
	default:
		c.log.Warn("computer lock not released (the sweeper will)", "computer", name, "job", job, "err", err)
	}
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
