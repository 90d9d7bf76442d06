package libvirt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/outcome"
)

// Attribute names a computer's enrolment may set (messages.Computer.Attributes).
const (
	AttrDomain     = "domain"       // libvirt domain name (default: the computer's name)
	AttrMemoryMiB  = "memory_mib"   // guest memory (default 512)
	AttrVCPUs      = "vcpus"        // virtual CPUs (default 1)
	AttrSSHPort    = "ssh_port"     // 127.0.0.1:<port> forwarded to the guest's port 22 (default: none)
	AttrTBCacheMiB = "tb_cache_mib" // TCG translation cache, domain type qemu only (default 128)
)

// machine is one computer's settings, from its enrolment.
type machine struct {
	computer string
	domain   string
	memory   int
	vcpus    int
	sshPort  int // 0: no port forward
	tbCache  int
}

var domainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// machineOf reads c's attributes; a bad one is a *settingError.
func machineOf(c messages.Computer) (machine, error) {
	m := machine{computer: c.Name, domain: c.Name, memory: DefaultMemoryMiB, vcpus: DefaultVCPUs, tbCache: DefaultTBCacheMiB}
	if d := c.Attributes[AttrDomain]; d != "" {
		m.domain = d
	}
	if !domainName.MatchString(m.domain) {
		return m, &settingError{computer: c.Name, attr: AttrDomain, value: m.domain, want: "a domain name of letters, digits, '.', '_' and '-'"}
	}
	for _, a := range []struct {
		name     string
		dst      *int
		min, max int
		want     string
	}{
		{AttrMemoryMiB, &m.memory, 128, 1 << 20, "a whole number of MiB, at least 128"},
		{AttrVCPUs, &m.vcpus, 1, 256, "a whole number of CPUs, 1 to 256"},
		{AttrSSHPort, &m.sshPort, 1024, 65535, "a TCP port 1024 to 65535 on 127.0.0.1"},
		{AttrTBCacheMiB, &m.tbCache, 16, 4096, "a whole number of MiB, 16 to 4096"},
	} {
		v, ok := c.Attributes[a.name]
		if !ok || v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < a.min || n > a.max {
			return m, &settingError{computer: c.Name, attr: a.name, value: v, want: a.want}
		}
		*a.dst = n
	}
	return m, nil
}

// image is an image's files in the images directory.
type image struct {
	name    string
	dir     string
	disk    string // base disk (qcow2), resolved through symlinks
	kernel  string // "" boots the disk's bootloader
	initrd  string
	cmdline string
}

const defaultCmdline = "root=/dev/vda rw console=ttyS0"

// findImage looks name up in the images directory; a missing image or a
// broken one is an *imageError.
func findImage(images, name string) (image, error) {
	img := image{name: name, dir: filepath.Join(images, name)}
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return img, &imageError{image: name, dir: images, why: "is not a usable directory name"}
	}
	disk, err := filepath.EvalSymlinks(filepath.Join(img.dir, "disk.qcow2"))
	if err != nil {
		return img, &imageError{image: name, dir: images, why: "has no disk.qcow2", err: err}
	}
	img.disk = disk
	k, kerr := filepath.EvalSymlinks(filepath.Join(img.dir, "vmlinuz"))
	i, ierr := filepath.EvalSymlinks(filepath.Join(img.dir, "initrd.img"))
	switch {
	case kerr == nil && ierr == nil:
		img.kernel, img.initrd = k, i
	case kerr == nil || ierr == nil:
		return img, &imageError{image: name, dir: images, why: "has only one of vmlinuz and initrd.img (give both, or neither to boot the disk's bootloader)"}
	}
	img.cmdline = defaultCmdline
	if b, err := os.ReadFile(filepath.Join(img.dir, "cmdline")); err == nil {
		img.cmdline = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return img, &imageError{image: name, dir: images, why: "has an unreadable cmdline file", err: err}
	}
	return img, nil
}

// imageError: the job's image is not in the images directory (or broken).
type imageError struct {
	image, dir, why string
	err             error
}

func (e *imageError) Error() string {
	return fmt.Sprintf("image %q in LOADPOOL_LIBVIRT_IMAGES=%s %s: put its disk.qcow2 (and vmlinuz, initrd.img, cmdline for a direct kernel boot) in %s, or fix the job's image name",
		e.image, e.dir, e.why, filepath.Join(e.dir, e.image))
}
func (e *imageError) Unwrap() error  { return e.err }
func (e *imageError) mine()          {}
func (e *imageError) Reason() string { return outcome.ReasonNotFound }

// settingError: a computer's enrolment attribute is unusable.
type settingError struct {
	computer, attr, value, want string
}

func (e *settingError) Error() string {
	return fmt.Sprintf("computer %s: attribute %s=%q is not %s: fix the computer's enrolment", e.computer, e.attr, e.value, e.want)
}
func (e *settingError) mine()          {}
func (e *settingError) Reason() string { return outcome.ReasonConfig }
