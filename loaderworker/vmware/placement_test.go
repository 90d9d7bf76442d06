package vmware_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/devlab/vcsim/vcsimtest"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/outcome"
)

// placed is a simulator with an admin session, to build and inspect
// folders by inventory path.
type placed struct {
	sim   *vcsim.Sim
	p     *vmware.Provisioner
	admin *govmomi.Client
	// folders are those newPlaced made, by name.
	folders map[string]*object.Folder
}

// newPlaced starts a simulator, creates the VM folders /DC0/vm/<name>,
// then the provisioner (with tweak: it resolves its folder at start).
func newPlaced(t *testing.T, folders []string, tweak func(*vmware.Config)) *placed {
	t.Helper()
	sim := vcsimtest.Start(t, vcsim.Options{})
	p := &placed{sim: sim, admin: adminClient(t, sim), folders: map[string]*object.Folder{}}
	for _, f := range folders {
		p.folders[f] = p.folder(t, f)
	}
	cfg := sim.VMwareConfig()
	cfg.Logger = quiet
	if tweak != nil {
		tweak(&cfg)
	}
	prov, err := vmware.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Close(context.Background()) })
	p.p = prov
	return p
}

// folder creates the VM folder /DC0/vm/<name>.
func (p *placed) folder(t *testing.T, name string) *object.Folder {
	t.Helper()
	root, err := find.NewFinder(p.admin.Client).Folder(t.Context(), vcsim.Folder)
	if err != nil {
		t.Fatal(err)
	}
	f, err := root.CreateFolder(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// decoy creates a powered-on VM called name (with a snapshot per image)
// inside folder, tagged as loaded by "decoy-job".
func (p *placed) decoy(t *testing.T, folder *object.Folder, name string) *object.VirtualMachine {
	t.Helper()
	vm, err := p.sim.CreatePersistentVM(t.Context(), name, "ubuntu-22.04")
	if err != nil {
		t.Fatal(err)
	}
	vm = object.NewVirtualMachine(p.admin.Client, vm.Reference())
	if folder != nil {
		if err := wait(folder.MoveInto(t.Context(), []types.ManagedObjectReference{vm.Reference()})); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait(vm.PowerOn(t.Context())); err != nil {
		t.Fatal(err)
	}
	if err := wait(vm.Reconfigure(t.Context(), types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
		&types.OptionValue{Key: vmware.TagJob, Value: "decoy-job"}}})); err != nil {
		t.Fatal(err)
	}
	return vm
}

// untouched checks that vm still exists, is powered on and still carries
// the decoy's tag.
func (p *placed) untouched(t *testing.T, vm *object.VirtualMachine, what string) {
	t.Helper()
	var m mo.VirtualMachine
	if err := p.admin.RetrieveOne(t.Context(), vm.Reference(), []string{"runtime.powerState", "config.extraConfig"}, &m); err != nil {
		t.Fatalf("%s: the VM outside the computer's place is gone: %v", what, err)
	}
	if m.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Fatalf("%s: the VM outside the computer's place was powered %s", what, m.Runtime.PowerState)
	}
	for _, o := range m.Config.ExtraConfig {
		if v := o.GetOptionValue(); v.Key == vmware.TagJob && v.Value != "decoy-job" {
			t.Fatalf("%s: the VM outside the computer's place was loaded by %v", what, v.Value)
		}
	}
}

// at is the VM at inventory path, nil when there is none.
func (p *placed) at(t *testing.T, path string) *object.VirtualMachine {
	t.Helper()
	ref, err := object.NewSearchIndex(p.admin.Client).FindByInventoryPath(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	vm, _ := ref.(*object.VirtualMachine)
	return vm
}

func (p *placed) powerAt(t *testing.T, path string) types.VirtualMachinePowerState {
	t.Helper()
	vm := p.at(t, path)
	if vm == nil {
		t.Fatalf("no VM at %s", path)
	}
	var m mo.VirtualMachine
	if err := p.admin.RetrieveOne(t.Context(), vm.Reference(), []string{"runtime.powerState"}, &m); err != nil {
		t.Fatal(err)
	}
	return m.Runtime.PowerState
}

func powerReq(c messages.Computer, action string) messages.PowerRequest {
	return messages.PowerRequest{Computer: c, Action: action}
}

// TestVMOutsideTheFolderNeverTouched: without vm_path, the computer's VM
// is its name in LOADPOOL_VSPHERE_FOLDER only. A VM of that name
// elsewhere in the datacenter is neither powered nor destroyed nor
// loaded; power answers fail saying how to enrol the path.
func TestVMOutsideTheFolderNeverTouched(t *testing.T) {
	t.Parallel()
	p := newPlaced(t, []string{"lab", "staff"}, func(c *vmware.Config) { c.Folder = vcsim.Folder + "/lab" })
	decoy := p.decoy(t, p.folders["staff"], "vm-017")
	c := messages.Computer{Name: "vm-017", Provisioner: "vmware", Type: messages.TypeVirtualMachine}

	_, err := p.p.Power(t.Context(), powerReq(c, messages.PowerOff))
	if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), `no virtual machine named "/DC0/vm/lab/vm-017"`) ||
		!strings.Contains(err.Error(), "attribute vm_path") {
		t.Fatalf("power of a computer with no VM in the folder: %v, want fail saying how to enrol the path", err)
	}
	p.untouched(t, decoy, "power off")
	req := request("vm-017", "ubuntu-22.04", vmware.StrategySnapshot, messages.ReloadAlways)
	if _, err := p.p.Load(t.Context(), req, &events{}); !outcome.IsPermanent(err) || !strings.Contains(err.Error(), "vm_path") {
		t.Fatalf("snapshot load with no VM in the folder: %v, want fail saying how to enrol the path", err)
	}
	p.untouched(t, decoy, "snapshot load")

	req.Image.Strategy = vmware.StrategyClone
	if _, err := p.p.Load(t.Context(), req, &events{}); err != nil {
		t.Fatalf("clone into the folder: %v", err)
	}
	p.untouched(t, decoy, "clone")
	if s := p.powerAt(t, "/DC0/vm/lab/vm-017"); s != types.VirtualMachinePowerStatePoweredOn {
		t.Fatalf("the clone in the folder is %s, want on", s)
	}
	if _, err := p.p.Power(t.Context(), powerReq(c, messages.PowerOff)); err != nil {
		t.Fatal(err)
	}
	if s := p.powerAt(t, "/DC0/vm/lab/vm-017"); s != types.VirtualMachinePowerStatePoweredOff {
		t.Fatalf("power off acted elsewhere: the clone in the folder is %s", s)
	}
	p.untouched(t, decoy, "power off of the clone")
}

// TestEnrolledVMPath: with vm_path, the VM at that path is the computer's,
// whatever it and the computer are called; VMs called like the computer
// (in the configured folder) or like the path's VM (elsewhere) are
// untouched.
func TestEnrolledVMPath(t *testing.T) {
	t.Parallel()
	p := newPlaced(t, []string{"pool-a", "pool-b"}, nil)
	byComputer := p.decoy(t, nil, "lab-17") // the computer's name in the configured folder /DC0/vm
	byName := p.decoy(t, p.folders["pool-b"], "vm-017")
	persistent := p.decoy(t, p.folders["pool-a"], "vm-017")
	c := messages.Computer{Name: "lab-17", Provisioner: "vmware", Type: messages.TypeVirtualMachine,
		Attributes: map[string]string{vmware.AttrVMPath: "/DC0/vm/pool-a/vm-017"}}
	check := func(what string) {
		t.Helper()
		p.untouched(t, byComputer, what)
		p.untouched(t, byName, what)
	}

	rep, err := p.p.Power(t.Context(), powerReq(c, messages.PowerOff))
	if err != nil || rep.State != "off" || p.powerAt(t, "/DC0/vm/pool-a/vm-017") != types.VirtualMachinePowerStatePoweredOff {
		t.Fatalf("power off at the enrolled path: %+v, %v", rep, err)
	}
	check("power off")
	req := request("lab-17", "ubuntu-22.04", vmware.StrategySnapshot, messages.ReloadAlways)
	req.Computer = c
	if rep, err := p.p.Load(t.Context(), req, &events{}); err != nil || !strings.Contains(rep.Detail, "reverted lab-17") {
		t.Fatalf("snapshot load at the enrolled path: %+v, %v", rep, err)
	}
	if got := p.at(t, "/DC0/vm/pool-a/vm-017"); got == nil || got.Reference() != persistent.Reference() {
		t.Fatal("the snapshot load did not keep the persistent VM at the enrolled path")
	}
	check("snapshot load")
	req.Image.Strategy = vmware.StrategyClone
	var ev events
	if _, err := p.p.Load(t.Context(), req, &ev); err != nil {
		t.Fatalf("clone to the enrolled path: %v", err)
	}
	ev.has(t, "destroying the old VM lab-17 at /DC0/vm/pool-a/vm-017", "cloning ubuntu-22.04 to lab-17 at /DC0/vm/pool-a/vm-017")
	if got := p.at(t, "/DC0/vm/pool-a/vm-017"); got == nil || got.Reference() == persistent.Reference() {
		t.Fatal("no new clone at the enrolled path")
	}
	check("clone")
}

func TestBadVMPath(t *testing.T) {
	t.Parallel()
	p := newPlaced(t, nil, nil)
	for _, tc := range []struct{ path, want string }{
		{"vm-017", "is not a vSphere inventory path"},
		{"/DC0/vm/lab/../vm-017", "is not a vSphere inventory path"},
		{"/DC9/vm/vm-017", "is not in datacenter /DC0"},
		{"/DC0/vm/no-such-folder/vm-017", `no folder named "/DC0/vm/no-such-folder"`},
	} {
		c := messages.Computer{Name: "vm-017", Provisioner: "vmware", Type: messages.TypeVirtualMachine,
			Attributes: map[string]string{vmware.AttrVMPath: tc.path}}
		_, err := p.p.Power(context.Background(), powerReq(c, messages.PowerStatus))
		if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("vm_path %q: %v, want a permanent error containing %q", tc.path, err, tc.want)
		}
	}
}
