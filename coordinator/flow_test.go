package coordinator

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
)

func TestHappyPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{Name: "coord-a"})
	loader := e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	osw := e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	events, err := e.nc.SubscribeSync(subj.Event("job-1"))
	if err != nil {
		t.Fatal(err)
	}

	rec := e.submit(spec("job-1", "vm-001"))
	if rec.ID != "job-1" || rec.Attempt != 1 || rec.MaxAttempts != 3 {
		t.Fatalf("submit answered %+v", rec)
	}
	rec = e.waitState("job-1", messages.StateReady)

	if got, want := steps(rec), []string{"1/load/ready", "1/postload/ready"}; !slices.Equal(got, want) {
		t.Errorf("history = %v, want %v", got, want)
	}
	if rec.Error != "" || !rec.StepDeadline.IsZero() {
		t.Errorf("ready record has error %q, step deadline %v", rec.Error, rec.StepDeadline)
	}
	post := osw.requests()
	if len(post) != 1 || !post[0].Reloaded || post[0].Attempt != 1 || post[0].Deadline.IsZero() {
		t.Errorf("postload requests = %+v, want one of attempt 1, reloaded, with a deadline", post)
	}
	if got := loader.attempts("job-1"); !slices.Equal(got, []int{1}) {
		t.Errorf("load attempts = %v", got)
	}
	poll.Until(t, "the computer to be released", func() bool { return e.lockHolder("vm-001") == "" })

	var states []string
	for {
		m, err := events.NextMsg(10e9)
		if err != nil {
			t.Fatalf("events so far %v: %v", states, err)
		}
		ev, err := decodeEvent(m)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Source == "coord-a" {
			states = append(states, ev.State)
		}
		if ev.State == messages.StateReady {
			if !strings.Contains(ev.Message, "job ready") {
				t.Errorf("terminal event %q does not say the job is ready", ev.Message)
			}
			break
		}
	}
	if want := []string{"loading", "postloading", "ready"}; !slices.Equal(states, want) {
		t.Errorf("event states = %v, want %v", states, want)
	}
}

func decodeEvent(m *nats.Msg) (messages.Event, error) {
	var ev messages.Event
	return ev, messages.Decode(m.Data, &ev, false)
}

func TestAttemptLoop(t *testing.T) {
	t.Parallel()
	retryFirst := func(r messages.Request) reply {
		if r.Attempt == 1 {
			return reply{outcome: messages.OutcomeRetry, detail: "clone failed"}
		}
		return reply{outcome: messages.OutcomeReady, detail: "cloned"}
	}
	cases := []struct {
		name        string
		maxAttempts int
		load, post  func(messages.Request) reply
		state       string
		history     []string
		loads       []int
		errHas      string
		eventHas    string
	}{
		{"retry then ready", 3, retryFirst, always(messages.OutcomeReady), messages.StateReady,
			[]string{"1/load/retry", "2/load/ready", "2/postload/ready"}, []int{1, 2}, "", "attempt 1: load retry: clone failed; starting attempt 2 of 3, load dispatched to vmware"},
		{"load retry on every attempt", 3, always(messages.OutcomeRetry), always(messages.OutcomeReady), messages.StateFailed,
			[]string{"1/load/retry", "2/load/retry", "3/load/retry"}, []int{1, 2, 3}, "gave up after 3 attempts", "job failed: gave up after 3 attempts"},
		{"postload retry on every attempt", 2, always(messages.OutcomeReady), always(messages.OutcomeRetry), messages.StateFailed,
			[]string{"1/load/ready", "1/postload/retry", "2/load/ready", "2/postload/retry"}, []int{1, 2}, "postload said retry", "attempt 1: postload retry: postload retry; starting attempt 2 of 2"},
		{"fail at once", 3, always(messages.OutcomeFail), always(messages.OutcomeReady), messages.StateFailed,
			[]string{"1/load/fail"}, []int{1}, "load fail", "attempt 1: load fail"},
		{"postload fail at once", 3, always(messages.OutcomeReady), always(messages.OutcomeFail), messages.StateFailed,
			[]string{"1/load/ready", "1/postload/fail"}, []int{1}, "will not help", "postload dispatched to windows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.coordinator(Config{})
			loader := e.worker(messages.StepLoad, "vmware", tc.load)
			osw := e.worker(messages.StepPostload, "windows", tc.post)
			s := spec("job-x", "vm-x")
			s.MaxAttempts = tc.maxAttempts
			events := e.watchEvents("job-x")
			e.submit(s)
			rec := e.waitState("job-x", tc.state)
			var said []string
			for _, ev := range events() {
				said = append(said, ev.Message)
			}
			if !slices.ContainsFunc(said, func(m string) bool { return strings.Contains(m, tc.eventHas) }) {
				t.Errorf("no event says %q: %q", tc.eventHas, said)
			}
			if got := steps(rec); !slices.Equal(got, tc.history) {
				t.Errorf("history = %v, want %v", got, tc.history)
			}
			if got := loader.attempts("job-x"); !slices.Equal(got, tc.loads) {
				t.Errorf("load requests carried attempts %v, want %v", got, tc.loads)
			}
			for _, r := range osw.requests() {
				if !slices.Contains(tc.loads, r.Attempt) {
					t.Errorf("postload request of attempt %d, loads were %v", r.Attempt, tc.loads)
				}
			}
			if !strings.Contains(rec.Error, tc.errHas) {
				t.Errorf("error %q does not contain %q", rec.Error, tc.errHas)
			}
			if rec.Attempt != tc.loads[len(tc.loads)-1] {
				t.Errorf("record attempt %d, want %d", rec.Attempt, tc.loads[len(tc.loads)-1])
			}
		})
	}
}

// TestStaleAndDuplicate: a result of attempt 1 arriving during attempt 2,
// and a duplicate of an applied result, change nothing.
func TestStaleAndDuplicate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	loader := e.worker(messages.StepLoad, "vmware", func(messages.Request) reply { return reply{} })
	e.submit(spec("job-s", "vm-s"))
	first := loader.next()
	retry := resultFor(first, messages.OutcomeRetry, "clone failed")
	publishResult(t, e.js, retry)
	second := loader.next()
	if second.Attempt != 2 {
		t.Fatalf("second load request carried attempt %d", second.Attempt)
	}
	e.drained()
	before, rev := e.waitState("job-s", messages.StateLoading), e.revision("job-s")

	publishResult(t, e.js, resultFor(first, messages.OutcomeReady, "late ready of attempt 1"))
	publishResult(t, e.js, retry) // duplicate
	postOf1 := first
	postOf1.Step = messages.StepPostload
	publishResult(t, e.js, resultFor(postOf1, messages.OutcomeReady, "postload of attempt 1 that never ran"))
	e.drained()

	after, err := e.cl.Get(ctx(t), "job-s")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.revision("job-s"); got != rev {
		t.Errorf("revision moved from %d to %d", rev, got)
	}
	if !slices.Equal(steps(after), steps(before)) || after.State != messages.StateLoading || after.Attempt != 2 {
		t.Errorf("record changed: before %v %s, after %v %s", steps(before), before.State, steps(after), after.State)
	}
	if n := len(loader.requests()); n != 2 {
		t.Errorf("%d load requests, want 2", n)
	}
}

// TestTwoCoordinators: many jobs, two coordinators side by side; every
// result is applied exactly once.
func TestTwoCoordinators(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{Name: "a"})
	e.coordinator(Config{Name: "b"})
	const jobs = 60
	// Jobs with an odd number retry the first load.
	loader := e.worker(messages.StepLoad, "vmware", func(r messages.Request) reply {
		var n int
		fmt.Sscanf(r.JobID, "job-%d", &n)
		if n%2 == 1 && r.Attempt == 1 {
			return reply{outcome: messages.OutcomeRetry, detail: "flaky"}
		}
		return reply{outcome: messages.OutcomeReady, detail: "ok"}
	})
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	for i := range jobs {
		e.submit(spec(fmt.Sprintf("job-%d", i), fmt.Sprintf("vm-%d", i)))
	}
	for i := range jobs {
		id := fmt.Sprintf("job-%d", i)
		rec := e.waitState(id, messages.StateReady)
		want := 2 + i%2
		if len(rec.Steps) != want {
			t.Errorf("%s: history %v, want %d steps", id, steps(rec), want)
		}
		if got := len(loader.attempts(id)); got != 1+i%2 {
			t.Errorf("%s: %d load requests, want %d", id, got, 1+i%2)
		}
	}
	list, err := e.cl.List(ctx(t), messages.ListRequest{State: messages.StateReady, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != jobs {
		t.Errorf("list of ready jobs has %d, want %d", len(list), jobs)
	}
	if few, err := e.cl.List(ctx(t), messages.ListRequest{Limit: 5}); err != nil || len(few) != 5 || few[0].ID != list[0].ID {
		t.Errorf("list with limit 5: %d jobs, %v", len(few), err)
	}
	if none, err := e.cl.List(ctx(t), messages.ListRequest{State: messages.StateFailed}); err != nil || len(none) != 0 {
		t.Errorf("list of failed jobs: %d, %v", len(none), err)
	}
	for i := 1; i < len(list); i++ {
		if e.revision(list[i].ID) > e.revision(list[i-1].ID) {
			t.Errorf("list not the last changed first at %d", i)
		}
	}
}

// TestRestart: the coordinator stops mid-job; a new one on the same NATS
// finishes the job.
func TestRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.coordinator(Config{Name: "first"})
	release := make(chan struct{})
	e.worker(messages.StepLoad, "vmware", func(messages.Request) reply {
		return reply{outcome: messages.OutcomeReady, detail: "cloned", wait: release}
	})
	osw := e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.submit(spec("job-r", "vm-r"))
	e.waitState("job-r", messages.StateLoading)
	first.Stop()
	first.Stop() // idempotent

	close(release) // the load result arrives while no coordinator runs
	e.coordinator(Config{Name: "second"})
	rec := e.waitState("job-r", messages.StateReady)
	if got := steps(rec); !slices.Equal(got, []string{"1/load/ready", "1/postload/ready"}) {
		t.Errorf("history = %v", got)
	}
	if n := len(osw.requests()); n != 1 {
		t.Errorf("%d postload requests, want 1", n)
	}
}
