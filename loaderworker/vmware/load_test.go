package vmware_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/devlab/vcsim/vcsimtest"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func TestLoadStrategies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, strategy, deflt string
		detail, event         string
	}{
		{"clone by default", "", "", "cloned ubuntu-22.04 to vm-1 (linked clone)", "cloning ubuntu-22.04 to vm-1"},
		{"clone named by the job", vmware.StrategyClone, vmware.StrategySnapshot, "cloned ubuntu-22.04 to vm-1", "cloning"},
		{"snapshot named by the job", vmware.StrategySnapshot, "", "reverted vm-1 to snapshot ubuntu-22.04", "reverting vm-1"},
		{"snapshot by deployment", "", vmware.StrategySnapshot, "reverted vm-1 to snapshot ubuntu-22.04", "reverting vm-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			booted := make(chan string, 8)
			r := newRig(t, vcsim.Options{PersistentVMs: []string{"vm-1"}, OnPowerOn: func(vm string) { booted <- vm }},
				func(c *vmware.Config) { c.Strategy = tc.deflt })
			var ev events
			rep, err := r.p.Load(t.Context(), request("vm-1", "ubuntu-22.04", tc.strategy, messages.ReloadIfNeeded), &ev)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Reloaded || !strings.Contains(rep.Detail, tc.detail) {
				t.Fatalf("report %+v, want reloaded and detail with %q", rep, tc.detail)
			}
			ev.has(t, tc.event, "powering on vm-1")
			if st := r.power(t, "vm-1"); st != "on" {
				t.Fatalf("vm-1 is %s after the load, want on", st)
			}
			tags := r.tags(t, "vm-1")
			if tags[vmware.TagImage] != "ubuntu-22.04" || tags[vmware.TagJob] != "job-vm-1" {
				t.Fatalf("tags %v, want image and job", tags)
			}
			if got := <-booted; got != "vm-1" {
				t.Fatalf("the simulator booted %q, want vm-1", got)
			}
		})
	}
}

func TestReloadIfNeeded(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{vmware.StrategyClone, vmware.StrategySnapshot} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, vcsim.Options{PersistentVMs: []string{"vm-1"}})
			load := func(image, reload string) bool {
				t.Helper()
				rep, err := r.p.Load(t.Context(), request("vm-1", image, strategy, reload), &events{})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.Reloaded && !strings.Contains(rep.Detail, "skipped") {
					t.Fatalf("a skipped load must say so: %q", rep.Detail)
				}
				return rep.Reloaded
			}
			steps := []struct {
				image, reload string
				reloaded      bool
			}{
				{"ubuntu-22.04", messages.ReloadIfNeeded, true},
				{"ubuntu-22.04", messages.ReloadIfNeeded, false},
				{"ubuntu-22.04", messages.ReloadAlways, true},
				{"win10-22h2", messages.ReloadIfNeeded, true},
				{"win10-22h2", messages.ReloadIfNeeded, false},
			}
			for i, s := range steps {
				if got := load(s.image, s.reload); got != s.reloaded {
					t.Fatalf("step %d (%s, %s): reloaded %v, want %v", i, s.image, s.reload, got, s.reloaded)
				}
			}
			// A VM that is off is loaded again even with the right tag.
			if _, err := r.p.Power(t.Context(), messages.PowerRequest{Computer: request("vm-1", "", "", "").Computer, Action: messages.PowerOff}); err != nil {
				t.Fatal(err)
			}
			if !load("win10-22h2", messages.ReloadIfNeeded) {
				t.Fatal("a powered-off VM was skipped")
			}
		})
	}
}

// TestOutcomes: which faults answer fail (Permanent, with a sentence that
// says what to fix) and which answer retry.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		image, strategy string
		inject          func(*vcsim.Sim)
		permanent       bool
		says            string
	}{
		{name: "failing clone task", image: "ubuntu-22.04",
			inject: func(s *vcsim.Sim) {
				s.FailTask("CloneVM_Task", "ubuntu-22.04", &types.GenericVmConfigFault{Reason: "disk locked"}, 1)
			}},
		{name: "failing power-on task", image: "ubuntu-22.04",
			inject: func(s *vcsim.Sim) {
				s.FailTask("PowerOnVM_Task", "*", &types.GenericVmConfigFault{Reason: "disk locked"}, 1)
			}},
		{name: "InvalidState race on power on", image: "ubuntu-22.04",
			inject: func(s *vcsim.Sim) { s.FailCall("PowerOnVM_Task", "*", simulator.FaultTypeInvalidState, 1) }},
		{name: "network failure", image: "ubuntu-22.04",
			inject: func(s *vcsim.Sim) { s.FailCall("CloneVM_Task", "*", simulator.FaultTypeNetworkFailure, 1) }},
		{name: "busy host", image: "ubuntu-22.04",
			inject: func(s *vcsim.Sim) { s.FailTask("CloneVM_Task", "*", &types.HostCommunication{}, 1) }},
		{name: "missing template", image: "no-such-image", permanent: true,
			says: `vCenter has no template named "no-such-image": create a template`},
		{name: "missing snapshot", image: "no-such-image", strategy: vmware.StrategySnapshot, permanent: true,
			says: `vCenter has no snapshot named "no-such-image": take a snapshot of that name of the VM vm-1`},
		{name: "no permission", image: "ubuntu-22.04", permanent: true, says: "lacks the privilege",
			inject: func(s *vcsim.Sim) { s.FailCall("CloneVM_Task", "*", simulator.FaultTypeNoPermission, 1) }},
		{name: "unknown strategy", image: "ubuntu-22.04", strategy: "teleport", permanent: true,
			says: `image.strategy must be "clone" or "snapshot", not "teleport"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, vcsim.Options{PersistentVMs: []string{"vm-1"}})
			if tc.inject != nil {
				tc.inject(r.sim)
			}
			_, err := r.p.Load(t.Context(), request("vm-1", tc.image, tc.strategy, messages.ReloadAlways), &events{})
			if err == nil {
				t.Fatal("the load succeeded")
			}
			if got := outcome.IsPermanent(err); got != tc.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", got, tc.permanent, err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q should say %q", err, tc.says)
			}
			if tc.permanent {
				return
			}
			if _, err := r.p.Load(t.Context(), request("vm-1", tc.image, tc.strategy, messages.ReloadAlways), &events{}); err != nil {
				t.Fatalf("the retry failed: %v", err)
			}
		})
	}
}

func TestSnapshotStrategyNeedsTheVM(t *testing.T) {
	t.Parallel()
	r := newRig(t, vcsim.Options{})
	_, err := r.p.Load(t.Context(), request("vm-9", "ubuntu-22.04", vmware.StrategySnapshot, messages.ReloadAlways), &events{})
	if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), `no virtual machine named "/DC0/vm/vm-9"`) || !strings.Contains(err.Error(), "attribute vm_path") {
		t.Fatalf("err = %v, want a permanent error naming vm-9's place and how to enrol it", err)
	}
}

func TestReloginAfterDroppedSession(t *testing.T) {
	t.Parallel()
	// Snapshot loads of VMs that exist: govmomi v0.56.0's simulator races
	// with itself when one VM is destroyed while another is cloned onto
	// the same datastore (Datastore.resolve copies the datastore's VM list
	// while RemoveReference rewrites it), which the race detector caught
	// once here. The session handling under test is the same for both
	// strategies.
	r := newRig(t, vcsim.Options{PersistentVMs: []string{"vm-1", "vm-2", "vm-3", "vm-4"}})
	if _, err := r.p.Load(t.Context(), request("vm-1", "ubuntu-22.04", vmware.StrategySnapshot, messages.ReloadAlways), &events{}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.sim.DropSessions(t.Context()); err != nil || n != 1 {
		t.Fatalf("DropSessions = %d, %v; want the provisioner's one session", n, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			name := []string{"vm-1", "vm-2", "vm-3", "vm-4"}[i]
			_, errs[i] = r.p.Load(t.Context(), request(name, "ubuntu-22.04", vmware.StrategySnapshot, messages.ReloadAlways), &events{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("load %d after the session was dropped: %v", i, err)
		}
	}
	if n := r.p.Relogins(); n != 1 {
		t.Fatalf("re-logins = %d, want exactly 1 for 4 loads", n)
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	sim := vcsimtest.Start(t, vcsim.Options{Images: []string{}})
	cfg := sim.VMwareConfig()
	cfg.Logger = quiet
	cfg.Password = "wrong"
	_, err := vmware.New(context.Background(), cfg)
	if !outcome.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	const want = "vCenter refused the login for user loadpool: check LOADPOOL_VSPHERE_USER"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q, want it to say %q", err, want)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the error shows the password: %q", err)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	t.Parallel()
	sim := vcsimtest.Start(t, vcsim.Options{Images: []string{}})
	cfg := sim.VMwareConfig()
	cfg.Logger = quiet
	cfg.Insecure = false
	_, err := vmware.New(context.Background(), cfg)
	if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), "LOADPOOL_VSPHERE_INSECURE") {
		t.Fatalf("err = %v, want permanent naming LOADPOOL_VSPHERE_INSECURE", err)
	}
}

func TestBadInventoryConfig(t *testing.T) {
	t.Parallel()
	sim := vcsimtest.Start(t, vcsim.Options{Images: []string{}})
	for _, tc := range []struct {
		setting string
		set     func(*vmware.Config)
	}{
		{"LOADPOOL_VSPHERE_DATACENTER", func(c *vmware.Config) { c.Datacenter = "DC9" }},
		{"LOADPOOL_VSPHERE_FOLDER", func(c *vmware.Config) { c.Folder = "/DC0/vm/nope" }},
		{"LOADPOOL_VSPHERE_RESOURCE_POOL", func(c *vmware.Config) { c.ResourcePool = "/DC0/host/nope/Resources" }},
		{"LOADPOOL_VSPHERE_DATASTORE", func(c *vmware.Config) { c.Datastore = "nope" }},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			cfg := sim.VMwareConfig()
			cfg.Logger = quiet
			tc.set(&cfg)
			_, err := vmware.New(context.Background(), cfg)
			if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), "fix "+tc.setting) {
				t.Fatalf("err = %v, want permanent saying fix %s", err, tc.setting)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	ok := vmware.Config{URL: "https://vc/sdk", User: "u", Password: "p"}
	for _, tc := range []struct {
		set  func(*vmware.Config)
		says string
	}{
		{func(c *vmware.Config) { c.URL = "" }, "LOADPOOL_VSPHERE_URL"},
		{func(c *vmware.Config) { c.User = "" }, "LOADPOOL_VSPHERE_USER"},
		{func(c *vmware.Config) { c.Password = "" }, "LOADPOOL_VSPHERE_PASSWORD"},
		{func(c *vmware.Config) { c.Strategy = "x" }, "LOADPOOL_VSPHERE_STRATEGY"},
		{func(c *vmware.Config) { c.URL = "ftp://u:secret@vc/" }, "LOADPOOL_VSPHERE_URL"},
	} {
		c := ok
		tc.set(&c)
		_, err := vmware.New(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), tc.says) || strings.Contains(err.Error(), "secret") {
			t.Errorf("config %+v: err = %v, want it to name %s without secrets", c, err, tc.says)
		}
	}
}

// TestComputerNamedLikeAnObjectID: VM ids in vCenter look like "vm-22";
// a computer of that name must be the VM of that name, never the object
// with that id (here the template).
func TestComputerNamedLikeAnObjectID(t *testing.T) {
	t.Parallel()
	r := newRig(t, vcsim.Options{})
	tpl, err := r.sim.VM(t.Context(), "ubuntu-22.04")
	if err != nil {
		t.Fatal(err)
	}
	name := tpl.Reference().Value
	for range 2 { // the second load destroys the first clone, not the template
		if _, err := r.p.Load(t.Context(), request(name, "ubuntu-22.04", "", messages.ReloadAlways), &events{}); err != nil {
			t.Fatalf("load onto %s: %v", name, err)
		}
	}
	if got, err := r.sim.VM(t.Context(), "ubuntu-22.04"); err != nil || got.Reference() != tpl.Reference() {
		t.Fatalf("the template is gone or changed: %v, %v", got, err)
	}
}

// TestComputerNamedLikeATemplate: a load must never destroy or change a
// template, whatever the computer is called.
func TestComputerNamedLikeATemplate(t *testing.T) {
	t.Parallel()
	r := newRig(t, vcsim.Options{})
	for _, strategy := range []string{vmware.StrategyClone, vmware.StrategySnapshot} {
		_, err := r.p.Load(t.Context(), request("win10-22h2", "ubuntu-22.04", strategy, messages.ReloadAlways), &events{})
		if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), "the place of computer win10-22h2, /DC0/vm/win10-22h2, holds a template") {
			t.Fatalf("%s: err = %v, want a permanent refusal", strategy, err)
		}
	}
	if _, err := r.sim.VM(t.Context(), "win10-22h2"); err != nil {
		t.Fatalf("the template is gone: %v", err)
	}
}

// TestCallDeadline: a vSphere call that hangs is cut by CallTimeout, and
// the step answers retry.
func TestCallDeadline(t *testing.T) {
	t.Parallel()
	// The deadline is well above what the rig's own calls take on a loaded
	// machine under -race (1s was not), the delay far above the deadline.
	r := newRig(t, vcsim.Options{CallDelay: map[string]time.Duration{"CloneVM_Task": 10 * time.Second}},
		func(c *vmware.Config) { c.CallTimeout = 4 * time.Second })
	_, err := r.p.Load(t.Context(), request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways), &events{})
	if !errors.Is(err, context.DeadlineExceeded) || outcome.IsPermanent(err) {
		t.Fatalf("err = %v, want a deadline (retry)", err)
	}
}

// TestNoSecretsInLogs: connecting, renewing the session and failing to
// log in never write the password.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	var logs steptest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := newRig(t, vcsim.Options{}, func(c *vmware.Config) { c.Logger = log })
	if _, err := r.sim.DropSessions(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.p.Load(t.Context(), request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways), &events{}); err != nil {
		t.Fatal(err)
	}
	cfg := r.sim.VMwareConfig()
	cfg.Logger, cfg.Password = log, "not-"+cfg.Password
	if _, err := vmware.New(t.Context(), cfg); err == nil || strings.Contains(err.Error(), cfg.Password) {
		t.Fatalf("New with a wrong password: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "logged in again") {
		t.Fatalf("the re-login was not logged:\n%s", out)
	}
	if strings.Contains(out, r.sim.Password) {
		t.Fatalf("a log line holds the password:\n%s", out)
	}
}

// TestFailedRevertLeavesNoStaleTag: once the snapshot strategy has begun
// to change a VM, its tag no longer claims the old image.
func TestFailedRevertLeavesNoStaleTag(t *testing.T) {
	t.Parallel()
	r := newRig(t, vcsim.Options{PersistentVMs: []string{"vm-1"}})
	if _, err := r.p.Load(t.Context(), request("vm-1", "ubuntu-22.04", vmware.StrategySnapshot, messages.ReloadAlways), &events{}); err != nil {
		t.Fatal(err)
	}
	r.sim.FailCall("RevertToSnapshot_Task", "*", simulator.FaultTypeInvalidState, 1)
	_, err := r.p.Load(t.Context(), request("vm-1", "win10-22h2", vmware.StrategySnapshot, messages.ReloadAlways), &events{})
	if err == nil || outcome.IsPermanent(err) {
		t.Fatalf("err = %v, want retry", err)
	}
	if tags := r.tags(t, "vm-1"); tags[vmware.TagImage] != "" {
		t.Fatalf("after a failed revert the VM still claims %q", tags[vmware.TagImage])
	}
}
