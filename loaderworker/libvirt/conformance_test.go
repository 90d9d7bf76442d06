package libvirt_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab/guest"
	"github.com/loadpool/loadpool/loaderworker/libvirt"
	"github.com/loadpool/loadpool/loaderworker/provisionertest"
	"github.com/loadpool/loadpool/messages"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is a provisioner on the real libvirtd, through a fault-injecting
// proxy socket, on the lab's image.
type rig struct {
	lab   *guest.Lab
	proxy *guest.Proxy
	p     *libvirt.Provisioner
}

func newRig(t *testing.T, mod ...func(*libvirt.Config)) *rig {
	lab := guest.NewLab(t)
	r := &rig{lab: lab, proxy: guest.NewProxy(t)}
	cfg := libvirt.Config{URI: r.proxy.URI(), DomainType: libvirt.TypeQEMU, Images: lab.Images,
		StateDir: lab.StateDir, CallTimeout: time.Minute, Logger: quiet}
	for _, m := range mod {
		m(&cfg)
	}
	p, err := libvirt.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

// computer is an enrolled computer with small settings and a domain of
// this lab.
func (r *rig) computer(t *testing.T, prefix string) messages.Computer {
	name := r.lab.Domain(t, prefix)
	port := guest.FreePort(t)
	return messages.Computer{Name: name, Provisioner: libvirt.Name, Type: messages.TypeVirtualMachine,
		Address:    "127.0.0.1:" + strconv.Itoa(port),
		Attributes: map[string]string{libvirt.AttrMemoryMiB: "384", libvirt.AttrSSHPort: strconv.Itoa(port), libvirt.AttrTBCacheMiB: "64"}}
}

// TestConformance runs the provisioner suite through the loader runtime
// and NATS against the real libvirtd: every load really defines and
// starts a domain.
func TestConformance(t *testing.T) {
	provisionertest.Run(t, func(t *testing.T) provisionertest.Fixture {
		r := newRig(t)
		c := r.computer(t, "conf")
		return provisionertest.Fixture{
			Provisioner:     r.p,
			Name:            libvirt.Name,
			Computer:        c,
			Image:           messages.Image{Name: guest.Base, OSFamily: "linux"},
			MissingImage:    messages.Image{Name: "no-such-image", OSFamily: "linux"},
			InjectTransient: func() { r.proxy.DropNext(1) },
			Slow:            r.proxy.DelayNext,
			PowerState:      func() string { return r.lab.State(c.Name) },
		}
	})
}
