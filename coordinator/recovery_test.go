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

// putEnrollment writes an enrolment directly, as another coordinator
// would have left it.
func (e *env) putEnrollment(en messages.Enrollment) {
	e.t.Helper()
	kv, err := e.js.KeyValue(ctx(e.t), subj.InventoryBucket())
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := kv.Put(ctx(e.t), en.Name, messages.Encode(en)); err != nil {
		e.t.Fatal(err)
	}
}

// A fresh record whose force-reload was decided on a copy of the
// enrolment that was behind (its submit died before it wrote the
// decision again): the sweeper's first load decides again on the
// enrolment it holds, so a computer a reservation used is reloaded
// (invariant 8). Found in review: the load went out with the job's
// if-needed.
func TestRelaunchDecidesForceReloadAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{StepCap: 2 * time.Second})
	loader := e.worker(messages.StepLoad, "vmware", func(messages.Request) reply { return reply{} })
	e.enroll(enrolled("vm-r"))
	en := e.computerEnrollment("vm-r")
	stale := en // what the submit's copy said: runs the image, untainted
	stale.Image, stale.Tainted = "win7-sp1-v3", false
	s := byName("r-1", "vm-r")
	s.ID = ""
	rec := newRecord("r-1", s, stale, time.Now().UTC().Add(-2*time.Second), time.Hour)
	if rec.ForceReload {
		t.Fatal("the stale copy should not force a reload")
	}
	// The truth: job p ended ready on it, handed to a reservation.
	en.State, en.Image, en.Tainted, en.Job, en.JobEnded, en.Since = messages.ComputerInUse, "win7-sp1-v3", true, "p", messages.StateReady, time.Now().UTC()
	e.putEnrollment(en)
	e.putRecords(rec)
	if r := loader.next(); r.JobID != "r-1" || r.Reload != messages.ReloadAlways {
		t.Fatalf("load of %s with reload %q; want r-1 with always (the computer is tainted)", r.JobID, r.Reload)
	}
	if got, err := e.cl.Get(ctx(t), "r-1"); err != nil || !got.ForceReload {
		t.Errorf("the record says force_reload %v (%v), want true", got.ForceReload, err)
	}
}

// A computer held by an ended job whose record names another computer (a
// resubmission of its id for this one, cut after the hold) is freed,
// tainted, not given the other computer's end. Found in review: it stayed
// held for good, and set was refused.
func TestHoldOfAnIdForAnotherComputerFreed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{StepCap: 2 * time.Second}) // repairAfter 1 s
	e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.enroll(enrolled("vm-1"))
	e.enroll(enrolled("vm-2"))
	e.submit(byName("o-1", "vm-1"))
	e.waitState("o-1", messages.StateReady)
	e.putEnrollment(held(e.computerEnrollment("vm-2"), "o-1", time.Now().UTC().Add(-5*time.Second)))
	poll.Until(t, "vm-2 to be freed", func() bool { return e.lockHolder("vm-2") == "" })
	en := e.computerEnrollment("vm-2")
	if en.State != messages.ComputerAvailable || !en.Tainted || en.Image != "" || en.LearnedHostKey != nil {
		t.Errorf("vm-2 freed as %+v; want available, tainted, no image, no key of vm-1's job", en)
	}
	addr := "10.9.9.9:22"
	if _, err := e.cl.SetComputer(ctx(t), messages.ComputerSet{Name: "vm-2", Address: &addr}); err != nil {
		t.Errorf("set vm-2 after it was freed: %v", err)
	}
}

// Two submits of one id race (a client's retry on another coordinator):
// the first's hold wins and its record loses, the second's record wins
// and its hold finds the computer held by that id. The first must not
// give the hold back: it is the live job's. Found in review: the computer
// was freed under a live job and a second job was accepted for it.
func TestResubmissionRaceKeepsTheHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.coordinator(Config{StepCap: 20 * time.Second})
	e.enroll(enrolled("vm-d"))
	poll.Until(t, "the index to have vm-d", func() bool { _, ok := c.inv.item("vm-d"); return ok })
	cx := ctx(t)
	s := byName("d-1", "vm-d")
	s.ID = ""
	check := func(en messages.Enrollment) error { return refusal(en, s.Computer) }
	it, _ := c.inv.item("vm-d")
	hX := c.startHold(it, "d-1") // X's hold: wins
	eX, beforeX, _, takenX, err := c.finishHold(cx, hX, "vm-d", "d-1", check)
	if err != nil || !takenX {
		t.Fatalf("X's hold: taken %v, %v", takenX, err)
	}
	rec := newRecord("d-1", s, it.e, time.Now().UTC(), c.cfg.StepCap) // Y's record: wins
	if _, err := c.write(cx, rec, 0); err != nil {
		t.Fatal(err)
	}
	_, _, _, takenY, err := c.finishHold(cx, c.startHold(it, "d-1"), "vm-d", "d-1", check) // Y's hold: finds d-1's
	if err != nil || takenY {
		t.Fatalf("Y's hold: taken %v, %v; want not taken, no error", takenY, err)
	}
	if _, err := c.createLost(cx, "vm-d", "d-1", errConflict, takenX, beforeX, eX); err != nil { // X's record lost
		t.Fatal(err)
	}
	if h := e.lockHolder("vm-d"); h != "d-1" {
		t.Fatalf("vm-d held by %q, want d-1 (live)", h)
	}
	var api *APIError
	if _, err := e.cl.Submit(ctx(t), byName("d-2", "vm-d")); !errors.As(err, &api) || api.Code != 409 {
		t.Errorf("d-2 for vm-d while d-1 is live: %v, want 409", err)
	}
}
