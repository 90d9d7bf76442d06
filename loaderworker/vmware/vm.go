package vmware

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/loadpool/loadpool/progress"
	vprogress "github.com/vmware/govmomi/vim25/progress"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Tags: ExtraConfig keys that say what a VM runs.
const (
	TagImage = "loadpool.image"
	TagJob   = "loadpool.job"
)

// vmState is one read of a VM's properties.
type vmState struct {
	template bool
	power    types.VirtualMachinePowerState
	tags     map[string]string
	snapshot *types.VirtualMachineSnapshotInfo
}

func readVM(ctx context.Context, vm *object.VirtualMachine) (vmState, error) {
	var m mo.VirtualMachine
	err := vm.Properties(ctx, vm.Reference(), []string{"config", "runtime.powerState", "snapshot"}, &m)
	if err != nil {
		return vmState{}, err
	}
	st := vmState{power: m.Runtime.PowerState, snapshot: m.Snapshot, tags: map[string]string{}}
	if m.Config != nil {
		st.template = m.Config.Template
		for _, o := range m.Config.ExtraConfig {
			if v := o.GetOptionValue(); v != nil {
				if s, ok := v.Value.(string); ok {
					st.tags[v.Key] = s
				}
			}
		}
	}
	return st, nil
}

// findSnapshot finds the snapshot named name in a VM's tree; nil when
// there is none, an error when there are several.
func findSnapshot(info *types.VirtualMachineSnapshotInfo, name string) (*types.ManagedObjectReference, error) {
	if info == nil {
		return nil, nil
	}
	var found []types.ManagedObjectReference
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(ts []types.VirtualMachineSnapshotTree) {
		for _, t := range ts {
			if t.Name == name {
				found = append(found, t.Snapshot)
			}
			walk(t.ChildSnapshotList)
		}
	}
	walk(info.RootSnapshotList)
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return &found[0], nil
	}
	return nil, &notFoundError{what: "unique snapshot", name: name,
		fix: "rename or remove the other snapshots of that name"}
}

// tagSpec sets the loadpool tags (an empty value removes a key).
func tagSpec(image, job string) types.VirtualMachineConfigSpec {
	return types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
		&types.OptionValue{Key: TagImage, Value: image},
		&types.OptionValue{Key: TagJob, Value: job},
	}}
}

func (p *Provisioner) tag(ctx context.Context, vm *object.VirtualMachine, image, job string) error {
	task, err := vm.Reconfigure(ctx, tagSpec(image, job))
	if err != nil {
		return err
	}
	_, err = p.wait(ctx, task, "", nil)
	return err
}

// powerOn starts vm; a VM that is already on is fine.
func (p *Provisioner) powerOn(ctx context.Context, vm *object.VirtualMachine, pr progress.Progress) error {
	task, err := vm.PowerOn(ctx)
	if err == nil {
		_, err = p.wait(ctx, task, "powering on", pr)
	}
	if isPowerState(err, types.VirtualMachinePowerStatePoweredOn) {
		return nil
	}
	return err
}

// powerOff stops vm; a VM that is already off is fine.
func (p *Provisioner) powerOff(ctx context.Context, vm *object.VirtualMachine, pr progress.Progress) error {
	task, err := vm.PowerOff(ctx)
	if err == nil {
		_, err = p.wait(ctx, task, "powering off", pr)
	}
	if fault.IsAlreadyPoweredOffError(err) || isPowerState(err, types.VirtualMachinePowerStatePoweredOff) {
		return nil
	}
	return err
}

func isPowerState(err error, existing types.VirtualMachinePowerState) bool {
	var ips *types.InvalidPowerState
	_, ok := fault.As(err, &ips)
	return ok && ips.ExistingState == existing
}

// destroy powers vm off and deletes it; a VM already gone is fine.
func (p *Provisioner) destroy(ctx context.Context, vm *object.VirtualMachine, pr progress.Progress) error {
	if err := p.powerOff(ctx, vm, pr); err != nil {
		return gone(err)
	}
	task, err := vm.Destroy(ctx)
	if err == nil {
		_, err = p.wait(ctx, task, "destroying", pr)
	}
	return gone(err)
}

func gone(err error) error {
	if fault.Is(err, &types.ManagedObjectNotFound{}) {
		return nil
	}
	return err
}

// wait waits for task within TaskTimeout and reports its progress as
// "what: n%" events (every 25 points) when pr is set. When vCenter drops
// the session during the wait, it logs in again once and waits on the
// same task (its moref outlives the session). When the wait ends early
// (the step was aborted, the worker stops, the task deadline passed) the
// task is cancelled in vCenter rather than left running.
func (p *Provisioner) wait(ctx context.Context, task *object.Task, what string, pr progress.Progress) (*types.TaskInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.TaskTimeout)
	defer cancel()
	s := newSink(what, pr)
	info, err := s.wait(ctx, task)
	var lost *sessionLost
	if errors.As(err, &lost) && ctx.Err() == nil {
		p.log.Info("vSphere session was lost during a task wait; waiting on the task again", "task", task.Reference().Value)
		if err = p.rt.renew(ctx, lost); err == nil {
			info, err = s.wait(ctx, task)
		}
	}
	if err == nil && (info == nil || info.State != types.TaskInfoStateSuccess) {
		// govmomi answers a cancelled wait with no error and the task
		// still running.
		if err = ctx.Err(); err == nil {
			err = fmt.Errorf("vSphere task %s ended without success", task.Reference().Value)
		}
	}
	if err != nil && ctx.Err() != nil {
		cerr := task.Cancel(context.WithoutCancel(ctx)) // bounded by CallTimeout
		p.log.Info("stopped waiting for a vSphere task; cancelled it", "task", task.Reference().Value,
			"why", context.Cause(ctx), "cancel_error", cerr)
	}
	return info, err
}

// sink forwards task progress to a Progress (none when pr is nil).
type sink struct {
	what string
	pr   progress.Progress
	last int // the last percentage reported
	wg   sync.WaitGroup
}

func newSink(what string, pr progress.Progress) *sink { return &sink{what: what, pr: pr} }

// wait is one wait for task's result; waits on one sink run one after the
// other.
func (s *sink) wait(ctx context.Context, task *object.Task) (*types.TaskInfo, error) {
	if s.pr == nil {
		return task.WaitForResult(ctx)
	}
	defer s.wg.Wait()
	return task.WaitForResult(ctx, s)
}

// Sink implements govmomi's progress.Sinker; the task waiter closes the channel.
func (s *sink) Sink() chan<- vprogress.Report {
	ch := make(chan vprogress.Report)
	s.wg.Go(func() {
		for r := range ch {
			pct := int(r.Percentage())
			if pct >= s.last+25 && pct < 100 {
				s.last = pct
				s.pr.Event(fmt.Sprintf("%s: %d%%", s.what, pct))
			}
		}
	})
	return ch
}
