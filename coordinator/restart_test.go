package coordinator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/messages"
)

// putRecords writes records straight into vcl_jobs (what other, earlier
// coordinators left).
func (e *env) putRecords(recs ...messages.JobRecord) {
	e.t.Helper()
	kv, err := e.js.KeyValue(ctx(e.t), subj.JobsBucket())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := kv.Put(ctx(e.t), r.ID, messages.Encode(r)); err != nil {
			e.t.Fatal(err)
		}
	}
}

// putLock marks an enrolled computer held by job, as a submit's hold
// does (written directly, as a coordinator that died would have left it).
func (e *env) putLock(computer, job string) {
	e.t.Helper()
	e.putEnrollment(held(e.computerEnrollment(computer), job, time.Now().UTC()))
}

// TestListPages: job.list pages ended jobs from the bucket and live ones
// from the index, the last changed first, each job once; a state filter
// that matches few records still ends; a bad cursor is 400.
func TestListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.coordinator(Config{})
	old := time.Now().UTC().Add(-time.Hour)
	var ended []messages.JobRecord
	for i := range 250 {
		st := messages.StateReady
		if i%50 == 7 {
			st = messages.StateFailed
		}
		ended = append(ended, messages.JobRecord{ID: fmt.Sprintf("old-%03d", i), State: st, Attempt: 1, MaxAttempts: 1,
			Spec: spec("", "vm-old"), Steps: []messages.StepRecord{}, Created: old, Updated: old})
	}
	e.putRecords(ended...)
	for i := range 3 { // live: no workers, their loads wait
		e.submit(spec(fmt.Sprintf("live-%d", i), fmt.Sprintf("vm-l%d", i)))
	}
	e.putRecords(ended[3]) // changed again: now the newest ended one

	all := pageAll(t, e, messages.ListRequest{Limit: 40})
	if len(all) != 253 {
		t.Fatalf("listed %d jobs, want 253", len(all))
	}
	if all[0] != "old-003" || !slices.Equal(all[1:4], []string{"live-2", "live-1", "live-0"}) {
		t.Errorf("head of the listing %v, want old-003 then the live jobs, newest first", all[:5])
	}
	for i := 1; i < len(all); i++ {
		if e.revision(all[i]) >= e.revision(all[i-1]) {
			t.Fatalf("not the last changed first at %d: %s after %s", i, all[i], all[i-1])
		}
	}
	failed := pageAll(t, e, messages.ListRequest{State: messages.StateFailed, Limit: 2})
	if !slices.Equal(failed, []string{"old-207", "old-157", "old-107", "old-057", "old-007"}) {
		t.Errorf("failed jobs %v", failed)
	}
	loading := pageAll(t, e, messages.ListRequest{State: messages.StateLoading, Limit: 1})
	if !slices.Equal(loading, []string{"live-2", "live-1", "live-0"}) {
		t.Errorf("loading jobs %v", loading)
	}
	if got, err := e.cl.List(ctx(t), messages.ListRequest{Limit: 120}); err != nil || len(got) != 120 {
		t.Errorf("List with limit 120 (over pages): %d jobs, %v", len(got), err)
	}
	for _, bad := range []string{"x", "0", "-1"} {
		var out any
		err := e.cl.do(ctx(t), subj.JobList(), []byte(`{"after":"`+bad+`"}`), &out)
		if api, ok := err.(*APIError); !ok || api.Code != 400 {
			t.Errorf("after %q: %v, want 400", bad, err)
		}
	}
	// The index holds the live jobs only.
	if n := len(c.index.live()); n != 3 {
		t.Errorf("index holds %d jobs, want the 3 live ones", n)
	}
}

// pageAll follows job.list's pages and returns the ids in order; no id
// may come twice.
func pageAll(t *testing.T, e *env, r messages.ListRequest) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("job.list does not end")
		}
		p, err := e.cl.ListPage(ctx(t), r)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range p.Jobs {
			if slices.Contains(ids, j.ID) {
				t.Fatalf("%s listed twice", j.ID)
			}
			if r.State != "" && j.State != r.State {
				t.Fatalf("%s is %s, listed as %s", j.ID, j.State, r.State)
			}
			ids = append(ids, j.ID)
		}
		if p.Next == "" {
			return ids
		}
		r.After = p.Next
	}
}

// TestStartRepairsAtOnce: a coordinator that starts with a job a crashed
// submit left queued a moment ago, a step past its cap and an orphan lock
// repairs them within seconds, long before its sweep interval, although
// none was older than the repair delay when it started.
func TestStartRepairsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A first coordinator makes the buckets and enrols the computers.
	first := e.coordinator(Config{})
	for _, n := range []string{"vm-q", "vm-o", "vm-late"} {
		e.enroll(spec("", n).Computer)
	}
	first.Stop()
	now := time.Now().UTC()
	s := spec("", "vm-q")
	queued := messages.JobRecord{ID: "crashed-submit", State: messages.StateQueued, Attempt: 1, MaxAttempts: 3, Spec: s,
		Steps: []messages.StepRecord{}, Created: now, Updated: now, StepDeadline: now.Add(time.Hour), Enrolled: &s.Computer}
	o := spec("", "vm-o")
	overdue := messages.JobRecord{ID: "overdue", State: messages.StateLoading, Attempt: 1, MaxAttempts: 1, Spec: o,
		Steps: []messages.StepRecord{}, Created: now.Add(-time.Hour), Updated: now.Add(-time.Hour), StepDeadline: now.Add(-time.Minute), Enrolled: &o.Computer}
	e.putRecords(queued, overdue)
	e.putLock("vm-q", "crashed-submit")
	e.putLock("vm-o", "overdue")
	e.putLock("vm-late", "never-recorded") // a submit that died before its record

	loader := e.worker(messages.StepLoad, "vmware", func(messages.Request) reply { return reply{} })
	// StepCap 2s: locks of no record are freed after 1s; the sweep
	// interval is far longer than the test.
	e.coordinator(Config{StepCap: 2 * time.Second, SweepInterval: time.Hour})
	poll.Within(t, 10*time.Second, "the queued job launched", func() bool { return len(loader.attempts("crashed-submit")) > 0 })
	rec := e.waitState("overdue", messages.StateFailed)
	if len(rec.Steps) != 1 || rec.Steps[0].Reason != "step-cap" {
		t.Errorf("overdue job's history %v", steps(rec))
	}
	poll.Within(t, 10*time.Second, "the lock of a job never recorded freed", func() bool { return e.lockHolder("vm-late") == "" })
}

// TestIndexKeepsEndedOut: a slower read of an older revision does not
// bring a job that ended back into the index.
func TestIndexKeepsEndedOut(t *testing.T) {
	x := newIndex()
	live := messages.JobRecord{ID: "j", State: messages.StateLoading, Spec: spec("", "vm-1")}
	ended := live
	ended.State = messages.StateReady
	x.putJob(live, 5)
	x.putJob(ended, 6)
	x.putJob(live, 5)
	if x.isLive("j") {
		t.Fatal("an older revision brought an ended job back")
	}
	x.putJob(live, 7) // a new job of the same id (the old record expired)
	if !x.isLive("j") {
		t.Fatal("a newer live revision is not kept")
	}
	x.dropJob("j", 8)
	if x.isLive("j") {
		t.Fatal("a deleted job is still live")
	}
}
