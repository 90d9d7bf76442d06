package vmware_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/messages"
)

// TestSessionDroppedDuringTaskWait: vCenter drops the session while a
// clone runs and the provisioner waits for it. The wait logs in again
// once and waits on the same task, and the load (through the loader
// runtime) ends ready. Not parallel:
// slowTasks sets the simulator's package-global TaskDelay.
func TestSessionDroppedDuringTaskWait(t *testing.T) {
	r := newRig(t, vcsim.Options{})
	admin := adminClient(t, r.sim)
	slowTasks(t, map[string]time.Duration{"CloneVm": time.Second})
	waiting, dropped := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(dropped) })
	t.Cleanup(release) // a failed test must not leave the simulator held
	r.sim.BeforeCall("CloneVM_Task", func() {
		// The clone's task wait: held until the test dropped the session.
		r.sim.BeforeCall("WaitForUpdatesEx", func() { close(waiting); <-dropped })
	})
	w := newWire(t, r, 1)
	w.Publish(request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways))
	select {
	case <-waiting:
	case <-time.After(resultTimeout): // a bound for a failing test, not a wait for anything
		t.Fatalf("the load never waited for its clone; events:\n%s", w.eventText())
	}
	info := cloneTask(t, r, admin)
	// Every session but the simulator's: the provisioner's and admin's.
	if n, err := r.sim.DropSessions(t.Context()); err != nil || n != 2 {
		t.Fatalf("DropSessions = %d, %v; want the provisioner's and the test's", n, err)
	}
	release()
	if info == nil || info.State != types.TaskInfoStateRunning {
		t.Fatalf("the clone task was not running when the session dropped: %+v", info)
	}
	if res := w.Result(resultTimeout); res.Outcome != messages.OutcomeReady || !strings.Contains(res.Detail, "cloned ubuntu-22.04 to vm-1") {
		t.Fatalf("load: %s %q; want ready after the session dropped mid-wait; events:\n%s", res.Outcome, res.Detail, w.eventText())
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
