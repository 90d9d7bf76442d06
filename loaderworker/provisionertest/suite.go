// Package provisionertest is the conformance suite every provisioner must
// pass: the same cases, run through the real loader runtime
// (loaderworker.Worker) and an embedded NATS server, against whatever
// backend the provisioner's Fixture stands up (govmomi's simulator, the
// xCAT emulator, ...).
//
// Cases: a load answers ready and says it reloaded; the same image again
// under reload "if-needed" is skipped (ready, Reloaded false); under
// "always" it reloads; a transient backend fault answers retry; a missing
// image answers fail; a load slower than three leases keeps its lease (one
// delivery, one result); the power endpoint's reset, off, on and status,
// asked by the job that holds the computer in its post-load step (a
// record the suite writes into the jobs bucket), agree with the backend,
// act on the enrolled computer even when the request's computer carries
// other placement attributes, and are refused to a stale attempt.
package provisionertest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"
	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"github.com/nats-io/nats.go"
)

// Fixture is one provisioner standing in front of its backend.
type Fixture struct {
	Provisioner loaderworker.Provisioner
	// Name is the provisioner token ("vmware").
	Name string
	// Computer and Image load successfully.
	Computer messages.Computer
	Image    messages.Image
	// MissingImage must answer fail.
	MissingImage messages.Image
	// InjectTransient makes the next load of Computer fail transiently once.
	InjectTransient func()
	// Slow makes the next load take at least d.
	Slow func(d time.Duration)
	// PowerState reads Computer's power state from the backend: "on"/"off".
	PowerState func() string
}

var subj = steptest.Subjects

// Run runs every case, each with a fresh fixture and NATS server.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	cases := []struct {
		name string
		run  func(t *testing.T, r *rig)
	}{
		{"ready", caseReady},
		{"skip when loaded", caseSkip},
		{"reload always", caseAlways},
		{"transient fault is retry", caseTransient},
		{"missing image is fail", caseMissing},
		{"lease kept during a slow load", caseSlow},
		{"power endpoint", casePower},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.run(t, newRig(t, f))
		})
	}
}

type rig struct {
	*steptest.Wire
	t *testing.T
	f Fixture
	n int
}

func newRig(t *testing.T, f Fixture) *rig {
	return &rig{Wire: steptest.New(t), t: t, f: f}
}

func (r *rig) start(ackWait time.Duration) {
	r.t.Helper()
	nc := natstest.Connect(r.t, r.URL())
	w, err := loaderworker.New(nc, loaderworker.Config{Subjects: subj, Name: r.f.Name, Settings: pool.Config{Concurrency: 2, AckWait: ackWait, Grace: 5 * time.Second}}, r.f.Provisioner)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(w.Stop)
}

// load sends one load request and returns its result.
func (r *rig) load(img messages.Image, reload string) messages.Result {
	r.t.Helper()
	r.n++
	req := messages.Request{JobID: "suite-job", Attempt: r.n, Step: messages.StepLoad,
		Computer: r.f.Computer, Image: img, Reload: reload}
	r.PublishRaw(subj.LoadRequest(r.f.Name), messages.Encode(req))
	res := r.Result(2 * time.Minute)
	if res.Attempt != r.n {
		r.t.Fatalf("result for attempt %d, want %d", res.Attempt, r.n)
	}
	return res
}

func want(t *testing.T, res messages.Result, o messages.Outcome) {
	t.Helper()
	if res.Outcome != o {
		t.Fatalf("outcome %s (%s), want %s", res.Outcome, res.Detail, o)
	}
	if res.Detail == "" {
		t.Fatal("a result must say what happened in its detail")
	}
}

func reloaded(t *testing.T, res messages.Result, w bool) {
	t.Helper()
	if res.Reloaded == nil || *res.Reloaded != w {
		t.Fatalf("reloaded = %v, want %v (%s)", res.Reloaded, w, res.Detail)
	}
}

func caseReady(t *testing.T, r *rig) {
	r.start(0)
	res := r.load(r.f.Image, messages.ReloadIfNeeded)
	want(t, res, messages.OutcomeReady)
	reloaded(t, res, true)
	if s := r.f.PowerState(); s != "on" {
		t.Fatalf("after a load the computer is %q, want on", s)
	}
}

func caseSkip(t *testing.T, r *rig) {
	r.start(0)
	want(t, r.load(r.f.Image, messages.ReloadIfNeeded), messages.OutcomeReady)
	res := r.load(r.f.Image, messages.ReloadIfNeeded)
	want(t, res, messages.OutcomeReady)
	reloaded(t, res, false)
	if !strings.Contains(strings.ToLower(res.Detail), "skip") {
		t.Fatalf("detail %q should say the load was skipped", res.Detail)
	}
}

func caseAlways(t *testing.T, r *rig) {
	r.start(0)
	want(t, r.load(r.f.Image, messages.ReloadIfNeeded), messages.OutcomeReady)
	res := r.load(r.f.Image, messages.ReloadAlways)
	want(t, res, messages.OutcomeReady)
	reloaded(t, res, true)
}

func caseTransient(t *testing.T, r *rig) {
	r.start(0)
	r.f.InjectTransient()
	want(t, r.load(r.f.Image, messages.ReloadAlways), messages.OutcomeRetry)
	want(t, r.load(r.f.Image, messages.ReloadAlways), messages.OutcomeReady)
}

func caseMissing(t *testing.T, r *rig) {
	r.start(0)
	res := r.load(r.f.MissingImage, messages.ReloadAlways)
	want(t, res, messages.OutcomeFail)
	if res.Reason != outcome.ReasonNotFound { // loader results carry a machine reason as OS results do
		t.Fatalf("reason %q, want %q (detail: %s)", res.Reason, outcome.ReasonNotFound, res.Detail)
	}
}

func caseSlow(t *testing.T, r *rig) {
	const ackWait = 500 * time.Millisecond
	r.start(ackWait)
	r.f.Slow(4 * ackWait)
	res := r.load(r.f.Image, messages.ReloadAlways)
	want(t, res, messages.OutcomeReady)
	r.NoResult(2 * ackWait) // a second result: the lease was not kept
}

func casePower(t *testing.T, r *rig) {
	r.start(0)
	want(t, r.load(r.f.Image, messages.ReloadAlways), messages.OutcomeReady)
	// The job that holds the computer, in its post-load step (attempt 2).
	r.Postloading(messages.Request{JobID: "suite-power", Attempt: 2, Step: messages.StepPostload,
		Computer: r.f.Computer, Image: r.f.Image, Reload: messages.ReloadAlways, Reloaded: true})
	// Placement attributes in the request are not the enrolment's: were
	// the provisioner given them, it would look for nothing there.
	forged := r.f.Computer
	forged.Attributes = map[string]string{"vm_path": "/no-such-dc/vm/elsewhere", "node": "no-such-node"}
	for _, step := range []struct{ action, state string }{
		{messages.PowerOff, "off"}, {messages.PowerStatus, "off"}, {messages.PowerOn, "on"},
		{messages.PowerReset, "on"}, {messages.PowerStatus, "on"},
	} {
		msg := r.power(messages.PowerRequest{JobID: "suite-power", Attempt: 2, Computer: forged, Action: step.action})
		if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
			t.Fatalf("%s: error %s %s", step.action, code, msg.Data)
		}
		var rep messages.PowerReply
		if err := json.Unmarshal(msg.Data, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.State != step.state || r.f.PowerState() != step.state {
			t.Fatalf("after %s: reply says %q, backend says %q, want %q", step.action, rep.State, r.f.PowerState(), step.state)
		}
	}
	msg := r.power(messages.PowerRequest{JobID: "suite-power", Attempt: 1, Computer: r.f.Computer, Action: messages.PowerOff})
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != "409" || !strings.Contains(string(msg.Data), "not job suite-power's current attempt 2") {
		t.Fatalf("stale attempt: code %q %s, want 409", code, msg.Data)
	}
	if s := r.f.PowerState(); s != "on" {
		t.Fatalf("a refused power off changed the computer: %s", s)
	}
}

func (r *rig) power(req messages.PowerRequest) *nats.Msg {
	r.t.Helper()
	msg, err := r.Conn().Request(subj.Power(r.f.Name), messages.Encode(req), time.Minute)
	if err != nil {
		r.t.Fatal(err)
	}
	return msg
}
