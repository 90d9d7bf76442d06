package e2e

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

// BenchmarkPipeline pushes b.N jobs through submit -> load -> post-load ->
// ready with instant workers on one embedded server: the coordinator's and
// the runtimes' own cost per job. Reports jobs/s.
func BenchmarkPipeline(b *testing.B) {
	srv := natstest.New(b)
	p := newPipeline(b, srv.URL(), &loaderworker.Fake{}, options{concurrency: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	p.submit(ctx, b.N)
	checkReady(b, p.waitAll(ctx, b.N))
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkJobsInFlight holds b.N jobs in their load step at once and
// reports the coordinator-side goroutines and heap per job in flight (the
// coordinator keeps no goroutine, timer or subscription per job).
func BenchmarkJobsInFlight(b *testing.B) {
	srv := natstest.New(b)
	release := make(chan struct{})
	started := make(chan struct{}, b.N)
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, _ progress.Progress) (loaderworker.LoadReport, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return loaderworker.LoadReport{Detail: "loaded", Reloaded: true}, nil
	}}
	p := newPipeline(b, srv.URL(), f, options{concurrency: b.N})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	b.ResetTimer()
	p.submit(ctx, b.N)
	for range b.N {
		<-started
	}
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The loader runs one goroutine per load it holds (b.N here): subtract it.
	extra := runtime.NumGoroutine() - g0 - b.N
	b.ReportMetric(float64(extra)/float64(b.N), "goroutines/job(non-loader)")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap-B/job(all-in-process)")
	close(release)
	checkReady(b, p.waitAll(ctx, b.N))
}
