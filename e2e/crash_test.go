package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"
	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

// A loader killed in the middle of a load (its NATS connection gone, its
// goroutine still stuck in the provisioner): another loader gets the
// request once the lease lapses, and the job finishes with one load and one
// post-load in its history.
func TestLoaderKilledMidLoadJobFinishes(t *testing.T) {
	t.Parallel()
	srv := natstest.New(t)
	const ackWait = time.Second
	started := make(chan struct{})
	var calls atomic.Int32
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, p progress.Progress) (loaderworker.LoadReport, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-ctx.Done() // the doomed loader hangs until its runtime gives up
			return loaderworker.LoadReport{}, context.Cause(ctx)
		}
		return loaderworker.LoadReport{Detail: "loaded by the survivor", Reloaded: true}, nil
	}}
	doomedNC := connect(t, srv.URL())
	doomed, err := loaderworker.New(doomedNC, loaderworker.Config{Subjects: subj, Name: "fake", Logger: quiet, Settings: pool.Config{AckWait: ackWait, WorkerID: "doomed"}}, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := doomed.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(doomed.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	co := newCoordinatorOnly(t, srv.URL(), ackWait)
	if _, err := co.AddComputer(ctx, spec(0).Computer); err != nil {
		t.Fatal(err)
	}
	if _, err := co.Submit(ctx, spec(0)); err != nil {
		t.Fatal(err)
	}
	<-started
	doomedNC.Close()
	// A second coordinator and the survivor loader start only now.
	p := newPipeline(t, srv.URL(), f, options{ackWait: ackWait})
	recs := p.waitAll(ctx, 1)
	checkReady(t, recs)
	if d := recs[0].Steps[0].Detail; d != "loaded by the survivor" || recs[0].Attempt != 1 {
		t.Fatalf("load step %q on attempt %d: want the survivor's load on attempt 1", d, recs[0].Attempt)
	}
}
