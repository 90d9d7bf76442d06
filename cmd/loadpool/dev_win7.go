//go:build dev

package main

import (
	"encoding/json"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/windows"
	"golang.org/x/crypto/ssh"
)

// The demo's Windows 7 Sysprep computer: a VM in the simulated vCenter
// whose simulated Windows runs mini-setup for demoSetupFor after SSH
// answers. Its image scales the Windows 7 Sysprep profile down (60 s /
// 30 min in production) so the demo takes seconds, through the same
// image.wait_profile override an operator would use.
const (
	demoWindowsVM = "win7-01"
	demoSetupFor  = 6 * time.Second
)

func (d *devLab) addWindowsComputer(o devOptions, key ssh.PublicKey) error {
	c, err := devlab.NewWindowsComputer(devlab.Config{Name: demoWindowsVM, Authorized: key, BootDelay: o.bootDelay, Logger: quietLogger()},
		&devlab.Windows{Version: "7", Sysprep: true, SetupFor: demoSetupFor})
	if err != nil {
		return err
	}
	d.computers = append(d.computers, c)
	d.enrolled = append(d.enrolled, messages.Computer{Name: demoWindowsVM, Provisioner: "vmware", Type: messages.TypeVirtualMachine, Address: c.Addr()})
	return nil
}

func (d *devLab) windowsSamples() []sample {
	if d.computer(demoWindowsVM) == nil {
		return nil
	}
	profile, _ := json.Marshal(map[string]string{"initial_delay": "2s", "poll": "1s", "answer_timeout": "2m", "ready_timeout": "2m"})
	return []sample{{spec: messages.JobSpec{ID: "demo-win7",
		Computer: messages.Computer{Name: demoWindowsVM},
		Image: messages.Image{Name: demoWindowsImage, OSFamily: windows.Family, OSVersion: "7", Sysprep: true, ReloadMinutes: 30,
			WaitProfile: profile}},
		want: messages.StateReady,
		what: "Windows 7 Sysprep on VMware: clone, power on, wait out mini-setup (ImageState), configure SSH/RDP/description"}}
}
