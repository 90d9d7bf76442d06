//go:build dev

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/devlab/xcatemu"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/loaderworker/xcat"
	"github.com/loadpool/loadpool/messages"
)

// The demo's simulated back ends: govmomi's vCenter simulator behind the
// real vmware provisioner, and the xCAT REST emulator behind the real xcat
// provisioner. Powering a simulated VM on, or a node reaching "booted",
// boots the devlab computer behind it, so the OS worker really waits.

const (
	demoLinuxImage   = "ubuntu-24.04"
	demoWindowsImage = "win7-sp1-v3"
	demoXCATImage    = "rocky9.4-x86_64-install-compute"
	// demoSnapshotVM is a persistent VM with a snapshot per image: the
	// snapshot strategy reverts it instead of cloning.
	demoSnapshotVM = "vmsnap-01"
)

// startVMware starts the simulator, a devlab computer per VM and a vmware
// loader against it.
func (d *devLab) startVMware(ctx context.Context, cfg Config, log *slog.Logger) error {
	var sim *vcsim.Sim
	onPower := func(vm string) {
		c := d.computer(vm)
		if c == nil || sim == nil {
			return
		}
		tags, err := sim.ExtraConfig(context.Background(), vm)
		img := tags["loadpool.image"]
		if err != nil || img == "" {
			return
		}
		if c.Snapshot().Image == img && c.PoweredOn() {
			_ = c.Reset()
			return
		}
		_ = c.Boot(img)
	}
	sim, err := vcsim.Start(ctx, vcsim.Options{Images: []string{demoLinuxImage, demoWindowsImage}, PersistentVMs: []string{demoSnapshotVM},
		OnPowerOn: onPower, Screenshots: true})
	if err != nil {
		return fmt.Errorf("vCenter simulator: %w", err)
	}
	d.cleanups = append(d.cleanups, sim.Close)
	vc := sim.VMwareConfig()
	vc.Logger = log.With("provisioner", "vmware")
	prov, err := vmware.New(ctx, vc)
	if err != nil {
		return fmt.Errorf("vmware provisioner: %w", err)
	}
	log.Info("vCenter simulator started (SIMULATED vSphere)", "url", sim.URL, "templates", sim.Images)
	return d.startLoader(ctx, cfg, log, "vmware", prov)
}

// startXCAT starts the emulator with one blade per name and an xcat loader.
func (d *devLab) startXCAT(ctx context.Context, cfg Config, log *slog.Logger, names ...string) error {
	emu, err := xcatemu.Start(xcatemu.Config{User: "wsuser", Password: "demo-secret", TokenLifetime: time.Hour,
		Timing: xcatemu.Timing{PoweringOn: time.Second, Installing: 3 * time.Second, Booting: time.Second, Postbooting: time.Second},
		OnBooted: func(node, img string) {
			if c := d.computer(node); c != nil {
				_ = c.Boot(img)
			}
		},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("xCAT emulator: %w", err)
	}
	d.cleanups = append(d.cleanups, emu.Close)
	emu.AddOSImage(demoXCATImage, map[string]string{"provmethod": "install", "profile": "compute", "osvers": "rocky9.4", "osarch": "x86_64", "imagetype": "linux"})
	for i, n := range names {
		emu.AddNode(n, map[string]string{"mac": fmt.Sprintf("52:54:00:aa:bb:%02x", i+1), "groups": "compute", "mgt": "ipmi"})
	}
	prov, err := xcat.New(xcat.Config{URL: emu.URL(), User: "wsuser", Password: "demo-secret", Insecure: true,
		Poll: 500 * time.Millisecond, Logger: log.With("provisioner", "xcat")})
	if err != nil {
		return fmt.Errorf("xcat provisioner: %w", err)
	}
	log.Info("xCAT REST emulator started (SIMULATED xCAT)", "url", emu.URL(), "nodes", names)
	return d.startLoader(ctx, cfg, log, xcat.Name, prov)
}

func (d *devLab) backendSamples() []sample {
	var out []sample
	if d.computer("vmvc-01") != nil {
		out = append(out, sample{spec: messages.JobSpec{ID: "demo-vmware",
			Computer: messages.Computer{Name: "vmvc-01"},
			Image:    messages.Image{Name: demoLinuxImage, OSFamily: "linux", OSVersion: "24.04"}},
			want: messages.StateReady, what: "VMware: clone the template in vCenter (simulated), power on, OS wait, ready"})
	}
	if d.computer(demoSnapshotVM) != nil {
		out = append(out, sample{spec: messages.JobSpec{ID: "demo-snapshot",
			Computer: messages.Computer{Name: demoSnapshotVM},
			Image:    messages.Image{Name: demoLinuxImage, OSFamily: "linux", OSVersion: "24.04", Strategy: "snapshot"}},
			want: messages.StateReady, what: "VMware snapshot strategy: revert the persistent VM to the image's snapshot, power on, OS wait, ready"})
	}
	if d.computer("blade-01") != nil {
		out = append(out, sample{spec: messages.JobSpec{ID: "demo-xcat",
			Computer: messages.Computer{Name: "blade-01"},
			Image:    messages.Image{Name: demoXCATImage, OSFamily: "linux", OSVersion: "9", ReloadMinutes: 10}},
			want: messages.StateReady, what: "xCAT: bootstate, power boot, installing, booting, booted (emulated), OS wait, ready"})
	}
	return out
}
