package coordinator

import (
	"fmt"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/messages"
)

// Ready steps' durations are learned per (image, computer type, step);
// once DefaultETASamples are known, requests carry them and the events of
// the running step carry an ETA; before that, neither does.
func TestDurationsLearned(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(Config{Durations: true})
	lw := e.worker(messages.StepLoad, "vmware", func(messages.Request) reply { return reply{} })
	ow := e.worker(messages.StepPostload, "windows", func(messages.Request) reply { return reply{} })
	answer := func(req messages.Request, took time.Duration) {
		now := time.Now().UTC()
		res := resultFor(req, messages.OutcomeReady, "done")
		res.Started, res.Finished = now.Add(-took), now
		publishResult(t, e.js, res)
	}
	poll.Until(t, "the durations bucket", func() bool {
		c.durs.mu.Lock()
		defer c.durs.mu.Unlock()
		return c.durs.kv != nil
	})
	for i := range DefaultETASamples + 1 {
		id := fmt.Sprintf("eta-%d", i)
		events := e.watchEvents(id)
		e.submit(spec(id, fmt.Sprintf("vm-%d", i)))
		load := lw.next()
		if (load.Learned != nil) != (i == DefaultETASamples) {
			t.Fatalf("job %d: load request learned %+v", i, load.Learned)
		}
		answer(load, time.Duration(i+1)*time.Second)
		post := ow.next()
		answer(post, 10*time.Second)
		evs := events()
		var eta *messages.StepStats
		for _, ev := range evs {
			if ev.State == messages.StatePostloading && ev.ETA != nil {
				eta = ev.ETA
			}
		}
		if i < DefaultETASamples {
			if eta != nil {
				t.Fatalf("job %d: an ETA before %d samples: %+v", i, DefaultETASamples, eta)
			}
			want := i + 1
			poll.Until(t, fmt.Sprintf("%d post-loads learned", want), func() bool {
				c.durs.mu.Lock()
				defer c.durs.mu.Unlock()
				return len(c.durs.m[messages.DurationsKey("win7-sp1-v3", messages.TypeVirtualMachine, messages.StepPostload)].Seconds) == want
			})
			continue
		}
		// Loads took 1s..5s: p50 3s, p90 and p99 5s.
		if l := load.Learned; l.Samples != 5 || l.P50.D() != 3*time.Second || l.P90.D() != 5*time.Second || l.P99.D() != 5*time.Second {
			t.Errorf("learned loads %+v, want 5 samples, p50 3s, p90 5s, p99 5s", l)
		}
		if eta == nil || eta.P50.D() != 10*time.Second || eta.Started.IsZero() {
			t.Errorf("post-load event's ETA %+v, want p50 10s with the step's start", eta)
		}
	}
}
