package loaderworker_test

import (
	"context"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine"))
}

var subj = steptest.Subjects

// resultWait is how long a test waits for a result.
const resultWait = 30 * time.Second

// rig is the wire of the pool (steptest: what the coordinator would be,
// reduced to publishing requests and reading results) and the test.
type rig struct {
	*steptest.Wire
	t *testing.T
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return &rig{Wire: steptest.New(t), t: t}
}

func request(job string, attempt int) messages.Request {
	return messages.Request{
		JobID: job, Attempt: attempt, Step: messages.StepLoad, Reload: messages.ReloadIfNeeded,
		Computer: messages.Computer{Name: "vm-1", Provisioner: "fake", Type: messages.TypeVirtualMachine},
		Image:    messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"},
	}
}

// worker starts a loader worker for the fake provisioner on its own
// connection, stopped when the test ends.
func (r *rig) worker(f loaderworker.Provisioner, mut func(*loaderworker.Config)) (*loaderworker.Worker, *nats.Conn) {
	r.t.Helper()
	nc := natstest.Connect(r.t, r.URL())
	cfg := loaderworker.Config{Subjects: subj, Name: "fake", Settings: pool.Config{Concurrency: 4, Grace: 5 * time.Second}}
	if mut != nil {
		mut(&cfg)
	}
	w, err := loaderworker.New(nc, cfg, f)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(w.Stop)
	return w, nc
}

// pending is the number of load requests not yet acked or terminated.
func (r *rig) pending() uint64 { return r.Pending(subj.LoadStream()) }
