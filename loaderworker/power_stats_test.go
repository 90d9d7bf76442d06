package loaderworker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// TestPowerStats: `nats micro stats loadpool-loader-<provisioner>` times a
// power action until its reply (at least the 50 ms it takes) and counts
// the 503 of a request that finds PowerConcurrency actions running; the
// status endpoint answers meanwhile.
func TestPowerStats(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	const hold = 50 * time.Millisecond
	entered, release := make(chan struct{}), make(chan struct{})
	f := &loaderworker.Fake{PowerFunc: func(context.Context, messages.PowerRequest) (messages.PowerReply, error) {
		close(entered)
		<-release
		time.Sleep(hold) // the action's known duration
		return messages.PowerReply{State: "on"}, nil
	}}
	r.worker(f, func(c *loaderworker.Config) { c.PowerConcurrency = 1 })
	comp := messages.Computer{Name: "vm-1", Provisioner: "fake", Type: messages.TypeVirtualMachine}
	r.Postloading(messages.Request{JobID: "job-p", Attempt: 1, Step: messages.StepPostload, Computer: comp,
		Image: messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"}, Reload: messages.ReloadIfNeeded})
	body := messages.Encode(messages.PowerRequest{JobID: "job-p", Attempt: 1, Action: messages.PowerReset, Computer: comp})
	nc := r.Conn()
	first := make(chan *nats.Msg, 1)
	go func() {
		m, err := nc.Request(subj.Power("fake"), body, 10*time.Second)
		if err != nil {
			t.Errorf("first power request: %v", err)
		}
		first <- m
	}()
	<-entered
	if m, err := nc.Request(subj.Power("fake"), body, 10*time.Second); err != nil || m.Header.Get(micro.ErrorCodeHeader) != "503" {
		t.Fatalf("a power request while the one slot is taken: %v, want a 503", err)
	}
	if _, err := nc.Request(subj.Status(messages.StepLoad, "fake"), nil, 10*time.Second); err != nil {
		t.Fatalf("status while power is busy: %v", err)
	}
	close(release)
	if m := <-first; m == nil || m.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("first power request answered %v", m)
	}
	m, err := nc.Request("$SRV.STATS.loadpool-loader-fake", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st micro.Stats
	if err := json.Unmarshal(m.Data, &st); err != nil {
		t.Fatal(err)
	}
	for _, ep := range st.Endpoints {
		if ep.Name != "power" {
			continue
		}
		if ep.NumRequests != 2 || ep.NumErrors != 1 || ep.LastError == "" || ep.ProcessingTime < hold {
			t.Errorf("power stats %+v: want 2 requests, 1 error (the 503), processing at least %s", ep, hold)
		}
		return
	}
	t.Fatalf("no power endpoint in %s", m.Data)
}
