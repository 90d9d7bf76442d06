package vmware_test

import (
	"context"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/loaderworker/provisionertest"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/messages"
)

// TestConformance runs the provisioner suite through the loader runtime
// and NATS against the simulator. Not parallel: Slow sets the
// simulator's package-global TaskDelay.
func TestConformance(t *testing.T) {
	provisionertest.Run(t, func(t *testing.T) provisionertest.Fixture {
		r := newRig(t, vcsim.Options{})
		image := messages.Image{Name: "ubuntu-22.04", OSFamily: "linux"}
		computer := messages.Computer{Name: "vm-conf", Provisioner: "vmware", Type: messages.TypeVirtualMachine}
		return provisionertest.Fixture{
			Provisioner:  r.p,
			Name:         "vmware",
			Computer:     computer,
			Image:        image,
			MissingImage: messages.Image{Name: "no-such-image", OSFamily: "linux"},
			InjectTransient: func() {
				r.sim.FailTask("CloneVM_Task", image.Name, &types.GenericVmConfigFault{Reason: "disk locked"}, 1)
			},
			Slow: func(d time.Duration) { slowTasks(t, map[string]time.Duration{"CloneVm": d}) },
			PowerState: func() string {
				return r.power(t, computer.Name)
			},
		}
	})
}

// slowTasks delays the simulator's tasks by name (e.g. "CloneVm") until
// the test ends. simulator.TaskDelay is a package global: callers must not
// be parallel tests.
func slowTasks(t testing.TB, delays map[string]time.Duration) {
	ms := map[string]int{}
	for k, d := range delays {
		ms[k] = int(d / time.Millisecond)
	}
	simulator.TaskDelay.MethodDelay = ms
	t.Cleanup(func() { simulator.TaskDelay.MethodDelay = nil })
}

// TestSlowTaskOutlivesCallTimeout: a task may run far longer than one
// call's deadline; waiting for it is bounded by the task deadline.
func TestSlowTaskOutlivesCallTimeout(t *testing.T) {
	r := newRig(t, vcsim.Options{}, func(c *vmware.Config) { c.CallTimeout = time.Second })
	slowTasks(t, map[string]time.Duration{"CloneVm": 2500 * time.Millisecond})
	var ev events
	rep, err := r.p.Load(context.Background(), request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways), &ev)
	if err != nil || !rep.Reloaded {
		t.Fatalf("load = %+v, %v; want a reload", rep, err)
	}
	ev.has(t, "cloning ubuntu-22.04 to vm-1", "powering on vm-1")
}
