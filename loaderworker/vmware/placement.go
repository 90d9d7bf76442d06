package vmware

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/vmware/govmomi/object"

	"github.com/loadpool/loadpool/messages"
)

// AttrVMPath is the enrolment attribute that places a computer's VM: its
// vSphere inventory path ("/DC0/vm/lab/vm-017"). Without it the VM is the
// one named like the computer in the configured folder
// (LOADPOOL_VSPHERE_FOLDER).
const AttrVMPath = "vm_path"

// placement is where a computer's VM is, and where its clone goes: the
// only place Load and Power touch.
type placement struct {
	computer string
	folder   *object.Folder
	name     string // the VM's name in folder
	path     string // folder's inventory path + "/" + name, for sentences
	enrolled bool   // from AttrVMPath
}

// place resolves c's placement: attribute vm_path, else c's name in the
// configured folder. Never a search of the datacenter by name.
func (p *Provisioner) place(ctx context.Context, inv *inventory, c messages.Computer) (placement, error) {
	vmPath, ok := c.Attributes[AttrVMPath]
	if !ok {
		return placement{computer: c.Name, folder: inv.folder, name: c.Name,
			path: inv.folder.InventoryPath + "/" + c.Name}, nil
	}
	dir, name := path.Split(vmPath)
	dir = strings.TrimSuffix(dir, "/")
	if !strings.HasPrefix(vmPath, "/") || path.Clean(vmPath) != vmPath || dir == "" || name == "" {
		return placement{}, &badInputError{msg: fmt.Sprintf("attribute vm_path %q of computer %s is not a vSphere inventory path such as /DC0/vm/lab/%s: fix the enrolment (vcl.computer.set)", vmPath, c.Name, c.Name)}
	}
	if dc := inv.dc.InventoryPath; !strings.HasPrefix(vmPath, dc+"/") {
		return placement{}, &badInputError{msg: fmt.Sprintf("attribute vm_path %q of computer %s is not in datacenter %s (LOADPOOL_VSPHERE_DATACENTER): fix the enrolment or the setting", vmPath, c.Name, dc)}
	}
	ref, err := object.NewSearchIndex(p.client.Client).FindByInventoryPath(ctx, dir)
	if err != nil {
		return placement{}, err
	}
	folder, isFolder := ref.(*object.Folder)
	if !isFolder {
		return placement{}, &notFoundError{what: "folder", name: dir,
			fix: fmt.Sprintf("computer %s is enrolled with vm_path %s: create that folder in vCenter, or enrol the VM's real inventory path (vcl.computer.set)", c.Name, vmPath)}
	}
	folder.InventoryPath = dir
	return placement{computer: c.Name, folder: folder, name: name, path: vmPath, enrolled: true}, nil
}

// vm finds the VM at the placement; nil when there is none.
func (p *Provisioner) vm(ctx context.Context, pl placement) (*object.VirtualMachine, error) {
	ref, err := object.NewSearchIndex(p.client.Client).FindChild(ctx, pl.folder, pl.name)
	if err != nil || ref == nil {
		return nil, err
	}
	vm, ok := ref.(*object.VirtualMachine)
	if !ok {
		return nil, &badInputError{msg: fmt.Sprintf("%s, the place of computer %s, is a %s, not a virtual machine: fix the enrolment's vm_path (vcl.computer.set)", pl.path, pl.computer, ref.Reference().Type)}
	}
	return vm, nil
}

// missing is the error of a VM that must exist at the placement and does
// not; why says what needed it.
func (pl placement) missing(why string) error {
	fix := fmt.Sprintf("computer %s is enrolled with vm_path %s and loadpool touches no other VM: create or move the VM there, or enrol its real inventory path (vcl.computer.set {\"name\": %q, \"attributes\": {\"vm_path\": \"/DC/vm/FOLDER/VM\"}})",
		pl.computer, pl.path, pl.computer)
	if !pl.enrolled {
		fix = fmt.Sprintf("without attribute vm_path, the VM of computer %s is the one named %s in the folder of LOADPOOL_VSPHERE_FOLDER (%s) and loadpool touches no other VM: enrol the VM's inventory path as the computer's attribute vm_path (vcl.computer.set {\"name\": %q, \"attributes\": {\"vm_path\": \"/DC/vm/FOLDER/%s\"}}), or move the VM into that folder",
			pl.computer, pl.name, path.Dir(pl.path), pl.computer, pl.name)
	}
	return &notFoundError{what: "virtual machine", name: pl.path, fix: why + "; " + fix}
}
