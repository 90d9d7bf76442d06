package vmware_test

import (
	"context"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

// TestSessionDroppedDuringTaskWait: vCenter drops the session while a
// clone runs and the provisioner waits for it. The wait logs in again
// once and waits on the same task, and the load ends ready. Not parallel:
// slowTasks sets the simulator's package-global TaskDelay.
func TestSessionDroppedDuringTaskWait(t *testing.T) {
	r := newRig(t, vcsim.Options{})
	admin := adminClient(t, r.sim)
	slowTasks(t, map[string]time.Duration{"CloneVm": time.Second})
	waiting, dropped := make(chan struct{}), make(chan struct{})
	r.sim.BeforeCall("CloneVM_Task", func() {
		// The clone's task wait: held until the test dropped the session.
		r.sim.BeforeCall("WaitForUpdatesEx", func() { close(waiting); <-dropped })
	})
	type result struct {
		rep loaderworker.LoadReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := r.p.Load(context.Background(), request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways), &events{})
		done <- result{rep, err}
	}()
	select {
	case <-waiting:
	case res := <-done:
		t.Fatalf("the load ended (%+v, %v) before it waited for the clone", res.rep, res.err)
	}
	info := cloneTask(t, r, admin)
	// Every session but the simulator's: the provisioner's and admin's.
	if n, err := r.sim.DropSessions(t.Context()); err != nil || n != 2 {
		t.Fatalf("DropSessions = %d, %v; want the provisioner's and the test's", n, err)
	}
	close(dropped)
	if info == nil || info.State != types.TaskInfoStateRunning {
		t.Fatalf("the clone task was not running when the session dropped: %+v", info)
	}
	res := <-done
	if res.err != nil || !res.rep.Reloaded {
		t.Fatalf("load = %+v, %v; want ready after the session dropped mid-wait", res.rep, res.err)
	}
	if n := r.p.Relogins(); n != 1 {
		t.Fatalf("re-logins = %d, want 1", n)
	}
	if tasks := cloneTasks(t, r, adminClient(t, r.sim)); len(tasks) != 1 || tasks[0].State != types.TaskInfoStateSuccess {
		t.Fatalf("clone tasks %+v, want the one the wait resumed on, succeeded", tasks)
	}
	if st := r.power(t, "vm-1"); st != "on" {
		t.Fatalf("vm-1 is %s, want on", st)
	}
}
