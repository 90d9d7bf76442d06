package vcsim_test

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/devlab/vcsim/vcsimtest"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/linux"
)

var quiet = slog.New(slog.DiscardHandler)

// TestEndToEnd: a job for a VMware computer goes through the coordinator,
// the real vmware provisioner against the simulator (clone or snapshot),
// the simulated VM's power-on booting a devlab computer, and the Linux OS
// worker waiting for it over SSH, to ready; after the reservation is
// released unused, the same job again is skipped by the loader (reload
// if-needed) and still ends ready.
func TestEndToEnd(t *testing.T) {
	log.SetOutput(io.Discard) // the simulator logs through the std logger
	for _, strategy := range []string{vmware.StrategyClone, vmware.StrategySnapshot} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			lab := newLab(t)
			first := lab.run(t, "job-1-"+strategy, strategy)
			// The reservation never used it: the next job may skip the load
			// (a used computer is always reloaded: invariant 8).
			poll.Until(t, "the computer to be released unused", func() bool {
				_, err := lab.client.ReleaseComputer(context.Background(), lab.computer.Name(), false)
				return err == nil
			})
			second := lab.run(t, "job-2-"+strategy, strategy)
			want := map[string]string{vmware.StrategyClone: "cloned ubuntu-24.04 to vmvc-01", vmware.StrategySnapshot: "reverted vmvc-01 to snapshot ubuntu-24.04"}[strategy]
			if load := first.Steps[0]; !strings.Contains(load.Detail, want) || load.Reloaded == nil || !*load.Reloaded {
				t.Fatalf("first load: %+v, want a reload that says %q", load, want)
			}
			if load := second.Steps[0]; !strings.Contains(load.Detail, "skipped") || load.Reloaded == nil || *load.Reloaded {
				t.Fatalf("second load: %+v, want it skipped", load)
			}
			if n := lab.boots.Load(); n != 1 {
				t.Fatalf("the devlab computer booted %d times, want once", n)
			}
		})
	}
}

// TestEndToEndHungBoot: the guest hangs on its first boot; the OS
// worker's wait runs out, it power-resets the computer through the vmware
// loader's power endpoint, the simulated VM's reset restarts the guest,
// and the job ends ready in its first attempt.
func TestEndToEndHungBoot(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	lab.computer.HangBoots(1)
	rec := lab.runWith(t, "job-hung", vmware.StrategyClone, map[string]string{"initial_delay": "0s", "poll": "50ms",
		"answer_timeout": "1s", "on_timeout": "power-reset", "reset_initial_delay": "0s", "reset_answer_timeout": "30s"})
	if rec.Attempt != 1 || lab.boots.Load() != 1 || lab.resets.Load() != 1 {
		t.Fatalf("attempt %d, boots %d, resets %d; want 1, 1, 1: %+v", rec.Attempt, lab.boots.Load(), lab.resets.Load(), rec)
	}
}

type lab struct {
	client   *coordinator.Client
	computer *devlab.Computer
	boots    atomic.Int32 // boots of a new image
	resets   atomic.Int32 // power-ons of the image it has
}

// power is what powering the simulated VM on does to the computer behind
// it: boot the tagged image, or restart when it already has it (a reset).
func (l *lab) power(img string) {
	if st := l.computer.Snapshot(); st.Image == img && st.Boots > 0 {
		if l.computer.Reset() == nil {
			l.resets.Add(1)
		}
		return
	}
	if l.computer.Boot(img) == nil {
		l.boots.Add(1)
	}
}

func newLab(t *testing.T) *lab {
	ctx := context.Background()
	srv := natstest.New(t)
	nc := natstest.Connect(t, srv.URL())
	subj := messages.Subjects{Prefix: "vcl"}
	signer := labtest.Signer(t)
	l := &lab{client: coordinator.NewClient(nc, subj)}
	var err error
	l.computer, err = devlab.NewComputer(devlab.Config{Name: "vmvc-01", Shell: &devlab.Linux{},
		Authorized: signer.PublicKey(), BootDelay: 20 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.computer.Close)

	var sim atomic.Pointer[vcsim.Sim]
	s := vcsimtest.Start(t, vcsim.Options{Images: []string{"ubuntu-24.04"}, PersistentVMs: []string{"vmvc-01"},
		OnPowerOn: func(vm string) {
			if s := sim.Load(); s != nil && vm == l.computer.Name() {
				tags, err := s.ExtraConfig(context.Background(), vm)
				if img := tags[vmware.TagImage]; err == nil && img != "" {
					l.power(img)
				}
			}
		}})
	sim.Store(s)
	cfg := s.VMwareConfig()
	cfg.Logger = quiet
	prov, err := vmware.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Close(context.Background()) })

	co, err := coordinator.New(nc, coordinator.Config{Subjects: subj, Logger: quiet, MinPoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, co.Start, co.Stop)
	lw, err := loaderworker.New(nc, loaderworker.Config{Subjects: subj, Name: "vmware", Logger: quiet, Settings: pool.Config{Grace: time.Second}}, prov)
	if err != nil {
		t.Fatal(err)
	}
	start(t, lw.Start, lw.Stop)
	ow, err := osworker.New(nc, osworker.Config{Subjects: subj, SSHUser: "root", Signer: signer, DialTimeout: 5 * time.Second, Logger: quiet, Settings: pool.Config{Grace: time.Second}}, linux.Module{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, ow.Start, ow.Stop)
	return l
}

func start(t *testing.T, start func(context.Context) error, stop func()) {
	t.Helper()
	if err := start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

// run submits a job for the computer and waits (at most a minute) for it
// to end ready.
func (l *lab) run(t *testing.T, id, strategy string) messages.JobRecord {
	t.Helper()
	return l.runWith(t, id, strategy, map[string]string{"initial_delay": "0s", "poll": "50ms"})
}

func (l *lab) runWith(t *testing.T, id, strategy string, profile map[string]string) messages.JobRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fast, _ := json.Marshal(profile)
	spec := messages.JobSpec{ID: id,
		Computer: messages.Computer{Name: l.computer.Name(), Provisioner: "vmware", Type: messages.TypeVirtualMachine, Address: l.computer.Addr()},
		Image:    messages.Image{Name: "ubuntu-24.04", OSFamily: "linux", OSVersion: "24.04", Strategy: strategy, WaitProfile: fast}}
	if _, err := l.client.AddComputer(ctx, spec.Computer); err != nil {
		t.Fatal(err)
	}
	if _, err := l.client.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	for {
		rec, err := l.client.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if messages.Terminal(rec.State) {
			if rec.State != messages.StateReady || len(rec.Steps) < 2 {
				t.Fatalf("job %s ended %s: %+v", id, rec.State, rec)
			}
			return rec
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s did not end within a minute: %+v", id, rec)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
