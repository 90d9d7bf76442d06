package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

// Invariant 1 on a three-node cluster: a node dies while jobs are in
// flight (loads held open); once the loads go on, every accepted job still
// reaches exactly one terminal state, with each step applied once.
func TestClusterNodeDiesMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cl := natstest.NewCluster(t)
	release := make(chan struct{})
	started := make(chan struct{}, 100)
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, p progress.Progress) (loaderworker.LoadReport, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return loaderworker.LoadReport{}, context.Cause(ctx)
		}
		return loaderworker.LoadReport{Detail: "loaded", Reloaded: true}, nil
	}}
	p := newPipeline(t, cl.URLs(), f, options{replicas: 3, ackWait: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 20
	p.submit(ctx, n)
	for range 4 {
		<-started // loads are running
	}
	cl.Stop(0)
	close(release)
	recs := p.waitAll(ctx, n)
	checkReady(t, recs)
	cl.Restart(t, 0)
}
