package vcsim

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// FailTask makes the next count calls of the SOAP method ("CloneVM_Task",
// "PowerOnVM_Task", "PowerOffVM_Task", "ResetVM_Task", "Destroy_Task" or
// "ReconfigVM_Task"; any other panics) on the VM named object ("*": any
// VM) start a task that fails with fault: how vCenter reports most errors.
func (s *Sim) FailTask(method, object string, fault types.BaseMethodFault, count int) {
	switch method {
	case "CloneVM_Task", "PowerOnVM_Task", "PowerOffVM_Task", "ResetVM_Task",
		"Destroy_Task", "ReconfigVM_Task":
	default:
		panic(fmt.Sprintf("vcsim: FailTask does not support %s", method))
	}
	s.hooks.addFault(&taskFault{method: method, object: object, fault: fault, count: count})
}

// FailCall makes the next count calls of the SOAP method on the object
// named object ("*": any) fail on the call itself with fault type ft.
func (s *Sim) FailCall(method, object string, ft simulator.FaultType, count int) {
	s.Model.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: method, ObjectType: "*", ObjectName: object,
		Probability: 1, Enabled: true, FaultType: ft, MaxCount: count,
	})
}

// BeforeCall makes the simulator call f once, before it serves the next
// call of the SOAP method (e.g. "CloneVM_Task", "WaitForUpdatesEx") by
// any client; that call waits for f to return, and is then served with
// the session it arrived with. f may call BeforeCall (to hook a later
// call) and the Sim's methods, e.g. DropSessions to end a session while
// a client waits for a task. Hooks are not removed by ClearFaults.
func (s *Sim) BeforeCall(method string, f func()) {
	s.hooks.addBefore(method, f)
}

// ClearFaults removes every injected fault.
func (s *Sim) ClearFaults() {
	s.Model.Service.ClearFaultRules()
	s.hooks.mu.Lock()
	s.hooks.faults = nil
	s.hooks.mu.Unlock()
}

// DropSessions terminates every session but the Sim's own, as a vCenter
// does when sessions expire: the next call of their clients fails with
// NotAuthenticated. It returns how many it terminated.
func (s *Sim) DropSessions(ctx context.Context) (int, error) {
	if s.admin == nil {
		return 0, fmt.Errorf("vcsim: the simulator is closed")
	}
	mine, err := s.admin.SessionManager.UserSession(ctx)
	if err != nil {
		return 0, err
	}
	var sm mo.SessionManager
	if err := s.admin.RetrieveOne(ctx, *s.admin.ServiceContent.SessionManager, []string{"sessionList"}, &sm); err != nil {
		return 0, err
	}
	var keys []string
	for _, us := range sm.SessionList {
		if us.Key != mine.Key {
			keys = append(keys, us.Key)
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	return len(keys), s.admin.SessionManager.TerminateSession(ctx, keys)
}

// PowerState is the power state of the VM named name: "on", "off" or
// "unknown" (also when there is no such VM).
func (s *Sim) PowerState(ctx context.Context, name string) (string, error) {
	vm, err := s.VM(ctx, name)
	if err != nil {
		return "unknown", err
	}
	st, err := vm.PowerState(ctx)
	switch {
	case err != nil:
		return "unknown", err
	case st == types.VirtualMachinePowerStatePoweredOn:
		return "on", nil
	case st == types.VirtualMachinePowerStatePoweredOff, st == types.VirtualMachinePowerStateSuspended:
		return "off", nil
	}
	return "unknown", nil
}

// ExtraConfig returns the VM's ExtraConfig keys and values.
func (s *Sim) ExtraConfig(ctx context.Context, name string) (map[string]string, error) {
	vm, err := s.VM(ctx, name)
	if err != nil {
		return nil, err
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.extraConfig"}, &m); err != nil {
		return nil, err
	}
	out := map[string]string{}
	if m.Config == nil {
		return out, nil
	}
	for _, o := range m.Config.ExtraConfig {
		if v := o.GetOptionValue(); v != nil {
			out[v.Key], _ = v.Value.(string)
		}
	}
	return out, nil
}

// FailCallWith makes the next count calls of the SOAP method on the object
// named object ("*": any) fail on the call itself with fault, e.g.
// FailCallWith("Login", "*", &types.InvalidLogin{}, 1) when a password
// was changed behind a running worker.
func (s *Sim) FailCallWith(method, object string, fault types.BaseMethodFault, count int) {
	s.Model.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: method, ObjectType: "*", ObjectName: object,
		Probability: 1, Enabled: true, FaultType: simulator.FaultTypeCustom, Fault: fault, MaxCount: count,
	})
}

// VM finds the VM or template named exactly name. (govmomi's Finder reads
// a bare "vm-12" as a managed object id, which names some other VM.)
func (s *Sim) VM(ctx context.Context, name string) (*object.VirtualMachine, error) {
	if s.admin == nil {
		return nil, fmt.Errorf("vcsim: the simulator is closed")
	}
	v, err := view.NewManager(s.admin.Client).CreateContainerView(ctx, s.admin.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms); err != nil {
		return nil, err
	}
	for _, vm := range vms {
		if vm.Name == name {
			return object.NewVirtualMachine(s.admin.Client, vm.Self), nil
		}
	}
	return nil, fmt.Errorf("vcsim: no VM named %q", name)
}
