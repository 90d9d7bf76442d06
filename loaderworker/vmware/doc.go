// Package vmware is the provisioner for computer.provisioner "vmware": it
// puts an image on a vSphere virtual machine and powers it on, and nothing
// more (no waiting for the guest OS, no SSH).
//
// # Session
//
// One [Provisioner] holds one vCenter session for the whole process; when
// vCenter drops it (NotAuthenticated) the next call logs in again once and
// is repeated; a task wait it interrupts logs in again once and goes on
// waiting on the same task (a long clone survives a session timeout).
// Calls on a task wait's property collector are never repeated, as the
// collector dies with its session. There is never a login per job.
// Every vSphere call has its own deadline (Config.CallTimeout); a task wait is bounded by
// Config.TaskTimeout and reports progress through the step's Progress.
// The datacenter, folder, resource pool and datastore are resolved once
// and cached (a vm_path's folder is resolved per call); the cache is dropped after a failed load or power action, so
// the next job finds a moved or recreated folder or pool again.
//
// # Placement (the enrolment's attributes)
//
// A computer's VM is where its enrolment puts it, and nowhere else:
//   - attributes["vm_path"] ([AttrVMPath]): the VM's vSphere inventory
//     path, e.g. "/DC0/vm/lab/vm-017" (absolute, in the configured
//     datacenter; its folder must exist). The VM there may be called
//     otherwise than the computer.
//   - without it: the VM named like the computer directly in the
//     configured folder (LOADPOOL_VSPHERE_FOLDER, default the
//     datacenter's root VM folder).
//
// Load and Power never search the datacenter for a VM by the computer's
// name: a VM of that name elsewhere is never destroyed, loaded or
// powered. Where the VM must exist (power, the snapshot strategy) and
// does not, the step answers fail with a sentence that says how to enrol
// the VM's path (vcl.computer.set with attributes.vm_path). Templates,
// the source of clones, are looked up by the image's name in the
// datacenter.
//
// # Strategies
//
// Strategies ([Config].Strategy, or messages.Image.Strategy per job):
//   - clone: the VM at the computer's placement is powered off and
//     destroyed if it exists, then cloned again from the template (or VM)
//     named like the image into the placement's folder and name, in the
//     configured pool and datastore — a linked clone from the template's
//     current snapshot when it has one.
//   - snapshot: the persistent VM at the computer's placement is powered
//     off and reverted to the snapshot named like the image.
//
// Either way the VM is then tagged (ExtraConfig TagImage, TagJob) and
// powered on. With reload if-needed, a VM that is powered on and tagged
// with the image is left alone: Load answers ready with Reloaded false and
// a detail that says it skipped.
//
// # Outcomes
//
// Outcomes are decided in one place (classify): a missing template,
// snapshot or VM, refused credentials, a missing privilege, an untrusted
// certificate or a setting that names nothing are wrapped with
// outcome.Permanent and carry a sentence that says what to fix;
// everything else (network errors, task failures, busy hosts, InvalidState
// races, deadlines) is returned as is, so the step answers retry.
//
// # Power
//
// Power performs reset, on, off and status; with Evidence it saves a
// console screenshot first (CreateScreenshot_Task) where vSphere has it.
//
// # Privileges
//
// The vCenter user needs, on the templates, the computers' VMs, the
// folder, the pool and the datastore: VirtualMachine.Provisioning.Clone
// (and .CloneTemplate), VirtualMachine.Inventory.CreateFromExisting and
// .Delete, VirtualMachine.Interaction.PowerOn, .PowerOff, .Reset and
// .CreateScreenshot, VirtualMachine.Config.AdvancedConfig (the tags),
// VirtualMachine.State.RevertToSnapshot, Resource.AssignVMToPool and
// Datastore.AllocateSpace. A missing one answers fail with its name.
//
// The package must not import govmomi's simulator (only tests and
// devlab/vcsim do) nor golang.org/x/crypto/ssh.
package vmware
