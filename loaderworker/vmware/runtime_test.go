package vmware_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker"
)

var subj = messages.Subjects{Prefix: "vcl"}

// wire is a NATS server with the streams, a loader worker for r's
// provisioner, a reader of results and a recorder of events.
type wire struct {
	t      testing.TB
	js     jetstream.JetStream
	res    jetstream.Consumer
	mu     sync.Mutex
	events []string
}

func newWire(t testing.TB, r *rig, concurrency int) *wire {
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
	w := &wire{t: t, js: js}
	if w.res, err = js.CreateConsumer(ctx, subj.ResultStream(), jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.Subscribe(subj.Events(), w.record)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	lw, err := loaderworker.New(embednats.Connect(t, srv.URL()), loaderworker.Config{Subjects: subj, Name: "vmware",
		Concurrency: concurrency, MaxAckPending: 2 * concurrency, Grace: 5 * time.Second, Logger: quiet}, r.p)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	return w
}

func (w *wire) record(m *nats.Msg) {
	var ev messages.Event
	if json.Unmarshal(m.Data, &ev) == nil {
		w.mu.Lock()
		w.events = append(w.events, ev.Message)
		w.mu.Unlock()
	}
}

// load sends a request and waits for its result.
func (w *wire) load(req messages.Request) messages.Result {
	w.t.Helper()
	w.publish(req)
	res := w.next()
	if res.JobID != req.JobID || res.Attempt != req.Attempt {
		w.t.Fatalf("result for %s/%d, want %s/%d", res.JobID, res.Attempt, req.JobID, req.Attempt)
	}
	return res
}

func (w *wire) publish(req messages.Request) {
	w.t.Helper()
	if _, err := w.js.Publish(context.Background(), subj.LoadRequest("vmware"), messages.Encode(req)); err != nil {
		w.t.Fatal(err)
	}
}

// next waits for the next result.
func (w *wire) next() messages.Result {
	w.t.Helper()
	msg, err := w.res.Next(jetstream.FetchMaxWait(time.Minute))
	if err != nil {
		w.t.Fatalf("no result: %v", err)
	}
	_ = msg.Ack()
	res, err := messages.DecodeResult(msg.Data())
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

// TestRuntimeSessionLossAndPasswordChange: through the loader runtime, a
// dropped session is renewed without failing a job; when the renewal is
// refused (the password changed), the job fails with what to fix, and the
// next job logs in again.
func TestRuntimeSessionLossAndPasswordChange(t *testing.T) {
	t.Parallel()
	r := newRig(t, vcsim.Options{})
	w := newWire(t, r, 4)
	req := request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways)
	steps := []struct {
		before  func()
		outcome messages.Outcome
		says    string
	}{
		{nil, messages.OutcomeReady, "cloned ubuntu-22.04 to vm-1"},
		{func() { drop(t, r) }, messages.OutcomeReady, "cloned"},
		{func() { drop(t, r); r.sim.FailCallWith("Login", "*", &types.InvalidLogin{}, 1) }, messages.OutcomeFail,
			"vCenter refused the login for user loadpool: check LOADPOOL_VSPHERE_USER"},
		{nil, messages.OutcomeReady, "cloned"},
	}
	for i, s := range steps {
		if s.before != nil {
			s.before()
		}
		req.Attempt = i + 1
		res := w.load(req)
		if res.Outcome != s.outcome || !strings.Contains(res.Detail, s.says) {
			t.Fatalf("step %d: %s %q, want %s saying %q", i, res.Outcome, res.Detail, s.outcome, s.says)
		}
	}
	if n := r.p.Relogins(); n != 2 {
		t.Fatalf("re-logins = %d, want 2 (one per dropped session that was renewed)", n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	all := strings.Join(w.events, "\n")
	for _, want := range []string{"cloning ubuntu-22.04 to vm-1", "powering on vm-1"} {
		if !strings.Contains(all, want) {
			t.Fatalf("no event says %q; events:\n%s", want, all)
		}
	}
}

func drop(t *testing.T, r *rig) {
	t.Helper()
	if n, err := r.sim.DropSessions(context.Background()); err != nil || n != 1 {
		t.Fatalf("DropSessions = %d, %v", n, err)
	}
}
