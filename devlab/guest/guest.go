package guest

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed build.sh
var script []byte

// Image names in the images directory.
const (
	Base       = "debian12"
	Slow       = "debian12-slow"
	NoSSH      = "debian12-nossh"
	FailedUnit = "debian12-failedunit"
	// BrokenUnit is the unit that fails in FailedUnit.
	BrokenUnit = "loadpool-broken.service"
	// SlowSeconds is how long Slow holds multi-user.target.
	SlowSeconds = 25
)

// Hash is the build script's cache key.
func Hash() string {
	sum := sha256.Sum256(script)
	return hex.EncodeToString(sum[:])[:12]
}

// CacheDir is where images are cached: LOADPOOL_GUEST_CACHE, default
// /var/cache/loadpool/guest.
func CacheDir() string {
	if d := os.Getenv("LOADPOOL_GUEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/loadpool/guest"
}

// Cached returns the images directory when this script's image is built.
func Cached() (string, bool) {
	dir := filepath.Join(CacheDir(), Hash(), "images")
	_, err := os.Stat(filepath.Join(dir, Base, "disk.qcow2"))
	return dir, err == nil
}

// Build builds the image unless it is cached and returns the images
// directory. It needs root, mmdebstrap, e2fsprogs, qemu-utils and the
// Debian archive; build output goes to log.
func Build(ctx context.Context, log *os.File) (string, error) {
	if dir, ok := Cached(); ok {
		return dir, nil
	}
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return "", fmt.Errorf("guest image cache: %v (set LOADPOOL_GUEST_CACHE to a writable directory)", err)
	}
	f := filepath.Join(CacheDir(), "build-"+Hash()+".sh")
	if err := os.WriteFile(f, script, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "bash", f, CacheDir())
	cmd.Stderr = log
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building the guest image (%s %s): %v", f, CacheDir(), err)
	}
	return strings.TrimSpace(string(out)), nil
}

var (
	once      sync.Once
	imagesDir string
	setupErr  error
)

// Prepare starts libvirt's daemons when needed and builds the image
// unless it is cached (once per process), and returns the images
// directory. It needs root the first time.
func Prepare() (string, error) { return setup() }

// setup starts libvirt's daemons when needed and builds the image, once
// per process.
func setup() (string, error) {
	once.Do(func() {
		if setupErr = startDaemons(); setupErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		imagesDir, setupErr = Build(ctx, os.Stderr)
	})
	return imagesDir, setupErr
}

// Socket is libvirtd's system socket.
const Socket = "/var/run/libvirt/libvirt-sock"

// startDaemons starts virtlogd and libvirtd (daemonized) when libvirtd's
// socket does not answer; on a host with systemd they are usually running.
func startDaemons() error {
	kvmAsUdev()
	if answers(Socket) {
		return nil
	}
	for _, d := range []string{"virtlogd", "libvirtd"} {
		if out, err := exec.Command(d, "-d").CombinedOutput(); err != nil {
			return fmt.Errorf("starting %s -d: %v: %s (install libvirt-daemon-system: .ci/deps)", d, err, out)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !answers(Socket) {
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd started but %s does not answer within 20s", Socket)
		}
		time.Sleep(100 * time.Millisecond) // polling the daemon's socket, with a deadline
	}
	return nil
}

// kvmAsUdev gives /dev/kvm the mode Debian's udev rule gives it (root:kvm
// 0660) when no udev did. Without it libvirtd (9.0) finds KVM usable when
// it probes QEMU as root but not for QEMU's user, so it probes QEMU's
// capabilities again on every look-up: a domain start then took over a
// minute instead of 4 s.
func kvmAsUdev() {
	fi, err := os.Stat("/dev/kvm")
	if err != nil || fi.Mode().Perm()&0o060 == 0o060 || os.Geteuid() != 0 {
		return
	}
	if g, err := user.LookupGroup("kvm"); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil && os.Chown("/dev/kvm", 0, gid) == nil {
			_ = os.Chmod("/dev/kvm", 0o660)
		}
	}
}
