package loaderworker_test

import (
	"context"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine"))
}

var subj = messages.Subjects{Prefix: "vcl"}

// rig is a NATS server with the streams, a publisher of requests and a
// reader of results: what the coordinator would be, reduced to the wire.
type rig struct {
	t   *testing.T
	srv *embednats.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	res jetstream.Consumer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := embednats.Test(t)
	nc := embednats.Connect(t, srv.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := (stepworker.Topology{Subjects: subj}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	res, err := js.CreateConsumer(ctx, subj.ResultStream(), jetstream.ConsumerConfig{Durable: "test-results", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, srv: srv, nc: nc, js: js, res: res}
}

func request(job string, attempt int) messages.Request {
	return messages.Request{
		JobID: job, Attempt: attempt, Step: messages.StepLoad, Reload: messages.ReloadIfNeeded,
		Computer: messages.Computer{Name: "vm-1", Provisioner: "fake", Type: messages.TypeVirtualMachine},
		Image:    messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"},
	}
}

func (r *rig) publish(req messages.Request) {
	r.t.Helper()
	r.publishRaw(r.subjFor(req), messages.Encode(req))
}

func (r *rig) subjFor(req messages.Request) string { return subj.LoadRequest(req.Computer.Provisioner) }

func (r *rig) publishRaw(subject string, body []byte) {
	r.t.Helper()
	if _, err := r.js.Publish(context.Background(), subject, body); err != nil {
		r.t.Fatal(err)
	}
}

// result waits for the next result (30s at most).
func (r *rig) result() messages.Result {
	r.t.Helper()
	msg, err := r.res.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		r.t.Fatalf("no result: %v", err)
	}
	_ = msg.Ack()
	res, err := messages.DecodeResult(msg.Data())
	if err != nil {
		r.t.Fatalf("bad result %s: %v", msg.Data(), err)
	}
	return res
}

// noResult asserts that no result arrives within d.
func (r *rig) noResult(d time.Duration) {
	r.t.Helper()
	msg, err := r.res.Next(jetstream.FetchMaxWait(d))
	if err == nil {
		r.t.Fatalf("unexpected result: %s", msg.Data())
	}
}

// worker starts a loader worker for the fake provisioner on its own
// connection, stopped when the test ends.
func (r *rig) worker(f loaderworker.Provisioner, mut func(*loaderworker.Config)) (*loaderworker.Worker, *nats.Conn) {
	r.t.Helper()
	nc := embednats.Connect(r.t, r.srv.URL())
	cfg := loaderworker.Config{Subjects: subj, Name: "fake", Concurrency: 4, Grace: 5 * time.Second}
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

// streamEmpty waits until the load stream holds no message (every request
// acked or terminated).
func (r *rig) pending() uint64 {
	r.t.Helper()
	s, err := r.js.Stream(context.Background(), subj.LoadStream())
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.Msgs
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
