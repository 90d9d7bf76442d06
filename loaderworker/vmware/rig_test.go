package vmware_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/devlab/vcsim/vcsimtest"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/messages"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // the simulator logs through the std logger
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

// quiet is a logger for tests.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is a simulator with a provisioner logged in to it.
type rig struct {
	sim *vcsim.Sim
	p   *vmware.Provisioner
}

func newRig(t testing.TB, opts vcsim.Options, tweak ...func(*vmware.Config)) *rig {
	t.Helper()
	sim := vcsimtest.Start(t, opts)
	cfg := sim.VMwareConfig()
	cfg.Logger = quiet
	for _, f := range tweak {
		f(&cfg)
	}
	p, err := vmware.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return &rig{sim: sim, p: p}
}

func request(computer, image, strategy, reload string) messages.Request {
	return messages.Request{JobID: "job-" + computer, Attempt: 1, Step: messages.StepLoad,
		Computer: messages.Computer{Name: computer, Provisioner: "vmware", Type: messages.TypeVirtualMachine},
		Image:    messages.Image{Name: image, OSFamily: "linux", Strategy: strategy}, Reload: reload}
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

func (e *events) has(t testing.TB, words ...string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	all := strings.Join(e.msgs, "\n")
	for _, w := range words {
		if !strings.Contains(all, w) {
			t.Fatalf("no progress event mentions %q; events:\n%s", w, all)
		}
	}
}

func (r *rig) power(t testing.TB, vm string) string {
	t.Helper()
	st, err := r.sim.PowerState(context.Background(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (r *rig) tags(t testing.TB, vm string) map[string]string {
	t.Helper()
	ec, err := r.sim.ExtraConfig(context.Background(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return ec
}
