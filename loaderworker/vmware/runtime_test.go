package vmware_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"github.com/nats-io/nats.go"
	"github.com/vmware/govmomi/vim25/types"
)

// resultTimeout bounds the wait for one load's result.
const resultTimeout = time.Minute

// wire is steptest's wire with a loader worker for r's provisioner and a
// reader of events.
type wire struct {
	*steptest.Wire
	t      testing.TB
	events *nats.Subscription
}

func newWire(t testing.TB, r *rig, concurrency int) *wire {
	t.Helper()
	w := &wire{Wire: steptest.New(t), t: t}
	// Synchronous, on the connection that also reads the results: the
	// worker publishes a job's events before its result on one
	// connection, so once a result is read its events are queued here.
	sub, err := w.Conn().SubscribeSync(steptest.Subjects.Events())
	if err != nil {
		t.Fatal(err)
	}
	w.events = sub
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	lw, err := loaderworker.New(natstest.Connect(t, w.URL()), loaderworker.Config{Subjects: steptest.Subjects, Name: "vmware", Logger: quiet, Settings: pool.Config{Concurrency: concurrency, MaxAckPending: 2 * concurrency, Grace: 5 * time.Second}}, r.p)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	return w
}

// load sends a request and waits for its result.
func (w *wire) load(req messages.Request) messages.Result {
	w.t.Helper()
	w.Publish(req)
	res := w.Result(resultTimeout)
	if res.JobID != req.JobID || res.Attempt != req.Attempt {
		w.t.Fatalf("result for %s/%d, want %s/%d", res.JobID, res.Attempt, req.JobID, req.Attempt)
	}
	return res
}

// eventText is every event's message received so far, one a line.
func (w *wire) eventText() string {
	w.t.Helper()
	n, _, err := w.events.Pending()
	if err != nil {
		w.t.Fatal(err)
	}
	var all []string
	for range n {
		m, err := w.events.NextMsg(time.Second)
		if err != nil {
			w.t.Fatal(err)
		}
		var ev messages.Event
		if json.Unmarshal(m.Data, &ev) == nil {
			all = append(all, ev.Message)
		}
	}
	return strings.Join(all, "\n")
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
	all := w.eventText()
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
