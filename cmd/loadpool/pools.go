package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/loaderworker/lab"
	"github.com/loadpool/loadpool/loaderworker/libvirt"
	"github.com/loadpool/loadpool/loaderworker/vmware"
	"github.com/loadpool/loadpool/loaderworker/xcat"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/osworker/windows"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/ssh"
)

// newProvisioner makes the provisioner named, from its LOADPOOL_* settings,
// with its default pool-wide limit (0: package pool's default).
func newProvisioner(ctx context.Context, cfg Config, log *slog.Logger, name string) (loaderworker.Provisioner, int, error) {
	switch name {
	case lab.Name:
		if cfg.LabInventory == "" {
			log.Warn("no lab inventory: every lab job fails until LOADPOOL_LAB_INVENTORY names the inventory file (JSON: {\"computers\":[{\"name\":...,\"images\":[...]}]})")
			p, err := lab.New(lab.Inventory{})
			return p, 0, err
		}
		p, err := lab.Open(cfg.LabInventory)
		return p, 0, err
	case "vmware":
		var env vmware.Env
		if err := envconfig.Process("loadpool", &env); err != nil {
			return nil, 0, fmt.Errorf("configuration: %v", err)
		}
		if err := refusePlaceholder("LOADPOOL_VSPHERE_PASSWORD", env.Password); err != nil {
			return nil, 0, err
		}
		warnPlaintext(log, "LOADPOOL_VSPHERE_URL", env.URL)
		warnInsecure(log, "LOADPOOL_VSPHERE_INSECURE", env.Insecure)
		p, err := vmware.New(ctx, env.Config(log.With("provisioner", name)))
		return p, 0, err
	case xcat.Name:
		var env xcat.Env
		if err := envconfig.Process("loadpool", &env); err != nil {
			return nil, 0, fmt.Errorf("configuration: %v", err)
		}
		if err := refusePlaceholder("LOADPOOL_XCAT_PASSWORD", env.Password); err != nil {
			return nil, 0, err
		}
		warnPlaintext(log, "LOADPOOL_XCAT_URL", env.URL)
		warnInsecure(log, "LOADPOOL_XCAT_INSECURE", env.Insecure)
		p, err := xcat.New(env.Config(log.With("provisioner", name)))
		return p, xcat.DefaultMaxAckPending, err
	case libvirt.Name:
		return newLibvirt(ctx, log.With("provisioner", name))
	}
	return nil, 0, fmt.Errorf("%w %q: loadpool's provisioners are lab, vmware, xcat and libvirt", errUnknownPool, name)
}

// SSHEnv is how OS workers reach computers.
type SSHEnv struct {
	// User to log in as (default root; Windows images often use
	// Administrator: set it per OS worker process).
	User string `envconfig:"SSH_USER" default:"root"`
	// Key is the private key file. Unset: <LOADPOOL_DATA_DIR>/id_ed25519,
	// made on first use; its .pub is what the images must authorize.
	Key         string        `envconfig:"SSH_KEY"`
	DialTimeout time.Duration `envconfig:"SSH_DIAL_TIMEOUT" default:"15s"`
	// Profiles is the operator's wait-profile file (JSON).
	Profiles string `envconfig:"PROFILES"`
}

// startOS starts an OS worker for family.
func startOS(ctx context.Context, cfg Config, log *slog.Logger, nc *nats.Conn, family string) (stopper, error) {
	m, err := newModule(family)
	if err != nil {
		return nil, err
	}
	var env SSHEnv
	if err := envconfig.Process("loadpool", &env); err != nil {
		return nil, fmt.Errorf("configuration: %v", err)
	}
	signer, err := loadOrMakeKey(env.Key, cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	var profiles []byte
	if env.Profiles != "" {
		if profiles, err = os.ReadFile(env.Profiles); err != nil {
			return nil, fmt.Errorf("LOADPOOL_PROFILES: %v", err)
		}
	}
	w, err := osworker.New(nc, osworker.Config{Subjects: cfg.subjects(), SSHUser: env.User, Signer: signer, DialTimeout: env.DialTimeout, Profiles: profiles, Dialers: otherControls(log), Logger: log.With("role", "os"), Settings: cfg.Config,
		Learn: osworker.Learn{On: cfg.LearnTimeouts, Margin: cfg.LearnMargin, Cap: cfg.LearnCap}}, m, nil)
	if err != nil {
		return nil, err
	}
	if err := w.Start(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// loadOrMakeKey reads the private key file, or makes an ed25519 key in the
// data directory when none is configured. The key itself is never logged.
func loadOrMakeKey(path, dataDir string, log *slog.Logger) (ssh.Signer, error) {
	if path == "" {
		path = filepath.Join(dataDir, "id_ed25519")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := makeKey(path); err != nil {
				return nil, fmt.Errorf("making an SSH key at %s: %v (set LOADPOOL_SSH_KEY to an existing key)", path, err)
			}
			log.Info("made an SSH key for the OS workers: authorize its public key on the images", "public_key_file", path+".pub")
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("LOADPOOL_SSH_KEY: %v", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("LOADPOOL_SSH_KEY %s is not an unencrypted OpenSSH/PEM private key: %v", path, err)
	}
	return signer, nil
}

func makeKey(path string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "loadpool")
	if err != nil {
		return err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	return os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644)
}

// newModule makes the OS module of family.
func newModule(family string) (osworker.Module, error) {
	switch family {
	case linux.Family:
		return linux.Module{}, nil
	case windows.Family:
		return windows.Module{}, nil
	}
	return nil, fmt.Errorf("%w %q: loadpool's OS families are linux and windows", errUnknownPool, family)
}
