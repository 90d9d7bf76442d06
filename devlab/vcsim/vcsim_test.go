package vcsim

import (
	"context"
	"io"
	"log"
	"net/url"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // the simulator logs through the std logger
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"))
}

func login(t *testing.T, s *Sim, user, pass string) (*govmomi.Client, error) {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pass)
	c, err := govmomi.NewClient(t.Context(), u, true)
	if err == nil {
		t.Cleanup(func() { _ = c.Logout(context.Background()) })
	}
	return c, err
}

func TestCredentialsAreEnforced(t *testing.T) {
	t.Parallel()
	s := startSim(t, Options{})
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
	}{
		{"right", s.User, s.Password, true},
		{"wrong password", s.User, "nope", false},
		{"wrong user", "admin", s.Password, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := login(t, s, tc.user, tc.pass)
			if tc.ok != (err == nil) {
				t.Fatalf("login err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !fault.Is(err, &types.InvalidLogin{}) {
				t.Fatalf("err = %v, want InvalidLogin", err)
			}
		})
	}
}

func TestInventory(t *testing.T) {
	t.Parallel()
	s := startSim(t, Options{PersistentVMs: []string{"vm-1"}})
	c, err := login(t, s, s.User, s.Password)
	if err != nil {
		t.Fatal(err)
	}
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(t.Context(), Datacenter)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	for _, img := range SampleImages {
		vm, err := f.VirtualMachine(t.Context(), img)
		if err != nil {
			t.Fatalf("template %s: %v", img, err)
		}
		if tpl, err := vm.IsTemplate(t.Context()); err != nil || !tpl {
			t.Fatalf("%s is template = %v, %v", img, tpl, err)
		}
		if _, err := vm.FindSnapshot(t.Context(), "base"); err != nil {
			t.Fatalf("template %s has no snapshot base: %v", img, err)
		}
	}
	vm, err := s.VM(t.Context(), "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range SampleImages {
		if _, err := vm.FindSnapshot(t.Context(), img); err != nil {
			t.Fatalf("vm-1 has no snapshot %s: %v", img, err)
		}
	}
	if st, err := s.PowerState(t.Context(), "vm-1"); err != nil || st != "off" {
		t.Fatalf("vm-1 power = %q, %v; want off", st, err)
	}
}

func TestPowerOnHook(t *testing.T) {
	t.Parallel()
	booted := make(chan string, 4)
	s := startSim(t, Options{Images: []string{}, PersistentVMs: []string{"vm-2"}, OnPowerOn: func(vm string) { booted <- vm }})
	vm, err := s.VM(t.Context(), "vm-2")
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []string{"on", "reset"} {
		task, err := vm.PowerOn(t.Context())
		if act == "reset" {
			task, err = vm.Reset(t.Context())
		}
		if err == nil {
			err = task.Wait(t.Context())
		}
		if err != nil {
			t.Fatalf("%s: %v", act, err)
		}
		select {
		case got := <-booted:
			if got != "vm-2" {
				t.Fatalf("%s: hook got %q, want vm-2", act, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the power-on hook was not called", act)
		}
	}
}

func TestFailTask(t *testing.T) {
	t.Parallel()
	s := startSim(t, Options{Images: []string{}, PersistentVMs: []string{"vm-3"}})
	s.FailTask("PowerOnVM_Task", "vm-3", &types.GenericVmConfigFault{Reason: "disk locked"}, 1)
	vm, err := s.VM(t.Context(), "vm-3")
	if err != nil {
		t.Fatal(err)
	}
	task, err := vm.PowerOn(t.Context())
	if err != nil {
		t.Fatalf("the call itself failed (%v): the fault belongs on the task", err)
	}
	if err := task.Wait(t.Context()); !fault.Is(err, &types.GenericVmConfigFault{}) {
		t.Fatalf("task err = %v, want GenericVmConfigFault", err)
	}
	task, err = vm.PowerOn(t.Context())
	if err == nil {
		err = task.Wait(t.Context())
	}
	if err != nil {
		t.Fatalf("second power on (fault used up): %v", err)
	}
}

func TestDropSessions(t *testing.T) {
	t.Parallel()
	s := startSim(t, Options{Images: []string{}})
	c, err := login(t, s, s.User, s.Password)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.DropSessions(t.Context())
	if err != nil || n < 1 {
		t.Fatalf("DropSessions = %d, %v", n, err)
	}
	_, err = c.SessionManager.UserSession(t.Context())
	active, aerr := c.SessionManager.SessionIsActive(t.Context())
	if err == nil && aerr == nil && active {
		t.Fatal("the client's session is still active")
	}
}

// TestBeforeCall: the hook runs once, before the call is served; the call
// it held is served with the session it arrived with even though the hook
// ended that session, and the client's next call is refused.
func TestBeforeCall(t *testing.T) {
	t.Parallel()
	s := startSim(t, Options{Images: []string{}, PersistentVMs: []string{"vm-1"}})
	c, err := login(t, s, s.User, s.Password)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := s.VM(t.Context(), "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	mine := object.NewVirtualMachine(c.Client, admin.Reference())
	type drop struct {
		n   int
		err error
	}
	ran := make(chan drop, 2)
	s.BeforeCall("PowerOnVM_Task", func() {
		n, err := s.DropSessions(context.Background())
		ran <- drop{n, err}
	})
	if _, err := mine.PowerOn(t.Context()); err != nil {
		t.Fatalf("the held call was not served: %v", err)
	}
	if _, err := mine.PowerOff(t.Context()); !fault.Is(err, &types.NotAuthenticated{}) {
		t.Fatalf("the next call after the hook dropped the session: %v, want NotAuthenticated", err)
	}
	if _, err := admin.PowerOn(t.Context()); err != nil { // no hook any more
		t.Fatal(err)
	}
	if len(ran) != 1 {
		t.Fatalf("the hook ran %d times, want once", len(ran))
	}
	if d := <-ran; d.err != nil || d.n != 1 {
		t.Fatalf("DropSessions in the hook = %d, %v; want the client's one session", d.n, d.err)
	}
}

// startSim is vcsimtest.Start for this package's own tests (which cannot
// import vcsimtest: it imports vcsim).
func startSim(tb testing.TB, opts Options) *Sim {
	tb.Helper()
	s, err := Start(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}
