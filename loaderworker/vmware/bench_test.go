package vmware_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/messages"
)

// BenchmarkLoad is the time of one clone load (destroy the old VM, linked
// clone, tag, power on) against the simulator.
func BenchmarkLoad(b *testing.B) {
	for _, strategy := range []string{"clone", "snapshot"} {
		b.Run(strategy, func(b *testing.B) {
			r := newRig(b, vcsim.Options{PersistentVMs: []string{"vm-1"}})
			req := request("vm-1", "ubuntu-22.04", strategy, messages.ReloadAlways)
			for b.Loop() {
				if _, err := r.p.Load(context.Background(), req, &events{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoadParallel runs n clone loads onto n computers at once in
// one process (one session) and reports loads per second.
func BenchmarkLoadParallel(b *testing.B) {
	for _, n := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := newRig(b, vcsim.Options{})
			loads := 0
			start := time.Now()
			for b.Loop() {
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						req := request(fmt.Sprintf("vm-%d", i), "ubuntu-22.04", "", messages.ReloadAlways)
						if _, err := r.p.Load(context.Background(), req, &events{}); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				loads += n
			}
			b.ReportMetric(float64(loads)/time.Since(start).Seconds(), "loads/s")
		})
	}
}

// BenchmarkWorker pushes 64 loads onto 64 computers through one loader
// worker process (the runtime and NATS) with Concurrency c, and reports
// loads per second.
func BenchmarkWorker(b *testing.B) {
	for _, c := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			r := newRig(b, vcsim.Options{})
			w := newWire(b, r, c)
			const n = 64
			loads := 0
			start := time.Now()
			attempt := 0
			for b.Loop() {
				attempt++
				for i := range n {
					req := request(fmt.Sprintf("vm-%d", i), "ubuntu-22.04", "", messages.ReloadAlways)
					req.Attempt = attempt
					w.Publish(req)
				}
				for range n {
					if res := w.Result(resultTimeout); res.Outcome != messages.OutcomeReady {
						b.Fatalf("%s: %s", res.Outcome, res.Detail)
					}
				}
				loads += n
			}
			b.ReportMetric(float64(loads)/time.Since(start).Seconds(), "loads/s")
		})
	}
}
