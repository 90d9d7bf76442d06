package vmware

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/loadpool/loadpool/messages"
)

// Power performs req.Action (reset, on, off, status) on the computer's VM
// (at its placement, as Load finds it) and reports its power state afterwards. With req.Evidence it first saves
// a console screenshot where vSphere supports it and says where in the
// reply's Evidence, or why not in its Detail; a missing screenshot never
// fails the action. Reset of a VM that is off powers it on.
func (p *Provisioner) Power(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error) {
	reply := messages.PowerReply{Computer: req.Computer.Name, Action: req.Action, State: "unknown"}
	err := p.power(ctx, req, &reply)
	if err != nil {
		p.forget()
	}
	return reply, classify(err, p.cfg.User)
}

func (p *Provisioner) power(ctx context.Context, req messages.PowerRequest, reply *messages.PowerReply) error {
	inv, err := p.inventory(ctx)
	if err != nil {
		return err
	}
	pl, err := p.place(ctx, inv, req.Computer)
	if err != nil {
		return err
	}
	vm, err := p.vm(ctx, pl)
	if err != nil {
		return err
	}
	if vm == nil {
		return pl.missing("nothing to power (load an image onto the computer first)")
	}
	st, err := readVM(ctx, vm)
	if err != nil {
		return err
	}
	var notes []string
	if req.Evidence {
		reply.Evidence, notes = p.screenshot(ctx, vm, st.power)
	}
	note, err := p.act(ctx, vm, req.Action, st.power)
	if err != nil {
		return err
	}
	if st, err = readVM(ctx, vm); err != nil {
		return err
	}
	reply.State = powerWord(st.power)
	reply.Detail = joinNotes(append([]string{note}, notes...))
	return nil
}

// act performs one action on a VM whose power state was before.
func (p *Provisioner) act(ctx context.Context, vm *object.VirtualMachine, action string, before types.VirtualMachinePowerState) (string, error) {
	on := before == types.VirtualMachinePowerStatePoweredOn
	switch action {
	case messages.PowerStatus:
		return "powered " + powerWord(before), nil
	case messages.PowerOn:
		return "powered on", p.powerOn(ctx, vm, nil)
	case messages.PowerOff:
		return "powered off", p.powerOff(ctx, vm, nil)
	case messages.PowerReset:
		if !on {
			return "was off; powered on instead of a reset", p.powerOn(ctx, vm, nil)
		}
		task, err := vm.Reset(ctx)
		if err == nil {
			_, err = p.wait(ctx, task, "", nil)
		}
		return "reset", err
	}
	return "", &badInputError{msg: fmt.Sprintf("action must be reset, on, off or status, not %q", action)}
}

// screenshot saves a console screenshot of vm; it returns the datastore
// path, or notes that say why there is none.
func (p *Provisioner) screenshot(ctx context.Context, vm *object.VirtualMachine, power types.VirtualMachinePowerState) (string, []string) {
	if power != types.VirtualMachinePowerStatePoweredOn {
		return "", []string{"no console screenshot: the VM is not powered on"}
	}
	res, err := methods.CreateScreenshot_Task(ctx, p.client.Client, &types.CreateScreenshot_Task{This: vm.Reference()})
	var info *types.TaskInfo
	if err == nil {
		info, err = p.wait(ctx, object.NewTask(p.client.Client, res.Returnval), "", nil)
	}
	switch {
	case fault.Is(err, &types.MethodNotFound{}) || fault.Is(err, &types.NotSupported{}):
		return "", []string{"no console screenshot: this vSphere does not support CreateScreenshot_Task"}
	case err != nil:
		p.log.Warn("console screenshot failed", "vm", vm.Name(), "err", err)
		return "", []string{"no console screenshot: " + err.Error()}
	}
	path, _ := info.Result.(string)
	return path, []string{"console screenshot saved at " + path}
}

func powerWord(s types.VirtualMachinePowerState) string {
	switch s {
	case types.VirtualMachinePowerStatePoweredOn:
		return "on"
	case types.VirtualMachinePowerStatePoweredOff, types.VirtualMachinePowerStateSuspended:
		return "off"
	}
	return "unknown"
}

func joinNotes(notes []string) string {
	out := ""
	for _, n := range notes {
		if n == "" {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += n
	}
	return out
}
