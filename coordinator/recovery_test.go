package coordinator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/messages"
)

// TestCrashBetweenWriteAndDispatch: the record says postloading but the
// coordinator "dies" before dispatching; the unacknowledged result comes
// again and leads to the postload exactly once.
func TestCrashBetweenWriteAndDispatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var crashed atomic.Bool
	c := e.coordinatorWith(Config{}, func(c *Coordinator) {
		c.hookAfterWrite = func(rec messages.JobRecord) error {
			if rec.State == messages.StatePostloading && crashed.CompareAndSwap(false, true) {
				return errors.New("simulated crash after the write")
			}
			return nil
		}
	})
	e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	hold := make(chan struct{})
	osw := e.worker(messages.StepPostload, "windows", func(messages.Request) reply {
		return reply{outcome: messages.OutcomeReady, detail: "ssh answers", wait: hold}
	})
	e.submit(spec("job-k", "vm-k"))
	req := osw.next()
	if !crashed.Load() || req.Attempt != 1 {
		t.Fatalf("crash hook ran: %v; postload request %+v", crashed.Load(), req)
	}

	// The load result once more, as a redelivery after a crash that came
	// after the dispatch: the same Msg-Id, so no second request.
	load := messages.Result{JobID: "job-k", Attempt: 1, Step: messages.StepLoad, Outcome: messages.OutcomeReady, Detail: "again"}
	if changed, err := c.apply(context.Background(), load, true); changed || err != nil {
		t.Fatalf("redelivered duplicate: changed %v, err %v", changed, err)
	}
	close(hold)
	rec := e.waitState("job-k", messages.StateReady)
	if got := steps(rec); !slices.Equal(got, []string{"1/load/ready", "1/postload/ready"}) {
		t.Errorf("history = %v", got)
	}
	e.drained()
	if n := len(osw.requests()); n != 1 {
		t.Errorf("%d postload requests, want exactly 1", n)
	}
}

// TestSweeperRepairs: a queued job a crashed submit left behind is
// launched; locks of unrecorded or ended jobs are freed.
func TestSweeperRepairs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{StepCap: 2 * time.Second, SweepInterval: 100 * time.Millisecond})
	e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	jobs, err := e.js.KeyValue(ctx(t), subj.JobsBucket())
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().UTC().Add(-time.Minute)
	s := spec("", "vm-q")
	stuck := messages.JobRecord{ID: "stuck", State: messages.StateQueued, Attempt: 1, MaxAttempts: 3, Spec: s,
		Steps: []messages.StepRecord{}, Created: old, Updated: old, StepDeadline: time.Now().Add(time.Hour)}
	ended := messages.JobRecord{ID: "ended", State: messages.StateFailed, Attempt: 1, MaxAttempts: 1, Spec: spec("", "vm-e"),
		Steps: []messages.StepRecord{}, Created: old, Updated: old}
	for _, r := range []messages.JobRecord{stuck, ended} {
		if _, err := jobs.Create(ctx(t), r.ID, messages.Encode(r)); err != nil {
			t.Fatal(err)
		}
	}
	for computer, job := range map[string]string{"vm-q": "stuck", "vm-e": "ended", "vm-o": "never-recorded"} {
		e.enroll(spec("", computer).Computer)
		e.putLock(computer, job)
	}
	rec := e.waitState("stuck", messages.StateReady)
	if got := steps(rec); !slices.Equal(got, []string{"1/load/ready", "1/postload/ready"}) {
		t.Errorf("history = %v", got)
	}
	for _, computer := range []string{"vm-q", "vm-e", "vm-o"} {
		poll.Until(t, computer+" to be freed", func() bool { return e.lockHolder(computer) == "" })
	}
}

// A submit that died between its record and its computer's lock (they go
// out together) leaves a queued job without the lock. The sweeper
// launches it only once it holds the lock; when another job took the
// computer meanwhile, the queued job fails and the other keeps it.
func TestRelaunchTakesTheLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{StepCap: 2 * time.Second}) // repairAfter 1 s
	e.worker(messages.StepLoad, "vmware", func(r messages.Request) reply {
		if r.JobID == "holder" {
			return reply{} // holds vm-b: never answers
		}
		return reply{outcome: messages.OutcomeReady, detail: "cloned"}
	})
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.enroll(spec("", "vm-a").Computer)
	e.submit(spec("holder", "vm-b"))
	e.waitState("holder", messages.StateLoading)

	jobs, err := e.js.KeyValue(ctx(t), subj.JobsBucket())
	if err != nil {
		t.Fatal(err)
	}
	orphan := func(id, computer string) {
		s := spec(id, computer)
		s.ID = ""
		rec := newRecord(id, s, e.computer(computer), time.Now().UTC().Add(-2*time.Second), time.Hour)
		if _, err := jobs.Create(ctx(t), id, messages.Encode(rec)); err != nil {
			t.Fatal(err)
		}
	}
	orphan("q-free", "vm-a")  // its computer is free
	orphan("q-taken", "vm-b") // "holder" has its computer
	if rec := e.waitState("q-free", messages.StateReady); len(rec.Steps) != 2 {
		t.Errorf("q-free: %v", steps(rec))
	}
	rec := e.waitState("q-taken", messages.StateFailed)
	if !strings.Contains(rec.Error, "went to another job") || len(rec.Steps) != 0 {
		t.Errorf("q-taken: %q, steps %v", rec.Error, steps(rec))
	}
	if h := e.lockHolder("vm-b"); h != "holder" {
		t.Errorf("vm-b's lock: %q, want holder's", h)
	}
}

// A first load that runs longer than relaunchAfter: the sweeper makes
// sure it went out (the same Msg-Id, which JetStream drops as a repeat),
// so the loader gets it once.
func TestSlowFirstLoadNotSentTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.coordinator(Config{SweepInterval: 100 * time.Millisecond})
	release := make(chan struct{})
	loader := e.worker(messages.StepLoad, "vmware", func(messages.Request) reply {
		return reply{outcome: messages.OutcomeReady, detail: "cloned", wait: release}
	})
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.submit(spec("slow", "vm-s"))
	poll.Until(t, "the sweeper to check the first load", func() bool {
		c.index.mu.Lock()
		defer c.index.mu.Unlock()
		return c.index.jobs["slow"].checked
	})
	close(release)
	e.waitState("slow", messages.StateReady)
	if got := loader.attempts("slow"); !slices.Equal(got, []int{1}) {
		t.Errorf("the loader got attempts %v, want [1]: the check sent the load twice", got)
	}
}
