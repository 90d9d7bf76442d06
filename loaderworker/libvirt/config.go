package libvirt

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loadpool/loadpool/libvirtd"
)

// Name is the provisioner token (computer.provisioner "libvirt").
const Name = "libvirt"

// Domain types.
const (
	TypeKVM  = "kvm"  // hardware virtualisation
	TypeQEMU = "qemu" // TCG emulation (hosts where KVM cannot boot guests)
)

// Defaults of Config and of a computer's attributes.
const (
	DefaultStateDir    = "/var/lib/loadpool/libvirt"
	DefaultCallTimeout = 2 * time.Minute
	DefaultMemoryMiB   = 512
	DefaultVCPUs       = 1
	DefaultTBCacheMiB  = 128
)

// Config says where libvirtd, the images and the computers' disks are.
type Config struct {
	// URI of libvirtd (default qemu:///system). The loader must run on
	// the libvirt host: images and overlays are local paths.
	URI string
	// DomainType is "kvm" or "qemu" (default kvm).
	DomainType string
	// Images is the directory of images: Images/<image name>/disk.qcow2,
	// optionally vmlinuz + initrd.img (direct kernel boot) and cmdline.
	Images string
	// StateDir holds one directory per domain (overlay, console log,
	// screen dumps); default /var/lib/loadpool/libvirt.
	StateDir string
	// AuthorizedKeys (authorized_keys lines) go to every guest through
	// fw_cfg: the OS workers' public keys.
	AuthorizedKeys string
	// QEMUImg is the qemu-img binary (default "qemu-img" on PATH).
	QEMUImg string
	// QEMUUser owns each domain's directory so QEMU can write screen
	// dumps there (default libvirt-qemu; ignored when no such user).
	QEMUUser string
	// CallTimeout bounds one operation on libvirtd (default 2m).
	CallTimeout time.Duration
	Logger      *slog.Logger
}

// Env is the environment of a libvirt loader (prefix LOADPOOL_).
type Env struct {
	URI        string `envconfig:"LIBVIRT_URI"`
	DomainType string `envconfig:"LIBVIRT_DOMAIN_TYPE"`
	Images     string `envconfig:"LIBVIRT_IMAGES"`
	StateDir   string `envconfig:"LIBVIRT_STATE_DIR"`
	// AuthorizedKeys is a file of authorized_keys lines.
	AuthorizedKeys string        `envconfig:"LIBVIRT_AUTHORIZED_KEYS"`
	CallTimeout    time.Duration `envconfig:"LIBVIRT_CALL_TIMEOUT"`
	// QEMUImg is the qemu-img binary (default: qemu-img on PATH).
	QEMUImg string `envconfig:"LIBVIRT_QEMU_IMG"`
}

// Config maps the environment onto a Config; the authorized keys file is
// read here.
func (e Env) Config(log *slog.Logger) (Config, error) {
	c := Config{URI: e.URI, DomainType: e.DomainType, Images: e.Images, StateDir: e.StateDir,
		CallTimeout: e.CallTimeout, QEMUImg: e.QEMUImg, Logger: log}
	if e.AuthorizedKeys != "" {
		b, err := os.ReadFile(e.AuthorizedKeys)
		if err != nil {
			return c, fmt.Errorf("libvirt: LOADPOOL_LIBVIRT_AUTHORIZED_KEYS: %v", err)
		}
		c.AuthorizedKeys = string(b)
	}
	return c, nil
}

func (c Config) withDefaults() Config {
	if c.URI == "" {
		c.URI = libvirtd.DefaultURI
	}
	if c.DomainType == "" {
		c.DomainType = TypeKVM
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.QEMUImg == "" {
		c.QEMUImg = "qemu-img"
	}
	if c.QEMUUser == "" {
		c.QEMUUser = "libvirt-qemu"
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate checks a defaulted config; the error names the setting.
func (c Config) validate() error {
	if c.DomainType != TypeKVM && c.DomainType != TypeQEMU {
		return fmt.Errorf("libvirt: LOADPOOL_LIBVIRT_DOMAIN_TYPE must be %q or %q, not %q", TypeKVM, TypeQEMU, c.DomainType)
	}
	if c.Images == "" {
		return fmt.Errorf("libvirt: LOADPOOL_LIBVIRT_IMAGES is required: the directory with one subdirectory per image (disk.qcow2, vmlinuz, initrd.img)")
	}
	for _, d := range []struct{ setting, dir string }{{"LOADPOOL_LIBVIRT_IMAGES", c.Images}, {"LOADPOOL_LIBVIRT_STATE_DIR", c.StateDir}} {
		if !filepath.IsAbs(d.dir) {
			return fmt.Errorf("libvirt: %s must be an absolute path (libvirtd resolves it), not %q", d.setting, d.dir)
		}
	}
	if strings.ContainsAny(c.AuthorizedKeys, "\x00") {
		return fmt.Errorf("libvirt: LOADPOOL_LIBVIRT_AUTHORIZED_KEYS holds binary data: give an authorized_keys file")
	}
	return nil
}
