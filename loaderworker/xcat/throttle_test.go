package xcat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker/steptest"
)

// TestThrottle: with a pool-wide limit of 3 (the consumer's MaxAckPending)
// spread over two worker processes that could each run 8, ten installs run
// at most three at once in the emulator, and all ten finish ready.
func TestThrottle(t *testing.T) {
	const jobs, limit = 10, 3
	r := newRig(t, rigOpt{nodes: jobs})
	wire := steptest.New(t)
	ctx := context.Background()
	for range 2 {
		w, err := loaderworker.New(natstest.Connect(t, wire.URL()), loaderworker.Config{Subjects: steptest.Subjects, Name: Name, Logger: r.prov.log, Settings: pool.Config{Concurrency: 8, MaxAckPending: limit, Grace: 5 * time.Second}}, r.prov)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	for i := 1; i <= jobs; i++ {
		req := request(nodeName(i), testImage, messages.ReloadAlways)
		req.JobID = fmt.Sprintf("job-%d", i)
		wire.Publish(req)
	}
	done := map[string]bool{}
	for len(done) < jobs {
		res := wire.Result(30 * time.Second)
		if res.Outcome != messages.OutcomeReady {
			t.Errorf("%s: %s (%s)", res.JobID, res.Outcome, res.Detail)
		}
		done[res.JobID] = true
	}
	now, most := r.emu.Installs()
	if most > limit || most < 2 || now != 0 {
		t.Errorf("installs at once: at most %d seen (now %d); want at most %d, and more than one (the pool did run in parallel)", most, now, limit)
	}
	t.Logf("most installs at once: %d of limit %d", most, limit)
}
