package devlab_test

import (
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab/labtest"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/loaderworker/provisionertest"
	"github.com/loadpool/loadpool/messages"
	"golang.org/x/crypto/ssh"
)

// The simulated provisioner passes the provisioner conformance suite.
func TestSimConformance(t *testing.T) {
	provisionertest.Run(t, func(t *testing.T) provisionertest.Fixture {
		c, err := devlab.NewComputer(devlab.Config{Name: "sim-01", Shell: &devlab.Linux{}, Authorized: labtest.Signer(t).PublicKey(), BootDelay: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		sim := devlab.NewSim("ubuntu-24.04")
		sim.Add(c)
		state := func() string {
			if c.PoweredOn() {
				return "on"
			}
			return "off"
		}
		return provisionertest.Fixture{
			Provisioner: sim, Name: devlab.SimName,
			Computer:        messages.Computer{Name: "sim-01", Provisioner: devlab.SimName, Type: messages.TypeVirtualMachine, Address: c.Addr()},
			Image:           messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"},
			MissingImage:    messages.Image{Name: "no-such-image", OSFamily: "linux"},
			InjectTransient: func() { sim.FailNext("sim-01", 1) },
			Slow:            sim.SlowNext,
			PowerState:      state,
		}
	})
}

func TestSimLoadReimages(t *testing.T) {
	t.Parallel()
	c, err := devlab.NewComputer(devlab.Config{Name: "sim-02", Shell: &devlab.Linux{}, Authorized: labtest.Signer(t).PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	sim := devlab.NewSim("a", "b")
	sim.Add(c)
	var keys []string
	for _, img := range []string{"a", "b"} {
		if _, err := sim.Load(t.Context(), messages.Request{JobID: "j", Attempt: 1, Step: messages.StepLoad, Reload: messages.ReloadAlways,
			Computer: messages.Computer{Name: "sim-02", Provisioner: devlab.SimName, Type: messages.TypeVirtualMachine},
			Image:    messages.Image{Name: img, OSFamily: "linux"}}, nopProgress{}); err != nil {
			t.Fatal(err)
		}
		if got := c.Snapshot().Image; got != img {
			t.Fatalf("computer runs %q, want %q", got, img)
		}
		keys = append(keys, ssh.FingerprintSHA256(c.HostKey()))
	}
	if keys[0] == keys[1] {
		t.Fatal("a reimage must give the computer a new host key")
	}
}

type nopProgress struct{}

func (nopProgress) Event(string) {}
