package vmware_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/devlab/vcsim/vcsimtest"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/messages"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
)

// TestInventoryCache: the folder (with the datacenter, pool and datastore)
// is resolved once, so renaming it does not disturb loads; when it is
// deleted the load answers retry and the next load resolves it again.
func TestInventoryCache(t *testing.T) {
	t.Parallel()
	sim := vcsimtest.Start(t, vcsim.Options{})
	admin := adminClient(t, sim)
	root, err := find.NewFinder(admin.Client).Folder(t.Context(), vcsim.Folder)
	if err != nil {
		t.Fatal(err)
	}
	folder, err := root.CreateFolder(t.Context(), "vcl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.VMwareConfig()
	cfg.Folder, cfg.Logger = vcsim.Folder+"/vcl", quiet
	p, err := vmware.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	load := func() error {
		_, err := p.Load(t.Context(), request("vm-1", "ubuntu-22.04", "", messages.ReloadAlways), &events{})
		return err
	}

	if err := wait(folder.Rename(t.Context(), "renamed")); err != nil {
		t.Fatal(err)
	}
	if err := load(); err != nil {
		t.Fatalf("load after a rename of the cached folder: %v", err)
	}
	vm, err := sim.VM(t.Context(), "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(vm.PowerOff(t.Context())); err != nil {
		t.Fatal(err)
	}
	if err := wait(folder.Destroy(t.Context())); err != nil {
		t.Fatal(err)
	}
	if err := load(); err == nil || outcome.IsPermanent(err) {
		t.Fatalf("load into a deleted folder: %v, want retry", err)
	}
	if _, err := root.CreateFolder(t.Context(), "vcl"); err != nil {
		t.Fatal(err)
	}
	if err := load(); err != nil {
		t.Fatalf("load after the folder came back: %v", err)
	}
}

func adminClient(t *testing.T, sim *vcsim.Sim) *govmomi.Client {
	t.Helper()
	u, err := url.Parse(sim.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(sim.User, sim.Password)
	c, err := govmomi.NewClient(t.Context(), u, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	return c
}

func wait(task *object.Task, err error) error {
	if err != nil {
		return err
	}
	return task.Wait(context.Background())
}
