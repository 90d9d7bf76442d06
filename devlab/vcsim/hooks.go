package vcsim

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// hooks is the simulator's per-call hook (Map().Handler: task faults,
// screenshots) and property-change listener (power-on callback).
type hooks struct {
	self      types.ManagedObjectReference
	onPowerOn func(string)
	shots     bool
	calls     sync.WaitGroup

	mu     sync.Mutex
	faults []*taskFault
	before []callHook
	nshot  atomic.Int64
}

// callHook runs f before the next call of method is served.
type callHook struct {
	method string
	f      func()
}

// taskFault makes the next count calls of method on objects named object
// ("*": any) return a task that fails with fault.
type taskFault struct {
	method, object string
	fault          types.BaseMethodFault
	count          int
}

var hookID atomic.Int64

func installHooks(m *simulator.Model, opts Options) *hooks {
	h := &hooks{onPowerOn: opts.OnPowerOn, shots: opts.Screenshots,
		self: types.ManagedObjectReference{Type: "LoadpoolHook", Value: fmt.Sprintf("hook-%d", hookID.Add(1))}}
	m.Map().Handler = h.handle
	m.Map().AddHandler(h)
	return h
}

func (h *hooks) wait() { h.calls.Wait() }

// handle is Map().Handler. The simulator serves a call with the object it
// finds in the registry after this hook, so to change how one call is
// served the hook puts an override of the VM there, which puts the VM
// back when it serves the call.
func (h *hooks) handle(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	if f := h.takeBefore(m.Name); f != nil {
		f()
	}
	vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine)
	if !ok {
		return nil, nil
	}
	if f := h.takeFault(m.Name, vm.Name); f != nil {
		ctx.Map.Put(&override{VirtualMachine: vm, method: m.Name, fault: f})
	} else if h.shots && m.Name == "CreateScreenshot_Task" {
		ctx.Map.Put(&override{VirtualMachine: vm, method: m.Name, shot: h.nshot.Add(1)})
	}
	return nil, nil
}

func (h *hooks) addFault(f *taskFault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, f)
}

func (h *hooks) addBefore(method string, f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.before = append(h.before, callHook{method: method, f: f})
}

// takeBefore removes and returns the first hook for method (nil: none).
func (h *hooks) takeBefore(method string) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.before {
		if c.method == method {
			h.before = append(h.before[:i], h.before[i+1:]...)
			return c.f
		}
	}
	return nil
}

func (h *hooks) takeFault(method, name string) types.BaseMethodFault {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, f := range h.faults {
		if f.method == method && (f.object == "*" || f.object == name) {
			f.count--
			if f.count <= 0 {
				h.faults = append(h.faults[:i], h.faults[i+1:]...)
			}
			return f.fault
		}
	}
	return nil
}

// Reference, PutObject, UpdateObject and RemoveObject make hooks a
// simulator.RegisterObject that sees every property change.
func (h *hooks) Reference() types.ManagedObjectReference                       { return h.self }
func (h *hooks) PutObject(*simulator.Context, mo.Reference)                    {}
func (h *hooks) RemoveObject(*simulator.Context, types.ManagedObjectReference) {}

// UpdateObject calls OnPowerOn when a VM's power state becomes poweredOn
// (a power-on, or the second half of a reset).
func (h *hooks) UpdateObject(_ *simulator.Context, obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok || h.onPowerOn == nil {
		return
	}
	for _, c := range changes {
		if st, _ := c.Val.(types.VirtualMachinePowerState); c.Name == "runtime.powerState" && st == types.VirtualMachinePowerStatePoweredOn {
			name := vm.Name
			h.calls.Go(func() { h.onPowerOn(name) })
		}
	}
}

// override serves one call of method on a VM: a task that fails with
// fault (how a real vCenter reports most errors), or a screenshot. Other
// calls that reach it meanwhile go to the VM.
type override struct {
	*simulator.VirtualMachine
	method string
	fault  types.BaseMethodFault
	shot   int64
}

// mine puts the VM back and reports whether this call is the one to serve.
func (o *override) mine(ctx *simulator.Context, method string) bool {
	if method != o.method {
		return false
	}
	ctx.Map.Put(o.VirtualMachine)
	return true
}

func (o *override) fail(ctx *simulator.Context, name string) types.ManagedObjectReference {
	task := simulator.CreateTask(o.VirtualMachine, name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, o.fault
	})
	return task.Run(ctx)
}

func (o *override) CloneVMTask(ctx *simulator.Context, req *types.CloneVM_Task) soap.HasFault {
	if !o.mine(ctx, "CloneVM_Task") {
		return o.VirtualMachine.CloneVMTask(ctx, req)
	}
	return &methods.CloneVM_TaskBody{Res: &types.CloneVM_TaskResponse{Returnval: o.fail(ctx, "cloneVm")}}
}

func (o *override) PowerOnVMTask(ctx *simulator.Context, req *types.PowerOnVM_Task) soap.HasFault {
	if !o.mine(ctx, "PowerOnVM_Task") {
		return o.VirtualMachine.PowerOnVMTask(ctx, req)
	}
	return &methods.PowerOnVM_TaskBody{Res: &types.PowerOnVM_TaskResponse{Returnval: o.fail(ctx, "powerOn")}}
}

func (o *override) PowerOffVMTask(ctx *simulator.Context, req *types.PowerOffVM_Task) soap.HasFault {
	if !o.mine(ctx, "PowerOffVM_Task") {
		return o.VirtualMachine.PowerOffVMTask(ctx, req)
	}
	return &methods.PowerOffVM_TaskBody{Res: &types.PowerOffVM_TaskResponse{Returnval: o.fail(ctx, "powerOff")}}
}

func (o *override) ResetVMTask(ctx *simulator.Context, req *types.ResetVM_Task) soap.HasFault {
	if !o.mine(ctx, "ResetVM_Task") {
		return o.VirtualMachine.ResetVMTask(ctx, req)
	}
	return &methods.ResetVM_TaskBody{Res: &types.ResetVM_TaskResponse{Returnval: o.fail(ctx, "reset")}}
}

func (o *override) DestroyTask(ctx *simulator.Context, req *types.Destroy_Task) soap.HasFault {
	if !o.mine(ctx, "Destroy_Task") {
		return o.VirtualMachine.DestroyTask(ctx, req)
	}
	return &methods.Destroy_TaskBody{Res: &types.Destroy_TaskResponse{Returnval: o.fail(ctx, "destroy")}}
}

func (o *override) ReconfigVMTask(ctx *simulator.Context, req *types.ReconfigVM_Task) soap.HasFault {
	if !o.mine(ctx, "ReconfigVM_Task") {
		return o.VirtualMachine.ReconfigVMTask(ctx, req)
	}
	return &methods.ReconfigVM_TaskBody{Res: &types.ReconfigVM_TaskResponse{Returnval: o.fail(ctx, "reconfigVm")}}
}

// CreateScreenshotTask implements the method the simulator lacks: a
// blank PNG next to the VM's files.
func (o *override) CreateScreenshotTask(ctx *simulator.Context, _ *types.CreateScreenshot_Task) soap.HasFault {
	o.mine(ctx, "CreateScreenshot_Task")
	task := simulator.CreateTask(o.VirtualMachine, "createScreenshot", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		p, err := o.save(ctx)
		if err != nil {
			return nil, &types.SystemError{Reason: err.Error()}
		}
		return p, nil
	})
	return &methods.CreateScreenshot_TaskBody{Res: &types.CreateScreenshot_TaskResponse{Returnval: task.Run(ctx)}}
}

func (o *override) save(ctx *simulator.Context) (string, error) {
	var vmx object.DatastorePath
	if o.Config == nil || o.Config.Files.VmPathName == "" || !vmx.FromString(o.Config.Files.VmPathName) || len(o.Datastore) == 0 {
		return "", fmt.Errorf("VM %s has no files", o.Name)
	}
	ds, ok := ctx.Map.Get(o.Datastore[0]).(*simulator.Datastore)
	if !ok {
		return "", fmt.Errorf("VM %s has no datastore", o.Name)
	}
	rel := path.Join(path.Dir(vmx.Path), fmt.Sprintf("%s-screenshot-%d.png", o.Name, o.shot))
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 64, 48))); err != nil {
		return "", err
	}
	local := filepath.Join(ds.Info.GetDatastoreInfo().Url, filepath.FromSlash(rel))
	if err := os.WriteFile(local, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return (&object.DatastorePath{Datastore: vmx.Datastore, Path: rel}).String(), nil
}
