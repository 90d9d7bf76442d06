package vmware_test

import (
	"context"
	"fmt"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/messages"
)

type printEvents struct{}

func (printEvents) Event(m string) { fmt.Println("event:", m) }

// Load an image onto a computer against the simulator, then ask for it
// again with reload if-needed.
func ExampleProvisioner_Load() {
	ctx := context.Background()
	sim, err := vcsim.Start(ctx, vcsim.Options{})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	p, err := vmware.New(ctx, sim.VMwareConfig()) // LOADPOOL_VSPHERE_* in production
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)
	req := messages.Request{JobID: "res-1042", Attempt: 1, Step: messages.StepLoad, Reload: messages.ReloadIfNeeded,
		Computer: messages.Computer{Name: "vm-017", Provisioner: "vmware", Type: messages.TypeVirtualMachine},
		Image:    messages.Image{Name: "ubuntu-22.04", OSFamily: "linux"}}
	for range 2 {
		rep, err := p.Load(ctx, req, printEvents{})
		fmt.Println(rep.Reloaded, rep.Detail, err)
	}
	// Output:
	// event: cloning ubuntu-22.04 to vm-017 at /DC0/vm/vm-017 (linked clone)
	// event: powering on vm-017
	// true cloned ubuntu-22.04 to vm-017 (linked clone) and powered it on <nil>
	// false skipped the reload: vm-017 already runs ubuntu-22.04 (loaded by job res-1042) and is powered on <nil>
}
