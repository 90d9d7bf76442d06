package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// entry is what the coordinator keeps in memory of one job: enough to
// list jobs and to find running steps past their cap without reading
// every record. It is a cache of vcl_jobs fed by one KV watcher; the
// records themselves are always read from KV before a decision.
type entry struct {
	rev      uint64
	state    string
	created  time.Time
	updated  time.Time
	deadline time.Time
	computer string
}

// lock is one key of vcl_computers as last seen.
type lock struct {
	rev     uint64
	job     string
	created time.Time
}

// index holds the cache of both buckets.
type index struct {
	mu    sync.Mutex
	jobs  map[string]entry
	locks map[string]lock
}

func newIndex() *index {
	return &index{jobs: map[string]entry{}, locks: map[string]lock{}}
}

// putJob records rec at revision rev unless a newer revision is known.
func (x *index) putJob(rec messages.JobRecord, rev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.jobs[rec.ID]; ok && old.rev >= rev {
		return
	}
	x.jobs[rec.ID] = entry{rev: rev, state: rec.State, created: rec.Created, updated: rec.Updated, deadline: rec.StepDeadline,
		computer: computerOf(rec).Name}
}

func (x *index) dropJob(id string, rev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.jobs[id]; ok && old.rev <= rev {
		delete(x.jobs, id)
	}
}

func (x *index) putLock(computer, job string, rev uint64, created time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.locks[computer]; ok && old.rev >= rev {
		return
	}
	x.locks[computer] = lock{rev: rev, job: job, created: created}
}

func (x *index) dropLock(computer string, rev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.locks[computer]; ok && old.rev <= rev {
		delete(x.locks, computer)
	}
}

// newest returns the ids of up to limit jobs in state (any state when
// empty), newest first.
func (x *index) newest(state string, limit int) []string {
	type idc struct {
		id string
		t  time.Time
	}
	x.mu.Lock()
	var all []idc
	for id, e := range x.jobs {
		if state == "" || e.state == state {
			all = append(all, idc{id, e.created})
		}
	}
	x.mu.Unlock()
	slices.SortFunc(all, func(a, b idc) int {
		if c := b.t.Compare(a.t); c != 0 {
			return c
		}
		return compareStrings(b.id, a.id)
	})
	ids := make([]string, 0, min(limit, len(all)))
	for _, v := range all[:min(limit, len(all))] {
		ids = append(ids, v.id)
	}
	return ids
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// due returns the live jobs whose step deadline is before now, and the
// queued jobs not touched since stale (a submit that died half-way).
func (x *index) due(now, stale time.Time) (overdue, stuck []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, e := range x.jobs {
		switch {
		case messages.Terminal(e.state):
		case !e.deadline.IsZero() && e.deadline.Before(now):
			overdue = append(overdue, id)
		case e.state == messages.StateQueued && e.updated.Before(stale):
			stuck = append(stuck, id)
		}
	}
	return overdue, stuck
}

// orphans returns computers whose lock is older than stale and whose job
// is unknown or has ended.
func (x *index) orphans(stale time.Time) map[string]lock {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]lock{}
	for name, l := range x.locks {
		e, ok := x.jobs[l.job]
		if l.created.Before(stale) && (!ok || messages.Terminal(e.state)) {
			out[name] = l
		}
	}
	return out
}

// watch starts one watcher per bucket and returns once both replayed
// what the buckets held; the watchers run until bg ends.
func (c *Coordinator) watch(ctx, bg context.Context) error {
	for _, kv := range []jetstream.KeyValue{c.jobs, c.computers, c.inventory} {
		w, err := kv.WatchAll(bg)
		if err != nil {
			return fmt.Errorf("coordinator: watch KV bucket %s: %w", kv.Bucket(), err)
		}
		ready := make(chan struct{})
		c.bg.Go(func() { c.follow(kv, w, ready) })
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("coordinator: reading KV bucket %s: %w", kv.Bucket(), context.Cause(ctx))
		}
	}
	return nil
}

func (c *Coordinator) follow(kv jetstream.KeyValue, w jetstream.KeyWatcher, ready chan struct{}) {
	defer func() { _ = w.Stop() }()
	jobs := kv == c.jobs
	for e := range w.Updates() {
		if e == nil {
			close(ready)
			continue
		}
		if kv == c.inventory {
			c.followInventory(e)
			continue
		}
		switch {
		case jobs && e.Operation() == jetstream.KeyValuePut:
			var rec messages.JobRecord
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				c.log.Warn("unreadable job record in KV", "job", e.Key(), "err", err)
				continue
			}
			c.index.putJob(rec, e.Revision())
		case jobs:
			c.index.dropJob(e.Key(), e.Revision())
		case e.Operation() == jetstream.KeyValuePut:
			c.index.putLock(e.Key(), string(e.Value()), e.Revision(), e.Created())
		default:
			c.index.dropLock(e.Key(), e.Revision())
		}
	}
}

func (c *Coordinator) followInventory(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		c.inv.drop(e.Key(), e.Revision())
		return
	}
	if c.inv.rev(e.Key()) >= e.Revision() {
		return // this process's own write, indexed when it was made
	}
	var en messages.Enrollment
	if err := json.Unmarshal(e.Value(), &en); err != nil {
		c.log.Warn("unreadable enrolment in KV", "computer", e.Key(), "err", err)
		return
	}
	c.inv.put(en, e.Revision())
}

// live returns the live jobs with their computers.
func (x *index) live() map[string]string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]string{}
	for id, e := range x.jobs {
		if !messages.Terminal(e.state) && e.computer != "" {
			out[id] = e.computer
		}
	}
	return out
}

// jobState is the state the index last saw of job id.
func (x *index) jobState(id string) (string, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.jobs[id]
	return e.state, ok
}
