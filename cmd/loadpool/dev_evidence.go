//go:build dev

package main

import (
	"encoding/json"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"golang.org/x/crypto/ssh"
)

// The demo's hung boot: a simulated VM whose first boot hangs with SSH
// closed. Its image's profile gives the boot a few seconds, then the
// Linux module power-resets it through the loader with evidence (the
// simulated console's screenshot and serial log go into the evidence
// bucket) and waits once more; the reset boots normally.
const demoHungVM = "vm-hung"

func (d *devLab) addHungComputer(o devOptions, key ssh.PublicKey) error {
	c, err := devlab.NewComputer(devlab.Config{Name: demoHungVM, Shell: &devlab.Linux{Starting: time.Second},
		Authorized: key, BootDelay: o.bootDelay, Logger: quietLogger()})
	if err != nil {
		return err
	}
	d.computers = append(d.computers, c)
	d.enrolled = append(d.enrolled, messages.Computer{Name: demoHungVM, Provisioner: devlab.SimName, Type: messages.TypeVirtualMachine, Address: c.Addr()})
	d.sim.Add(c)
	return nil
}

func (d *devLab) evidenceSamples() []sample {
	c := d.computer(demoHungVM)
	if c == nil {
		return nil
	}
	profile, _ := json.Marshal(map[string]string{"initial_delay": "1s", "poll": "1s", "answer_timeout": "4s",
		"on_timeout": "power-reset", "reset_initial_delay": "1s", "reset_answer_timeout": "1m"})
	return []sample{{spec: messages.JobSpec{ID: "demo-hung",
		Computer: messages.Computer{Name: demoHungVM},
		Image:    messages.Image{Name: "rocky-9", OSFamily: "linux", OSVersion: "9", WaitProfile: profile}},
		want: messages.StateReady,
		what: "a boot that hangs: the wait runs out, power reset with evidence (screenshot in the object store), ready",
		prep: func() { c.HangBoots(1) }}}
}
