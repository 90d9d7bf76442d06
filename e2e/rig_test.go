package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"
	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker"
	"github.com/nats-io/nats.go"
)

var (
	subj  = messages.Subjects{Prefix: "vcl"}
	quiet = testLogger()
)

// pipeline is a coordinator, a loader pool ("fake") and an OS pool
// ("linux") on one NATS (a server or a cluster).
type pipeline struct {
	tb     testing.TB
	url    string
	client *coordinator.Client
	loader *loaderworker.Fake
}

type options struct {
	replicas    int
	concurrency int
	ackWait     time.Duration
	postload    stepworker.Handler
}

func connect(tb testing.TB, url string) *nats.Conn {
	tb.Helper()
	return natstest.Connect(tb, url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
}

// newCoordinatorOnly starts a coordinator and returns a client of it.
func newCoordinatorOnly(tb testing.TB, url string, ackWait time.Duration) *coordinator.Client {
	tb.Helper()
	startCoordinator(tb, url, options{ackWait: ackWait})
	return coordinator.NewClient(connect(tb, url), subj)
}

func startCoordinator(tb testing.TB, url string, o options) {
	tb.Helper()
	co, err := coordinator.New(connect(tb, url), coordinator.Config{Subjects: subj, Logger: quiet, Settings: pool.Config{Replicas: o.replicas, AckWait: o.ackWait}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := co.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(co.Stop)
}

func newPipeline(tb testing.TB, url string, f *loaderworker.Fake, o options) *pipeline {
	tb.Helper()
	ctx := context.Background()
	o.concurrency = max(o.concurrency, 8)
	startCoordinator(tb, url, o)
	lw, err := loaderworker.New(connect(tb, url), loaderworker.Config{Subjects: subj, Name: "fake", Logger: quiet, Settings: pool.Config{Concurrency: o.concurrency, AckWait: o.ackWait, Grace: time.Second, Replicas: o.replicas}}, f)
	if err != nil {
		tb.Fatal(err)
	}
	if err := lw.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(lw.Stop)
	h := o.postload
	if h == nil {
		h = func(ctx context.Context, req messages.Request, p progress.Progress) (stepworker.Report, error) {
			return stepworker.Report{Detail: "configured " + req.Computer.Name}, nil
		}
	}
	ow, err := stepworker.New(connect(tb, url), stepworker.Config{Subjects: subj, Step: messages.StepPostload, Pool: "linux", Logger: quiet, Settings: pool.Config{Concurrency: o.concurrency, AckWait: o.ackWait, Grace: time.Second, Replicas: o.replicas}}, h)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ow.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ow.Stop)
	return &pipeline{tb: tb, url: url, client: coordinator.NewClient(connect(tb, url), subj), loader: f}
}

func spec(i int) messages.JobSpec {
	return messages.JobSpec{ID: fmt.Sprintf("job-%04d", i),
		Computer: messages.Computer{Name: fmt.Sprintf("vm-%04d", i), Provisioner: "fake", Type: messages.TypeVirtualMachine},
		Image:    messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"}}
}

// submit submits jobs 0..n-1, retrying a submit that fails while the
// cluster moves leaders (the same id is idempotent).
func (p *pipeline) submit(ctx context.Context, n int) {
	p.tb.Helper()
	for i := range n {
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a fresh deadline per try
			_, err := p.client.AddComputer(cctx, spec(i).Computer)
			if err == nil {
				_, err = p.client.Submit(cctx, spec(i))
			}
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				p.tb.Fatalf("submit %d: %v", i, err)
			}
		}
	}
}

// waitAll waits until every job 0..n-1 has ended and returns the records.
func (p *pipeline) waitAll(ctx context.Context, n int) []messages.JobRecord {
	p.tb.Helper()
	recs := make([]messages.JobRecord, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			for {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a request lost with a dying node must not eat the whole budget
				rec, err := p.client.Get(cctx, spec(i).ID)
				cancel()
				if err == nil && messages.Terminal(rec.State) {
					recs[i] = rec
					return
				}
				select {
				case <-ctx.Done():
					errs <- fmt.Errorf("job %d never ended (last %s, %v)", i, rec.State, err)
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		p.tb.Fatal(err)
	}
	return recs
}

// checkReady asserts every job ended ready with exactly one load and one
// post-load applied.
func checkReady(tb testing.TB, recs []messages.JobRecord) {
	tb.Helper()
	for _, r := range recs {
		if r.State != messages.StateReady || len(r.Steps) != 2 || r.Steps[0].Step != messages.StepLoad || r.Steps[1].Step != messages.StepPostload {
			tb.Errorf("job %s: state %s, steps %+v", r.ID, r.State, r.Steps)
		}
	}
}

// testLogger discards logs unless LOADPOOL_E2E_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("LOADPOOL_E2E_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
