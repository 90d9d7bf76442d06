package vcsim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/loadpool/loadpool/loaderworker/vmware"
)

// SampleImages are the templates a Sim offers when Options.Images is nil.
var SampleImages = []string{"ubuntu-22.04", "win10-22h2"}

// Inventory paths of the trimmed model.
const (
	Datacenter   = "DC0"
	Folder       = "/DC0/vm"
	ResourcePool = "/DC0/host/DC0_H0/Resources"
	Datastore    = "LocalDS_0"
)

// Options configure a Sim. The zero value is a usable simulator.
type Options struct {
	// User and Password the simulator accepts (default "loadpool" and
	// "vcsim-secret"); any other login is refused with InvalidLogin.
	User, Password string
	// Images get a template each, with a snapshot "base" (nil means
	// SampleImages; use an empty non-nil slice for none).
	Images []string
	// PersistentVMs are powered-off VMs with one snapshot per image, for
	// the snapshot strategy.
	PersistentVMs []string
	// PlainHTTP serves http instead of https with a self-signed
	// certificate.
	PlainHTTP bool
	// OnPowerOn is called with a VM's name when it powers on or is reset.
	OnPowerOn func(vm string)
	// CallDelay slows the SOAP calls of these methods (e.g.
	// "CloneVM_Task": 2*time.Second): the call itself hangs, as against an
	// overloaded vCenter.
	CallDelay map[string]time.Duration
	// Screenshots makes CreateScreenshot_Task work (the simulator lacks
	// it): it writes a PNG next to the VM's files and answers its path.
	Screenshots bool
}

// Sim is a running simulator.
type Sim struct {
	Model  *simulator.Model
	Server *simulator.Server
	// URL of the SDK endpoint, without credentials.
	URL            string
	User, Password string
	Images         []string

	admin *govmomi.Client
	hooks *hooks
}

// createMu serializes Model.Create, which races on a package global.
var createMu sync.Mutex

// Start builds the inventory and serves it on a random loopback port.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	opts = withDefaults(opts)
	m := simulator.VPX()
	m.Cluster, m.ClusterHost, m.Portgroup, m.Machine = 0, 0, 0, 0
	if len(opts.CallDelay) > 0 {
		m.DelayConfig.MethodDelay = map[string]int{}
		for k, d := range opts.CallDelay {
			m.DelayConfig.MethodDelay[k] = int(d / time.Millisecond)
		}
	}
	createMu.Lock()
	err := m.Create()
	createMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("vcsim: creating the model: %w", err)
	}
	m.Service.Listen = &url.URL{User: url.UserPassword(opts.User, opts.Password)}
	if !opts.PlainHTTP {
		m.Service.TLS = new(tls.Config)
	}
	s := &Sim{Model: m, Server: newServer(m), User: opts.User, Password: opts.Password, Images: opts.Images}
	u := *s.Server.URL
	u.User = nil
	s.URL = u.String()
	s.hooks = installHooks(m, opts)
	if err := s.populate(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func withDefaults(o Options) Options {
	if o.User == "" {
		o.User = "loadpool"
	}
	if o.Password == "" {
		o.Password = "vcsim-secret"
	}
	if o.Images == nil {
		o.Images = SampleImages
	}
	return o
}

// VMwareConfig is a provisioner config that points at this simulator.
func (s *Sim) VMwareConfig() vmware.Config {
	return vmware.Config{URL: s.URL, User: s.User, Password: s.Password, Insecure: true,
		Datacenter: Datacenter, Folder: Folder, ResourcePool: ResourcePool, Datastore: Datastore}
}

// Close stops the server, removes the datastore directories and waits
// for running OnPowerOn calls. It is idempotent.
func (s *Sim) Close() {
	if s.admin != nil {
		_ = s.admin.Logout(context.Background())
		s.admin = nil
	}
	if s.Server != nil {
		s.Server.Close()
		s.Server = nil
		s.Model.Remove()
	}
	s.hooks.wait()
}

// populate logs in as the admin and creates the templates and VMs.
func (s *Sim) populate(ctx context.Context, opts Options) error {
	u, err := url.Parse(s.URL)
	if err != nil {
		return err
	}
	u.User = url.UserPassword(s.User, s.Password)
	if s.admin, err = govmomi.NewClient(ctx, u, true); err != nil {
		return fmt.Errorf("vcsim: admin login: %w", err)
	}
	f := find.NewFinder(s.admin.Client, true)
	dc, err := f.Datacenter(ctx, Datacenter)
	if err != nil {
		return err
	}
	f.SetDatacenter(dc)
	pool, err := f.ResourcePool(ctx, ResourcePool)
	if err != nil {
		return err
	}
	folder, err := f.Folder(ctx, Folder)
	if err != nil {
		return err
	}
	for _, img := range opts.Images {
		if err := s.createTemplate(ctx, folder, pool, img); err != nil {
			return err
		}
	}
	for _, name := range opts.PersistentVMs {
		if _, err := s.CreatePersistentVM(ctx, name, opts.Images...); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) createTemplate(ctx context.Context, folder *object.Folder, pool *object.ResourcePool, name string) error {
	vm, err := createVM(ctx, folder, pool, name)
	if err != nil {
		return err
	}
	if err := wait(ctx)(vm.CreateSnapshot(ctx, "base", "clean install", false, false)); err != nil {
		return fmt.Errorf("vcsim: snapshot of template %s: %w", name, err)
	}
	return vm.MarkAsTemplate(ctx)
}

// CreatePersistentVM adds a powered-off VM with one snapshot per name in
// snapshots, for the snapshot strategy.
func (s *Sim) CreatePersistentVM(ctx context.Context, name string, snapshots ...string) (*object.VirtualMachine, error) {
	f, err := s.finder(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := f.ResourcePool(ctx, ResourcePool)
	if err != nil {
		return nil, err
	}
	folder, err := f.Folder(ctx, Folder)
	if err != nil {
		return nil, err
	}
	vm, err := createVM(ctx, folder, pool, name)
	if err != nil {
		return nil, err
	}
	for _, snap := range snapshots {
		if err := wait(ctx)(vm.CreateSnapshot(ctx, snap, "image "+snap, false, false)); err != nil {
			return nil, fmt.Errorf("vcsim: snapshot %s of %s: %w", snap, name, err)
		}
	}
	return vm, nil
}

func createVM(ctx context.Context, folder *object.Folder, pool *object.ResourcePool, name string) (*object.VirtualMachine, error) {
	spec := types.VirtualMachineConfigSpec{Name: name, GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest64),
		NumCPUs: 1, MemoryMB: 64, Files: &types.VirtualMachineFileInfo{VmPathName: "[" + Datastore + "]"}}
	task, err := folder.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		return nil, fmt.Errorf("vcsim: creating VM %s: %w", name, err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return nil, fmt.Errorf("vcsim: creating VM %s: %w", name, err)
	}
	return object.NewVirtualMachine(folder.Client(), info.Result.(types.ManagedObjectReference)), nil
}

// wait returns a function that waits for a task that was started with
// its error.
func wait(ctx context.Context) func(*object.Task, error) error {
	return func(task *object.Task, err error) error {
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	}
}

func (s *Sim) finder(ctx context.Context) (*find.Finder, error) {
	if s.admin == nil {
		return nil, errors.New("vcsim: the simulator is closed")
	}
	f := find.NewFinder(s.admin.Client, true)
	dc, err := f.Datacenter(ctx, Datacenter)
	if err != nil {
		return nil, err
	}
	return f.SetDatacenter(dc), nil
}

// serverMu serializes simulator.Service.NewServer: it rewrites the URIs
// of the model's settings, which govmomi v0.56.0 shares between models
// (a data race when tests start simulators in parallel).
var serverMu sync.Mutex

func newServer(m *simulator.Model) *simulator.Server {
	serverMu.Lock()
	defer serverMu.Unlock()
	return m.Service.NewServer()
}
