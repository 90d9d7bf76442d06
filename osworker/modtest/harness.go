package modtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/loadpool/loadpool/osworker/control/qga"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/ssh"
)

// quiet drops the workers' logs; events carry what a failure needs.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Subjects are the suite's subjects.
var Subjects = steptest.Subjects

// Fixture is one OS module and its simulated computer.
type Fixture struct {
	Module osworker.Module
	// NewShell returns a fresh personality that becomes ready within
	// about a second of SSH answering.
	NewShell func() devlab.Shell
	// Image is an image of the module's family (name, os_family,
	// os_version, sysprep); ComputerType the computer's type.
	Image        messages.Image
	ComputerType string
	// Ready checks the computer after a ready post-load (optional).
	Ready func(t *testing.T, c *devlab.Computer, req messages.Request, res messages.Result)
}

// TinyProfile is the operator profile the suite runs with: milliseconds.
const TinyProfile = `{"initial_delay": "10ms", "poll": "25ms", "answer_timeout": "2s", "ready_timeout": "3s",
	"stall_timeout": "0s", "on_timeout": "power-reset", "reset_initial_delay": "10ms",
	"reset_answer_timeout": "600ms", "attempt_factor": 1.5, "reset_first_from_attempt": 0}`

// Harness runs one module against simulated computers.
type Harness struct {
	T      *testing.T
	F      Fixture
	Wire   *steptest.Wire // the pool's NATS: requests in, results out
	Sim    *devlab.Sim
	Client ssh.Signer
	events *eventLog
	worker *osworker.Worker

	mu sync.Mutex
	// learned is the host key each computer's enrolment would hold: the
	// harness plays the coordinator, which writes a result's learned key
	// into the enrolment.
	learned map[string]*messages.LearnedHostKey
	method  string
	agents  map[string]string // computer -> its agent socket (MethodQGA)
}

// NewHarness starts NATS, the streams, a loader for devlab.SimName and the
// OS worker of f.Module with the operator profiles (TinyProfile for the
// module's family when profiles is empty).
func NewHarness(t *testing.T, f Fixture, profiles string) *Harness {
	t.Helper()
	return NewHarnessOver(t, f, profiles, MethodSSH)
}

// NewHarnessOver is NewHarness with the computers reached by method
// (MethodSSH or MethodQGA).
func NewHarnessOver(t *testing.T, f Fixture, profiles, method string) *Harness {
	t.Helper()
	h := &Harness{T: t, F: f, Wire: steptest.New(t), Sim: devlab.NewSim(f.Image.Name), Client: labtest.Signer(t),
		events: &eventLog{}, learned: map[string]*messages.LearnedHostKey{}, method: method, agents: map[string]string{}}
	// A synchronous subscription on the connection that also fetches the
	// results: the worker publishes a step's events before its result on
	// one connection, so by the time a result is read here its events
	// wait in this subscription's queue (an asynchronous callback could
	// still be behind).
	sub, err := h.Wire.Conn().SubscribeSync(Subjects.Events())
	if err != nil {
		t.Fatal(err)
	}
	h.events.sub = sub
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	h.startLoader()
	if profiles == "" {
		profiles = fmt.Sprintf(`[{"family": %q, "set": %s}]`, f.Module.Family(), TinyProfile)
	}
	h.startWorker(profiles)
	return h
}

func (h *Harness) startLoader() {
	nc := natstest.Connect(h.T, h.Wire.URL())
	lw, err := loaderworker.New(nc, loaderworker.Config{Subjects: Subjects, Name: devlab.SimName, Logger: quiet, Settings: pool.Config{Concurrency: 4, Grace: time.Second}}, h.Sim)
	if err != nil {
		h.T.Fatal(err)
	}
	if err := lw.Start(context.Background()); err != nil {
		h.T.Fatal(err)
	}
	h.T.Cleanup(lw.Stop)
}

func (h *Harness) startWorker(profiles string) {
	nc := natstest.Connect(h.T, h.Wire.URL())
	w, err := osworker.New(nc, osworker.Config{Subjects: Subjects, Signer: h.Client, DialTimeout: time.Second, Profiles: []byte(profiles), PowerTimeout: 10 * time.Second, Dialers: h.dialers(), Logger: quiet, Settings: pool.Config{WorkerID: "modtest/1", Concurrency: 8, Grace: time.Second}}, h.F.Module, nil)
	if err != nil {
		h.T.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		h.T.Fatal(err)
	}
	h.worker = w
	h.T.Cleanup(w.Stop)
}

// Computer makes a powered-off computer with the fixture's personality,
// known to the simulated provisioner.
func (h *Harness) Computer(name string, cfg devlab.Config) *devlab.Computer {
	h.T.Helper()
	cfg.Name, cfg.Authorized = name, h.Client.PublicKey()
	if cfg.Shell == nil {
		cfg.Shell = h.F.NewShell()
	}
	c, err := devlab.NewComputer(cfg)
	if err != nil {
		h.T.Fatal(err)
	}
	h.T.Cleanup(c.Close)
	h.Sim.Add(c)
	if h.method == MethodQGA {
		h.serveAgent(c)
	}
	return c
}

// Request is a post-load request for c as if attempt's load reimaged it;
// its computer is c's enrolment, with the host key learned so far.
func (h *Harness) Request(c *devlab.Computer, job string, attempt int) messages.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return messages.Request{JobID: job, Attempt: attempt, Step: messages.StepPostload,
		Computer: h.computer(c), Image: h.F.Image, Reload: messages.ReloadIfNeeded, Reloaded: true}
}

// computer is c as enrolled (h.mu held): reached over SSH at its address
// with the host key learned so far, or over its agent socket.
func (h *Harness) computer(c *devlab.Computer) messages.Computer {
	mc := messages.Computer{Name: c.Name(), Provisioner: devlab.SimName, Type: h.F.ComputerType, Address: c.Addr(),
		LearnedHostKey: h.learned[c.Name()]}
	if h.method == MethodQGA {
		mc.Control = messages.ControlQGA
		mc.Attributes = map[string]string{qga.AttrSocket: h.agents[c.Name()]}
	}
	return mc
}

func (h *Harness) dialers() map[string]control.Dialer {
	d, err := qga.New(qga.Config{Timeout: time.Second, Poll: 5 * time.Millisecond})
	if err != nil {
		h.T.Fatal(err)
	}
	return map[string]control.Dialer{MethodQGA: d}
}

// serveAgent puts a guest agent socket in front of c (a short path: unix
// socket paths are limited to 108 bytes).
func (h *Harness) serveAgent(c *devlab.Computer) {
	dir, err := os.MkdirTemp("", "qga")
	if err != nil {
		h.T.Fatal(err)
	}
	path := filepath.Join(dir, "agent.sock")
	a, err := c.ServeAgent(path, h.Client)
	if err != nil {
		h.T.Fatal(err)
	}
	h.mu.Lock()
	h.agents[c.Name()] = path
	h.mu.Unlock()
	h.T.Cleanup(func() { a.Close(); _ = os.RemoveAll(dir) })
}

// PostLoad writes req's job record (post-load at req's attempt: what the
// loader's power endpoint checks), publishes req and returns its result.
// A host key the result reports learned goes into the computer's
// enrolment for the next Request.
func (h *Harness) PostLoad(req messages.Request) messages.Result {
	h.T.Helper()
	h.Wire.Postloading(req)
	h.Wire.PublishRaw(Subjects.PostloadRequest(h.F.Module.Family()), messages.Encode(req))
	res := h.Wire.Result(time.Minute)
	if res.JobID != req.JobID || res.Attempt != req.Attempt || res.Step != messages.StepPostload {
		h.T.Fatalf("result for %s/%d/%s, want %s/%d/postload", res.JobID, res.Attempt, res.Step, req.JobID, req.Attempt)
	}
	if res.LearnedHostKey != nil {
		h.mu.Lock()
		h.learned[req.Computer.Name] = res.LearnedHostKey
		h.mu.Unlock()
	}
	return res
}

// Events returns the messages of job's events so far.
func (h *Harness) Events(job string) []messages.Event { return h.events.of(job) }

// EventText is the events of job, one per line.
func (h *Harness) EventText(job string) string {
	var b strings.Builder
	for _, e := range h.events.of(job) {
		fmt.Fprintf(&b, "[attempt %d] %s\n", e.Attempt, e.Message)
	}
	return b.String()
}

// Want fails the test unless res has outcome o.
func (h *Harness) Want(res messages.Result, o messages.Outcome) {
	h.T.Helper()
	if res.Outcome != o {
		h.T.Fatalf("outcome %s (%s; reason %q), want %s; events:\n%s", res.Outcome, res.Detail, res.Reason, o, h.EventText(res.JobID))
	}
	if res.Detail == "" {
		h.T.Fatal("a result must say what happened in its detail")
	}
	if res.Profile == nil || res.Profile.Name == "" {
		h.T.Fatalf("the result carries no effective wait profile: %+v", res.Profile)
	}
}

type eventLog struct {
	mu  sync.Mutex
	sub *nats.Subscription
	all []messages.Event
}

// drainLocked moves what the subscription holds into the log.
func (l *eventLog) drainLocked() {
	n, _, _ := l.sub.Pending()
	for range n {
		m, err := l.sub.NextMsg(time.Second)
		if err != nil {
			return
		}
		var e messages.Event
		if json.Unmarshal(m.Data, &e) == nil {
			l.all = append(l.all, e)
		}
	}
}

func (l *eventLog) of(job string) []messages.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drainLocked()
	var out []messages.Event
	for _, e := range l.all {
		if e.JobID == job {
			out = append(out, e)
		}
	}
	return out
}
