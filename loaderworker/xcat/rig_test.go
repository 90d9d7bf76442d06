package xcat

import (
	"context"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab/xcatemu"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

const (
	testUser  = "wsuser"
	testPass  = "s3cret-pw"
	testImage = "rocky9.4-x86_64-install-compute"
	testNode  = "cn01"
)

// phases is an install of about 200ms in the emulator.
var phases = xcatemu.Timing{PoweringOn: 50 * time.Millisecond, Installing: 50 * time.Millisecond,
	Booting: 50 * time.Millisecond, Postbooting: 50 * time.Millisecond}

// rig is an emulator with one image and nodes cn01..cnNN, and a
// provisioner whose timeouts are short enough for tests.
type rig struct {
	t    *testing.T
	emu  *xcatemu.Server
	prov *Provisioner
	logs *steptest.Buffer
}

type rigOpt struct {
	emu   xcatemu.Config
	cfg   func(*Config)
	nodes int
}

func newRig(t *testing.T, o rigOpt) *rig {
	t.Helper()
	o.emu.User, o.emu.Password = testUser, testPass
	if o.emu.Timing == (xcatemu.Timing{}) {
		o.emu.Timing = phases
	}
	emu, err := xcatemu.Start(o.emu)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.AddOSImage(testImage, map[string]string{"provmethod": "install", "profile": "compute", "osvers": "rocky9.4", "osarch": "x86_64"})
	for i := 1; i <= max(o.nodes, 1); i++ {
		emu.AddNode(nodeName(i), map[string]string{"mac": "52:54:00:aa:bb:01", "groups": "compute", "mgt": "ipmi"})
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, emu.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &steptest.Buffer{}
	cfg := Config{URL: emu.URL(), User: testUser, Password: testPass, CAFile: ca,
		Poll: 20 * time.Millisecond, MinStall: time.Second, MinOverall: 4 * time.Second,
		CallTimeout: 5 * time.Second, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Tries: 3,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	prov, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, emu: emu, prov: prov, logs: logs}
}

func nodeName(i int) string { return "cn" + string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func request(node, img, reload string) messages.Request {
	return messages.Request{JobID: "job-1", Attempt: 1, Step: messages.StepLoad, Reload: reload,
		Computer: messages.Computer{Name: node, Provisioner: Name, Type: messages.TypeBlade},
		Image:    messages.Image{Name: img, OSFamily: "linux"}}
}

// load runs one Load with a deadline and records its events.
func (r *rig) load(req messages.Request) (loaderworker.LoadReport, []string, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := &events{}
	rep, err := r.prov.Load(ctx, req, ev)
	return rep, ev.all(), err
}

// events records progress events.
type events struct {
	mu   sync.Mutex
	msgs []string
}

func (e *events) Event(m string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.msgs = append(e.msgs, m)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.msgs...)
}
