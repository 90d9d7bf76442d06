package vmware

import (
	"context"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// inventory is where clones go, resolved once per process (finding a
// resource pool is slow).
type inventory struct {
	dc     *object.Datacenter
	folder *object.Folder
	pool   *object.ResourcePool
	ds     *object.Datastore // nil: the template's datastore
}

// inventory returns the cached inventory, resolving it on first use.
func (p *Provisioner) inventory(ctx context.Context) (*inventory, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inv != nil {
		return p.inv, nil
	}
	inv, err := p.resolve(ctx)
	if err != nil {
		return nil, err
	}
	p.inv = inv
	return inv, nil
}

// forget drops the cached inventory after a failed load or power action,
// so that a folder, pool or datastore that was deleted or moved is found
// again by the next job (vCenter does not always say which object was
// gone: the simulator answers RuntimeFault "Invalid folder").
func (p *Provisioner) forget() {
	p.mu.Lock()
	p.inv = nil
	p.mu.Unlock()
}

func (p *Provisioner) resolve(ctx context.Context) (*inventory, error) {
	f := find.NewFinder(p.client.Client, true)
	inv := &inventory{}
	var err error
	if inv.dc, err = lookup(ctx, "LOADPOOL_VSPHERE_DATACENTER", p.cfg.Datacenter, f.Datacenter, f.DefaultDatacenter); err != nil {
		return nil, err
	}
	f.SetDatacenter(inv.dc)
	if inv.folder, err = lookup(ctx, "LOADPOOL_VSPHERE_FOLDER", p.cfg.Folder, f.Folder, f.DefaultFolder); err != nil {
		return nil, err
	}
	if inv.pool, err = lookup(ctx, "LOADPOOL_VSPHERE_RESOURCE_POOL", p.cfg.ResourcePool, f.ResourcePool, f.DefaultResourcePool); err != nil {
		return nil, err
	}
	if p.cfg.Datastore != "" {
		if inv.ds, err = lookup(ctx, "LOADPOOL_VSPHERE_DATASTORE", p.cfg.Datastore, f.Datastore, nil); err != nil {
			return nil, err
		}
	}
	return inv, nil
}

// lookup finds path with byPath, or the default with byDefault when path
// is empty; a miss is a configError naming setting.
func lookup[T any](ctx context.Context, setting, path string,
	byPath func(context.Context, string) (T, error), byDefault func(context.Context) (T, error)) (T, error) {
	var v T
	var err error
	if path == "" {
		v, err = byDefault(ctx)
	} else {
		v, err = byPath(ctx, path)
	}
	if err != nil && isFinderMiss(err) {
		return v, &configError{setting: setting, value: path, err: err}
	}
	return v, err
}

// findTemplate finds the template (or VM) named exactly name in the
// datacenter, the source of a clone: (nil, nil) when there is none. Only
// images are looked up by name; a computer's VM is found at its placement
// (place). It does not use the Finder, which reads a bare "vm-123" as a
// managed object id and would answer some other VM.
func (p *Provisioner) findTemplate(ctx context.Context, inv *inventory, name string) (*object.VirtualMachine, error) {
	v, err := view.NewManager(p.client.Client).CreateContainerView(ctx, inv.dc.Reference(), []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms); err != nil {
		return nil, err
	}
	var found []types.ManagedObjectReference
	for _, vm := range vms {
		if vm.Name == name {
			found = append(found, vm.Self)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return object.NewVirtualMachine(p.client.Client, found[0]), nil
	}
	return nil, &notFoundError{what: "unique virtual machine", name: name,
		fix: "rename or remove the other virtual machines of that name"}
}
