package coordinator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterNodeLoss: on a three-node cluster with three replicas, jobs
// submitted before a NATS node stops all reach ready (invariant 1).
func TestClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster")
	}
	t.Parallel()
	cl := natstest.NewCluster(t)
	e := &env{t: t, url: cl.URLs(), replicas: 3}
	e.nc = e.connect()
	var err error
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	e.cl = NewClient(e.nc, subj)
	// The cluster may not have all its peers yet: Start waits for them.
	e.coordinator(Config{Name: "a"})
	e.coordinator(Config{Name: "b"})
	e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))

	const jobs = 20
	for i := range jobs {
		e.submitRetry(spec(fmt.Sprintf("cj-%d", i), fmt.Sprintf("vm-%d", i)))
		if i == jobs/2 {
			cl.Stop(2)
		}
	}
	for i := range jobs {
		e.waitStateRetry(fmt.Sprintf("cj-%d", i), messages.StateReady)
	}
	cl.Restart(t, 2)
}

// clusterPatience is how long the cluster test waits for a leader
// election after a node stops (2 shared cores, -race).
const clusterPatience = 90 * time.Second

// submitRetry submits, retrying while the cluster elects leaders (503 or
// timeouts); the same id makes that safe.
func (e *env) submitRetry(s messages.JobSpec) {
	e.t.Helper()
	var err error
	defer func() {
		if e.t.Failed() {
			e.t.Logf("last submit error: %v", err)
		}
	}()
	poll.Within(e.t, clusterPatience, "submit of "+s.ID, func() bool {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err = e.cl.AddComputer(c, s.Computer); err != nil {
			return false
		}
		_, err = e.cl.Submit(c, s)
		return err == nil
	})
}

func (e *env) waitStateRetry(id, state string) {
	e.t.Helper()
	poll.Within(e.t, clusterPatience, id+" in state "+state, func() bool {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := e.cl.Get(c, id)
		return err == nil && r.State == state
	})
}
