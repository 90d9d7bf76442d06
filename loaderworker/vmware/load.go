package vmware

import (
	"context"
	"fmt"

	"github.com/loadpool/loadpool/progress"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

// Load puts req.Image on the computer's VM (its placement: attribute
// vm_path, else its name in the configured folder) and powers it on, with
// the image's strategy or the configured one. With reload if-needed a VM
// that is on and tagged with the image is left alone.
func (p *Provisioner) Load(ctx context.Context, req messages.Request, pr progress.Progress) (loaderworker.LoadReport, error) {
	rep, err := p.load(ctx, req, pr)
	if err != nil {
		p.forget()
	}
	return rep, classify(err, p.cfg.User)
}

func (p *Provisioner) load(ctx context.Context, req messages.Request, pr progress.Progress) (loaderworker.LoadReport, error) {
	strategy := req.Image.Strategy
	if strategy == "" {
		strategy = p.cfg.Strategy
	}
	if err := validStrategy(strategy); err != nil {
		return loaderworker.LoadReport{}, &badInputError{msg: "image.strategy " + err.Error() + " for the vmware provisioner: fix the image"}
	}
	inv, err := p.inventory(ctx)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	pl, err := p.place(ctx, inv, req.Computer)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	cur, err := p.current(ctx, pl)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	if cur.vm != nil && req.Reload != messages.ReloadAlways {
		if rep, ok := skipped(cur.st, req); ok {
			return rep, nil
		}
	}
	if strategy == StrategySnapshot {
		return p.revert(ctx, cur, req, pr)
	}
	return p.clone(ctx, inv, cur, req, pr)
}

// computerVM is the computer's VM as found at its placement; vm is nil
// when there is none.
type computerVM struct {
	pl placement
	vm *object.VirtualMachine
	st vmState
}

// current finds and reads the VM at pl. A template there is refused:
// loading would destroy or change it.
func (p *Provisioner) current(ctx context.Context, pl placement) (computerVM, error) {
	vm, err := p.vm(ctx, pl)
	if err != nil || vm == nil {
		return computerVM{pl: pl}, err
	}
	st, err := readVM(ctx, vm)
	if err != nil {
		return computerVM{}, err
	}
	if st.template {
		return computerVM{}, &badInputError{msg: fmt.Sprintf("the place of computer %s, %s, holds a template: move the template, or enrol another vm_path for the computer", pl.computer, pl.path)}
	}
	return computerVM{pl: pl, vm: vm, st: st}, nil
}

// skipped reports whether the VM already runs the image and is on.
func skipped(st vmState, req messages.Request) (loaderworker.LoadReport, bool) {
	if st.tags[TagImage] != req.Image.Name || st.power != types.VirtualMachinePowerStatePoweredOn {
		return loaderworker.LoadReport{}, false
	}
	return loaderworker.LoadReport{Detail: fmt.Sprintf("skipped the reload: %s already runs %s (loaded by job %s) and is powered on",
		req.Computer.Name, req.Image.Name, st.tags[TagJob])}, true
}

// clone replaces the computer's VM (if any) with a clone of the image's
// template. A missing template is found out before anything is destroyed.
func (p *Provisioner) clone(ctx context.Context, inv *inventory, cur computerVM, req messages.Request, pr progress.Progress) (loaderworker.LoadReport, error) {
	name, image := req.Computer.Name, req.Image.Name
	src, st, err := p.template(ctx, inv, image)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	if cur.vm != nil {
		if cur.vm.Reference() == src.Reference() {
			return loaderworker.LoadReport{}, &badInputError{msg: fmt.Sprintf("computer %s has the name of its own image's source VM: rename the computer or the VM", name)}
		}
		pr.Event(fmt.Sprintf("powering off and destroying the old VM %s at %s", name, cur.pl.path))
		if err := p.destroy(ctx, cur.vm, pr); err != nil {
			return loaderworker.LoadReport{}, err
		}
	}
	spec, how := cloneSpec(inv, st, image, req.JobID)
	pr.Event(fmt.Sprintf("cloning %s to %s at %s (%s)", image, name, cur.pl.path, how))
	vm, err := p.cloneTo(ctx, src, cur.pl.folder, cur.pl.name, spec, pr)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	if err := p.start(ctx, vm, req, pr); err != nil {
		return loaderworker.LoadReport{}, err
	}
	return loaderworker.LoadReport{Detail: fmt.Sprintf("cloned %s to %s (%s) and powered it on", image, name, how), Reloaded: true}, nil
}

// template finds and reads the template (or VM) named like the image.
func (p *Provisioner) template(ctx context.Context, inv *inventory, image string) (*object.VirtualMachine, vmState, error) {
	src, err := p.findTemplate(ctx, inv, image)
	if err != nil {
		return nil, vmState{}, err
	}
	if src == nil {
		return nil, vmState{}, &notFoundError{what: "template", name: image,
			fix: "create a template (or a VM with a snapshot) of that name, or fix the image name"}
	}
	st, err := readVM(ctx, src)
	return src, st, err
}

// cloneTo clones src to a VM name in folder and waits for it.
func (p *Provisioner) cloneTo(ctx context.Context, src *object.VirtualMachine, folder *object.Folder, name string,
	spec types.VirtualMachineCloneSpec, pr progress.Progress) (*object.VirtualMachine, error) {
	task, err := src.Clone(ctx, folder, name, spec)
	if err != nil {
		return nil, err
	}
	info, err := p.wait(ctx, task, "cloning", pr)
	if err != nil {
		return nil, err
	}
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return nil, fmt.Errorf("cloning to %s: vCenter answered no VM reference", name)
	}
	return object.NewVirtualMachine(p.client.Client, ref), nil
}

// cloneSpec clones into the configured pool, folder and datastore; a
// linked clone from the template's current snapshot when it has one.
func cloneSpec(inv *inventory, src vmState, image, job string) (types.VirtualMachineCloneSpec, string) {
	pool := inv.pool.Reference()
	tags := tagSpec(image, job)
	spec := types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{Pool: &pool},
		Config:   &tags,
	}
	if inv.ds != nil {
		ds := inv.ds.Reference()
		spec.Location.Datastore = &ds
	}
	if src.snapshot == nil || src.snapshot.CurrentSnapshot == nil {
		return spec, "full clone"
	}
	spec.Snapshot = src.snapshot.CurrentSnapshot
	spec.Location.DiskMoveType = string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking)
	return spec, "linked clone"
}

// revert puts the computer's persistent VM back to the image's snapshot.
func (p *Provisioner) revert(ctx context.Context, cur computerVM, req messages.Request, pr progress.Progress) (loaderworker.LoadReport, error) {
	name, image, vm := req.Computer.Name, req.Image.Name, cur.vm
	if vm == nil {
		return loaderworker.LoadReport{}, cur.pl.missing("the snapshot strategy needs the computer's persistent VM (or load with strategy clone)")
	}
	snap, err := findSnapshot(cur.st.snapshot, image)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	if snap == nil {
		return loaderworker.LoadReport{}, &notFoundError{what: "snapshot", name: image,
			fix: fmt.Sprintf("take a snapshot of that name of the VM %s, or fix the image name", name)}
	}
	pr.Event(fmt.Sprintf("powering off %s", name))
	if err := p.powerOff(ctx, vm, pr); err != nil {
		return loaderworker.LoadReport{}, err
	}
	if err := p.tag(ctx, vm, "", ""); err != nil { // no stale tag if the revert fails
		return loaderworker.LoadReport{}, err
	}
	pr.Event(fmt.Sprintf("reverting %s to snapshot %s", name, image))
	res, err := methods.RevertToSnapshot_Task(ctx, p.client.Client,
		&types.RevertToSnapshot_Task{This: *snap, SuppressPowerOn: types.NewBool(true)})
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	if _, err := p.wait(ctx, object.NewTask(p.client.Client, res.Returnval), "reverting", pr); err != nil {
		return loaderworker.LoadReport{}, err
	}
	if err := p.start(ctx, vm, req, pr); err != nil {
		return loaderworker.LoadReport{}, err
	}
	return loaderworker.LoadReport{Detail: fmt.Sprintf("reverted %s to snapshot %s and powered it on", name, image), Reloaded: true}, nil
}

// start tags a freshly loaded VM and powers it on.
func (p *Provisioner) start(ctx context.Context, vm *object.VirtualMachine, req messages.Request, pr progress.Progress) error {
	if err := p.tag(ctx, vm, req.Image.Name, req.JobID); err != nil {
		return err
	}
	pr.Event(fmt.Sprintf("powering on %s", req.Computer.Name))
	return p.powerOn(ctx, vm, pr)
}
