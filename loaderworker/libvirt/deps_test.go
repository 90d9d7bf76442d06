package libvirt_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Invariant 7 with libvirt in the loaders: the provisioner and the libvirt
// client it shares with the qga control (package libvirtd) link go-libvirt
// (loadpool's trimmed copy, third_party/go-libvirt) and no SSH client. The
// qga control itself lives under osworker/control, beside SSH.
func TestNoSSHThroughLibvirt(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/loadpool/loadpool/loaderworker/...",
		"github.com/loadpool/loadpool/libvirtd").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v: %s", err, out)
	}
	deps := string(out)
	if !strings.Contains(deps, "github.com/digitalocean/go-libvirt\n") || !strings.Contains(deps, "github.com/loadpool/loadpool/loaderworker/libvirt\n") {
		t.Fatalf("go list output does not cover the libvirt provisioner: %.300s", deps)
	}
	for _, bad := range []string{"golang.org/x/crypto/ssh", "go-libvirt/socket/dialers/gossh"} {
		if strings.Contains(deps, bad) {
			t.Fatalf("the loaders or the libvirt client depend on %s (upstream go-libvirt's SSH dialer? see third_party/go-libvirt/README.loadpool.md)", bad)
		}
	}
}
