package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/messages"
)

// TestStepCap: a step with no result past the safety cap becomes a retry
// (worker = coordinator, detail names the cap), the attempt is aborted,
// and the next attempt runs.
func TestStepCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{Name: "sweeper-a", StepCap: 2 * time.Second, SweepInterval: 100 * time.Millisecond})
	e.coordinator(Config{Name: "sweeper-b", StepCap: 2 * time.Second, SweepInterval: 100 * time.Millisecond})
	loader := e.worker(messages.StepLoad, "vmware", func(r messages.Request) reply {
		if r.Attempt == 1 {
			return reply{} // the worker takes the request and dies
		}
		return reply{outcome: messages.OutcomeReady, detail: "cloned"}
	})
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	aborts, err := e.nc.SubscribeSync(subj.Abort("job-cap"))
	if err != nil {
		t.Fatal(err)
	}
	s := spec("job-cap", "vm-cap")
	s.MaxAttempts = 5
	e.submit(s)
	rec := e.waitState("job-cap", messages.StateReady)

	first := rec.Steps[0]
	if first.Attempt != 1 || first.Step != messages.StepLoad || first.Outcome != messages.OutcomeRetry ||
		first.Reason != "step-cap" || !strings.HasPrefix(first.Worker, "sweeper-") || !strings.Contains(first.Detail, "safety cap of 2s") {
		t.Errorf("first step = %+v", first)
	}
	capped := 0
	for _, s := range rec.Steps {
		if s.Reason == "step-cap" {
			capped++
		}
	}
	if len(rec.Steps) != capped+2 {
		t.Errorf("history %v: want the capped steps plus one load and one postload", steps(rec))
	}
	if got := loader.attempts("job-cap"); len(got) < 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("load attempts %v", got)
	}
	m, err := aborts.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal("no abort:", err)
	}
	var ab messages.Abort
	if err := messages.Decode(m.Data, &ab, false); err != nil || ab.Attempt != 1 || !strings.Contains(ab.Reason, "safety cap") {
		t.Errorf("abort = %+v (%v)", ab, err)
	}
}

// TestMaxDeliveries: a request that exhausts MaxDeliver becomes a retry
// of its job and is removed from the work queue.
func TestMaxDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{Settings: pool.Config{MaxDeliver: 2, AckWait: time.Second}})
	e.submit(spec("job-md", "vm-md")) // the coordinator creates the pool consumer
	loader := e.worker(messages.StepLoad, "vmware", func(r messages.Request) reply {
		if r.Attempt == 1 {
			return reply{nak: true} // every worker gives it back
		}
		return reply{outcome: messages.OutcomeReady, detail: "cloned"}
	})
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	rec := e.waitState("job-md", messages.StateReady)

	if got := steps(rec); len(got) != 3 || got[0] != "1/load/retry" || got[1] != "2/load/ready" {
		t.Fatalf("history = %v", got)
	}
	if d := rec.Steps[0].Detail; rec.Steps[0].Reason != "max-deliveries" || !strings.Contains(d, "delivered 2 times") || !strings.Contains(d, "no worker finished") {
		t.Errorf("first step = %+v", rec.Steps[0])
	}
	if got := loader.attempts("job-md"); len(got) != 1 || got[0] != 2 {
		t.Errorf("worker finished attempts %v, want [2]", got)
	}
	poll.Until(t, "the undeliverable request to leave VCL_LOAD", func() bool {
		st, err := e.js.Stream(ctx(t), subj.LoadStream())
		if err != nil {
			return false
		}
		info, err := st.Info(ctx(t))
		return err == nil && info.State.Msgs == 0
	})
}
