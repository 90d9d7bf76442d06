package guest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/loadpool/loadpool/libvirtd"
)

// Require skips t when the real lab cannot run here and it is not root
// (missing tools), else makes sure libvirtd runs and the image is built,
// failing t when that is impossible. It returns the images directory.
func Require(t testing.TB) string {
	t.Helper()
	var missing []string
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "libvirtd", "virtlogd", "mmdebstrap", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	_, cached := Cached()
	if os.Geteuid() != 0 {
		if len(missing) > 0 || !cached || !answers(Socket) {
			t.Skipf("the real lab needs root (or libvirtd running and the image built: make guest-image); missing tools: %v; image cached: %v", missing, cached)
		}
	} else if len(missing) > 0 && !(cached && answers(Socket)) {
		t.Fatalf("the real lab's tools are missing: %v: run .ci/deps (apt-get install --no-install-recommends qemu-system-x86 qemu-utils mmdebstrap e2fsprogs libvirt-daemon-system libvirt-clients)", missing)
	}
	dir, err := setup()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Lab is one test's share of the real lab.
type Lab struct {
	// Images is the images directory; StateDir this test's directory for
	// domain files; ID a random suffix for domain names.
	Images, StateDir, ID string
	t                    testing.TB
	lv                   *libvirtd.Client
}

// NewLab calls Require and makes a state directory QEMU's user can reach.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	images := Require(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	l := &Lab{Images: images, ID: hex.EncodeToString(b), t: t}
	dir, err := os.MkdirTemp("/var/tmp", "loadpool-lab-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l.StateDir = dir
	if l.lv, err = libvirtd.New(libvirtd.DefaultURI); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return l
}

// Domain returns a domain name unique to this lab (prefix-ID) and
// destroys and undefines that domain when t (the lab's test or one of its
// subtests) ends.
func (l *Lab) Domain(t testing.TB, prefix string) string {
	name := prefix + "-" + l.ID
	t.Cleanup(func() { l.Remove(name) })
	return name
}

// Remove destroys and undefines a domain if it exists.
func (l *Lab) Remove(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = l.lv.Do(ctx, func(c *golibvirt.Libvirt) error {
		dom, err := c.DomainLookupByName(name)
		if err != nil {
			return err
		}
		_ = c.DomainDestroy(dom)
		return c.DomainUndefineFlags(dom, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram)
	})
}

// State is a domain's power state as the provisioner words it: "on",
// "off", or "absent".
func (l *Lab) State(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	state := "absent"
	err := l.lv.Do(ctx, func(c *golibvirt.Libvirt) error {
		dom, err := c.DomainLookupByName(name)
		if libvirtd.IsNoDomain(err) {
			return nil
		}
		if err != nil {
			return err
		}
		st, _, err := c.DomainGetState(dom, 0)
		state = "on"
		if s := golibvirt.DomainState(st); s == golibvirt.DomainShutoff || s == golibvirt.DomainCrashed {
			state = "off"
		}
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return state
}

// Domains lists the names of every defined domain (active or not).
func (l *Lab) Domains() []string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var names []string
	err := l.lv.Do(ctx, func(c *golibvirt.Libvirt) error {
		doms, _, err := c.ConnectListAllDomains(1, 0)
		for _, d := range doms {
			names = append(names, d.Name)
		}
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return names
}

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Console is the serial console log of a domain of this lab (the
// provisioner's layout: StateDir/<domain>/console.log).
func (l *Lab) Console(name string) string {
	b, _ := os.ReadFile(filepath.Join(l.StateDir, name, "console.log"))
	return string(b)
}

func answers(sock string) bool {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// XML is a domain's live definition.
func (l *Lab) XML(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var x string
	err := l.lv.Do(ctx, func(c *golibvirt.Libvirt) error {
		dom, err := c.DomainLookupByName(name)
		if err != nil {
			return err
		}
		x, err = c.DomainGetXMLDesc(dom, 0)
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return x
}
