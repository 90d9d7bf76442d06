package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// entry is what the coordinator keeps in memory of one live job: enough to
// list the live jobs and to find running steps past their cap and jobs a
// crashed submit left undispatched, without reading every record. The
// records themselves are always read from KV before a decision.
type entry struct {
	rev      uint64
	state    string
	created  time.Time
	updated  time.Time
	deadline time.Time
	computer string
	// fresh: loading at attempt 1 with no step yet, so its first load
	// may never have been dispatched (a submit that died after the
	// record); checked: this process's sweeper made sure it was.
	fresh, checked bool
}

// undispatched: the job may wait for a dispatch its submit never sent:
// queued, or fresh and not checked yet.
func (e entry) undispatched() bool {
	return e.state == messages.StateQueued || (e.fresh && !e.checked)
}

// due is when the sweeper has something to do about the job: its step's
// deadline, or (undispatched) relaunchAfter after its last change.
func (e entry) due(relaunchAfter time.Duration) time.Time {
	t := e.deadline
	if e.undispatched() {
		if q := e.updated.Add(relaunchAfter); t.IsZero() || q.Before(t) {
			t = q
		}
	}
	return t
}

// indexFields are the only fields of a job record the watcher decodes.
type indexFields struct {
	State        string            `json:"state"`
	Attempt      int               `json:"attempt"`
	Steps        []json.RawMessage `json:"steps"`
	Created      time.Time         `json:"created"`
	Updated      time.Time         `json:"updated"`
	StepDeadline time.Time         `json:"step_deadline"`
	Spec         struct {
		Computer struct {
			Name string `json:"name"`
		} `json:"computer"`
	} `json:"spec"`
	Enrolled *struct {
		Name string `json:"name"`
	} `json:"enrolled"`
}

func (f indexFields) entry(rev uint64) entry {
	name := f.Spec.Computer.Name
	if f.Enrolled != nil {
		name = f.Enrolled.Name
	}
	return entry{rev: rev, state: f.State, created: f.Created, updated: f.Updated, deadline: f.StepDeadline, computer: name,
		fresh: isFresh(f.State, f.Attempt, len(f.Steps))}
}

// isFresh: a record in this state, attempt and number of steps waits for
// its first load (see entry.fresh).
func isFresh(state string, attempt, steps int) bool {
	return state == messages.StateLoading && attempt == 1 && steps == 0
}

// gone is a job that left the index (ended, expired or deleted) at rev,
// kept for goneLife so that a slower read of an older revision cannot
// bring it back.
type gone struct {
	rev uint64
	at  time.Time
	// ended is when the record that ended the job was written (zero: a
	// delete).
	ended time.Time
}

// goneLife is how long the index remembers a job that left it: longer
// than any read or write of a record takes (opTimeout bounds each).
const goneLife = 6 * opTimeout

// index holds the live jobs (never the ended ones: vcl_jobs may retain
// millions). It tells the sweeper when the next thing falls due (wake).
type index struct {
	mu   sync.Mutex
	jobs map[string]entry
	gone map[string]gone
	// own are this process's writes of records in flight, by job id.
	own *inFlight[entry]

	// relaunchAfter is the sweeper's delay for an undispatched job (set before
	// the watchers start).
	relaunchAfter time.Duration
	// armed is when the sweeper runs next (zero: it is about to); a
	// change that falls due before it signals wake.
	armed time.Time
	wake  chan struct{}
}

func newIndex() *index {
	return &index{jobs: map[string]entry{}, gone: map[string]gone{}, own: newInFlight[entry](), wake: make(chan struct{}, 1)}
}

func entryOf(rec messages.JobRecord, rev uint64) entry {
	return entry{rev: rev, state: rec.State, created: rec.Created, updated: rec.Updated, deadline: rec.StepDeadline,
		computer: computerOf(rec).Name, fresh: isFresh(rec.State, rec.Attempt, len(rec.Steps))}
}

// delivered indexes a watcher's delivery of job id at rev when it is
// this process's write in flight (the same bytes); false: decode it.
func (x *index) delivered(id string, data []byte, rev uint64) (state string, ok bool) {
	e, ok := x.own.match(id, data)
	if ok {
		e.rev = rev
		x.put(id, e)
	}
	return e.state, ok
}

// putJob records rec at revision rev unless a newer revision is known.
func (x *index) putJob(rec messages.JobRecord, rev uint64) {
	x.put(rec.ID, entryOf(rec, rev))
}

// put records job id as e (at revision e.rev) unless a newer revision is
// known: a live job is kept or updated, an ended one leaves the index.
func (x *index) put(id string, e entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, ok := x.jobs[id]
	if ok && old.rev >= e.rev {
		return
	}
	e.checked = ok && old.checked && e.fresh
	if g, ok := x.gone[id]; ok && g.rev >= e.rev {
		return
	}
	if messages.Terminal(e.state) {
		x.leaveLocked(id, e.rev, e.updated)
		return
	}
	delete(x.gone, id)
	x.jobs[id] = e
	x.dueLocked(e.due(x.relaunchAfter))
}

// known: the index has seen job id at rev or later (this process's own
// writes are indexed when made; the watcher need not decode them again).
func (x *index) known(id string, rev uint64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.jobs[id]; ok && old.rev >= rev {
		return true
	}
	g, ok := x.gone[id]
	return ok && g.rev >= rev
}

func (x *index) dropJob(id string, rev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.jobs[id]; ok && old.rev > rev {
		return
	}
	x.leaveLocked(id, rev, time.Time{})
}

func (x *index) leaveLocked(id string, rev uint64, ended time.Time) {
	delete(x.jobs, id)
	if g, ok := x.gone[id]; !ok || g.rev < rev {
		x.gone[id] = gone{rev: rev, at: time.Now(), ended: ended}
	}
}

// dueLocked wakes the sweeper when t comes before its next run.
func (x *index) dueLocked(t time.Time) {
	if t.IsZero() || !t.Before(x.armed) {
		return
	}
	x.armed = t
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// listed is a live job as job.list pages it.
type listed struct {
	id  string
	rev uint64
}

// page returns up to limit live jobs in state (any live state when empty)
// whose revision is below before (0: any), newest revision first, as
// job.list pages vcl_jobs.
func (x *index) page(state string, before uint64, limit int) []listed {
	x.mu.Lock()
	var all []listed
	for id, e := range x.jobs {
		if (state == "" || e.state == state) && (before == 0 || e.rev < before) {
			all = append(all, listed{id, e.rev})
		}
	}
	x.mu.Unlock()
	slices.SortFunc(all, func(a, b listed) int { return cmp.Compare(b.rev, a.rev) })
	return all[:min(limit, len(all))]
}

// due returns the live jobs whose step deadline is before now, and the
// undispatched jobs not touched for relaunchAfter (a submit that died
// half-way, or a load still running: the sweeper checks each once).
func (x *index) due(now time.Time) (overdue, stuck []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, e := range x.jobs {
		switch {
		case !e.deadline.IsZero() && e.deadline.Before(now):
			overdue = append(overdue, id)
		case e.undispatched() && !e.updated.Add(x.relaunchAfter).After(now):
			stuck = append(stuck, id)
		}
	}
	return overdue, stuck
}

// checked marks a fresh job's first load as made sure of.
func (x *index) checked(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.jobs[id]; ok && e.fresh {
		e.checked = true
		x.jobs[id] = e
	}
}

// schedule arms the sweeper's next run: the earliest time a live job or
// also (non-zero) falls due, but not before floor nor after ceil.
// A change due before it wakes the sweeper from then on. It also forgets
// the jobs that left more than goneLife before now.
func (x *index) schedule(now, floor, ceil, also time.Time) time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	next := ceil
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	earlier(also)
	for _, e := range x.jobs {
		earlier(e.due(x.relaunchAfter))
	}
	for id, g := range x.gone {
		if now.Sub(g.at) > goneLife {
			delete(x.gone, id)
		}
	}
	if next.Before(floor) {
		next = floor
	}
	x.armed = next
	return next
}

// armedAt is when the sweeper is to run next.
func (x *index) armedAt() time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.armed
}

// live returns the live jobs that name a computer.
func (x *index) live() map[string]entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]entry, len(x.jobs))
	for id, e := range x.jobs {
		if e.computer != "" {
			out[id] = e
		}
	}
	return out
}

// endedSince: job id ended after t, as the index saw it leave.
func (x *index) endedSince(id string, t time.Time) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	g, ok := x.gone[id]
	return ok && g.ended.After(t)
}

// isLive: the index holds job id as live.
func (x *index) isLive(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.jobs[id]
	return ok
}

// counts counts the live jobs by state.
func (x *index) counts(into map[string]int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range x.jobs {
		into[e.state]++
	}
}

// startReads bounds the record reads of a start.
const startReads = 16

// watch fills the indexes and keeps them current until bg ends. The
// vcl_inventory watcher replays that bucket, which the lab's size bounds.
// The vcl_jobs watcher does not replay (the bucket keeps every ended job
// for JobRetention): it starts first, with updates only, and the live
// jobs are then read from KV by name. A live job holds its computer (its
// enrolment names it from the hold, sent with its record, until its end
// is recorded), so the jobs that the held computers name are all the live
// jobs there are; a record written after the watcher started comes
// through it. (A record whose hold was lost with a crash of the server
// in between, written before this coordinator started while no other
// ran, is not found: a resubmission of its id finds it.)
func (c *Coordinator) watch(ctx, bg context.Context) error {
	c.index.mu.Lock()
	c.index.relaunchAfter = c.relaunchAfter()
	c.index.mu.Unlock()
	w, err := c.jobs.WatchAll(bg, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("coordinator: watch KV bucket %s: %w", c.jobs.Bucket(), err)
	}
	c.bg.Go(func() { c.follow(c.jobs, w, nil) })
	iw, err := c.inventory.WatchAll(bg)
	if err != nil {
		return fmt.Errorf("coordinator: watch KV bucket %s: %w", c.inventory.Bucket(), err)
	}
	ready := make(chan struct{})
	c.bg.Go(func() { c.follow(c.inventory, iw, ready) })
	select {
	case <-ready:
	case <-ctx.Done():
		return fmt.Errorf("coordinator: reading KV bucket %s: %w", c.inventory.Bucket(), context.Cause(ctx))
	}
	return c.readLive(ctx)
}

// readLive reads the records of the jobs that the held computers name,
// startReads at a time; each read puts a live one into the index.
func (c *Coordinator) readLive(ctx context.Context) error {
	ids := map[string]bool{}
	for _, id := range c.inv.held() {
		ids[id] = true
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	slots := make(chan struct{}, startReads)
	for id := range ids {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			_, _, err := c.read(ctx, id)
			var syntax *json.SyntaxError
			var typ *json.UnmarshalTypeError
			if errors.As(err, &syntax) || errors.As(err, &typ) {
				c.log.Warn("unreadable job record in KV", "job", id, "err", err)
				return
			}
			if err != nil && !errors.Is(err, errUnknownJob) {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("coordinator: reading the live jobs: %w", first)
	}
	return nil
}

// follow applies one bucket's watcher to the indexes; ready (nil for
// vcl_jobs, which does not replay) closes once the bucket was replayed.
func (c *Coordinator) follow(kv jetstream.KeyValue, w jetstream.KeyWatcher, ready chan struct{}) {
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			if ready != nil {
				close(ready)
			}
			continue
		}
		if kv == c.inventory {
			c.followInventory(e)
			continue
		}
		switch {
		case e.Operation() == jetstream.KeyValuePut:
			if c.index.known(e.Key(), e.Revision()) {
				continue
			}
			if state, ok := c.index.delivered(e.Key(), e.Value(), e.Revision()); ok {
				if messages.Terminal(state) {
					c.records.drop(e.Key(), e.Revision()) // in case this write's ack never came
				}
				continue
			}
			var f indexFields
			if err := json.Unmarshal(e.Value(), &f); err != nil {
				c.log.Warn("unreadable job record in KV", "job", e.Key(), "err", err)
				continue
			}
			c.index.put(e.Key(), f.entry(e.Revision()))
			if messages.Terminal(f.State) {
				c.records.drop(e.Key(), e.Revision()) // ended by another coordinator
			}
		default:
			c.index.dropJob(e.Key(), e.Revision())
			c.records.drop(e.Key(), e.Revision())
		}
	}
}

func (c *Coordinator) followInventory(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		c.inv.drop(e.Key(), e.Revision())
		return
	}
	if c.inv.rev(e.Key()) >= e.Revision() || c.inv.delivered(e.Key(), e.Value(), e.Revision()) {
		return // this process's own write, indexed when it was made or from its bytes
	}
	var en messages.Enrollment
	if err := json.Unmarshal(e.Value(), &en); err != nil {
		c.log.Warn("unreadable enrolment in KV", "computer", e.Key(), "err", err)
		return
	}
	c.inv.put(en, e.Revision())
}
