package vmware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
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
	// A call deadline the rig's own calls meet on a loaded machine under
	// -race (1s did not), and a task well beyond it.
	r := newRig(t, vcsim.Options{}, func(c *vmware.Config) { c.CallTimeout = 3 * time.Second })
	slowTasks(t, map[string]time.Duration{"CloneVm": 6 * time.Second})
	var ev events
	rep, err := r.p.Load(context.Background(), request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways), &ev)
	if err != nil || !rep.Reloaded {
		t.Fatalf("load = %+v, %v; want a reload", rep, err)
	}
	ev.has(t, "cloning ubuntu-22.04 to vm-1", "powering on vm-1")
}

// TestAbortCancelsTheTask: when the step's context ends during a clone
// (an abort, a shutdown), the clone task is cancelled in vCenter.
func TestAbortCancelsTheTask(t *testing.T) {
	r := newRig(t, vcsim.Options{})
	admin := adminClient(t, r.sim)
	slowTasks(t, map[string]time.Duration{"CloneVm": time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.p.Load(ctx, request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways), &events{})
		done <- err
	}()
	poll.Until(t, "the condition", func() bool { // the clone runs
		info := cloneTask(t, r, admin)
		return info != nil && info.State == types.TaskInfoStateRunning
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	if info := cloneTask(t, r, admin); !info.Cancelled {
		t.Fatalf("the clone task was not cancelled: %+v", info)
	}
	// The simulator finishes the work of a cancelled task anyway: wait
	// for it, so that nothing writes to the datastore after the test.
	poll.Until(t, "the condition", func() bool { _, err := r.sim.VM(t.Context(), "vm-1"); return err == nil })
}

// cloneTask is the info of the simulator's clone task; nil when none.
func cloneTask(t *testing.T, r *rig, admin *govmomi.Client) *types.TaskInfo {
	t.Helper()
	if tasks := cloneTasks(t, r, admin); len(tasks) > 0 {
		return &tasks[0]
	}
	return nil
}

// cloneTasks is the info of every clone task the simulator ran.
func cloneTasks(t *testing.T, r *rig, admin *govmomi.Client) []types.TaskInfo {
	t.Helper()
	var refs []types.ManagedObjectReference
	for _, task := range r.sim.Model.Map().AllReference("Task") {
		refs = append(refs, task.Reference())
	}
	var tasks []mo.Task
	if err := admin.Retrieve(t.Context(), refs, []string{"info"}, &tasks); err != nil {
		t.Fatal(err)
	}
	var out []types.TaskInfo
	for _, task := range tasks {
		if task.Info.DescriptionId == "VirtualMachine.cloneVm" {
			out = append(out, task.Info)
		}
	}
	return out
}
