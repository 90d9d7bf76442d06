//go:build dev

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab/guest"
	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/libvirtd"
	"github.com/loadpool/loadpool/loaderworker/libvirt"
	"github.com/loadpool/loadpool/messages"
)

// runReal is `loadpool real` (make run-real): the real lab on this
// machine. It builds the Debian guest image (cached), runs an embedded
// NATS, a coordinator, the libvirt loader and the linux OS worker,
// enrolls two guests, loads them — one reached over SSH, one over the
// QEMU guest agent — and prints the jobs' events as they happen.
func runReal(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "real", "[--keep]", "Boot two real Debian guests (QEMU through libvirtd) and run a Linux job on each:\none over SSH, one over the QEMU guest agent. Needs root the first time (image build).")
	keep := fs.Bool("keep", false, "leave the guests running when done")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "preparing the real lab: libvirtd, and the Debian 12 guest image (built once, about a minute)...")
	images, err := guest.Prepare()
	if err != nil {
		return err
	}
	state, err := os.MkdirTemp("/var/tmp", "loadpool-real-")
	if err != nil {
		return err
	}
	if err := os.Chmod(state, 0o755); err != nil {
		return err
	}
	cfg, log, err := realConfig(images, state)
	if err != nil {
		return err
	}
	cn, err := connect(cfg, log, "real", true)
	if err != nil {
		return err
	}
	defer cn.Close()
	st, err := startPools(ctx, cfg, log, cn.nc, true, []string{libvirt.Name}, []string{"linux"})
	if err != nil {
		return err
	}
	defer st.Stop()
	computers, err := enroll(ctx, cn, cfg)
	if err != nil {
		return err
	}
	if !*keep {
		defer removeDomains(computers, state)
	}
	fmt.Fprintf(stdout, "NATS %s; images %s; guest files %s\n", cn.url, images, state)
	if err := runRealJobs(ctx, cn, cfg, computers, stdout); err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(stdout, "both guests are ready and kept; try: ssh -i %s -p %s root@127.0.0.1, virsh qemu-agent-command real-qga '{\"execute\":\"guest-get-host-name\"}'\n",
			filepath.Join(cfg.DataDir, "id_ed25519"), computers[0].Attributes[libvirt.AttrSSHPort])
	} else {
		fmt.Fprintln(stdout, "both guests were ready; removing them (--keep leaves them running)")
	}
	return nil
}

// realConfig sets the real lab's defaults (only where LOADPOOL_* leaves
// them unset) and reads the configuration.
func realConfig(images, state string) (Config, *slog.Logger, error) {
	for k, v := range map[string]string{
		"LIBVIRT_DOMAIN_TYPE": libvirt.TypeQEMU, "LIBVIRT_IMAGES": images, "LIBVIRT_STATE_DIR": state,
		"NATS_PORT": "0", "LOG_LEVEL": "warn", "DATA_DIR": filepath.Join(state, "data"), // a fresh NATS each run
	} {
		if os.Getenv("LOADPOOL_"+k) == "" {
			os.Setenv("LOADPOOL_"+k, v)
		}
	}
	cfg, log, err := setup()
	if err != nil {
		return cfg, log, err
	}
	// The OS workers' key (made on first use) goes to the guests.
	if _, err := loadOrMakeKey(os.Getenv("LOADPOOL_SSH_KEY"), cfg.DataDir, log); err != nil {
		return cfg, log, err
	}
	if os.Getenv("LOADPOOL_LIBVIRT_AUTHORIZED_KEYS") == "" {
		key := os.Getenv("LOADPOOL_SSH_KEY")
		if key == "" {
			key = filepath.Join(cfg.DataDir, "id_ed25519")
		}
		os.Setenv("LOADPOOL_LIBVIRT_AUTHORIZED_KEYS", key+".pub")
	}
	return cfg, log, nil
}

// enroll enrolls the real lab's two computers through the coordinator's
// inventory (vcl.computer.add; enrolling them again with the same fields
// is a no-op): real-ssh, reached on a loopback port forward, and
// real-qga, reached over the QEMU guest agent with no network path.
func enroll(ctx context.Context, cn *conn, cfg Config) ([]messages.Computer, error) {
	port := 2222
	if p, err := embednats.FreePort(); err == nil {
		port = p
	}
	small := func() map[string]string {
		return map[string]string{libvirt.AttrMemoryMiB: "448", libvirt.AttrTBCacheMiB: "96"}
	}
	viaSSH := messages.Computer{Name: "real-ssh", Provisioner: libvirt.Name, Type: messages.TypeVirtualMachine,
		Address: "127.0.0.1:" + strconv.Itoa(port), Control: messages.ControlSSH, Attributes: small()}
	viaSSH.Attributes[libvirt.AttrSSHPort] = strconv.Itoa(port)
	viaQGA := messages.Computer{Name: "real-qga", Provisioner: libvirt.Name, Type: messages.TypeVirtualMachine,
		Control: messages.ControlQGA, Attributes: small()}
	client := coordinator.NewClient(cn.nc, cfg.subjects())
	computers := []messages.Computer{viaSSH, viaQGA}
	for _, c := range computers {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := client.AddComputer(actx, c)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("enrolling %s: %v", c.Name, err)
		}
	}
	return computers, nil
}

// runRealJobs submits one Linux job per computer and prints their events
// until both end.
func runRealJobs(ctx context.Context, cn *conn, cfg Config, computers []messages.Computer, stdout io.Writer) error {
	client := coordinator.NewClient(cn.nc, cfg.subjects())
	out := &lockedWriter{w: stdout}
	var wg sync.WaitGroup
	errs := make([]error, len(computers))
	for i, c := range computers {
		id := fmt.Sprintf("%s-%d", c.Name, time.Now().Unix())
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := client.Submit(sctx, messages.JobSpec{ID: id, Computer: messages.Computer{Name: c.Name}, MaxAttempts: 2, Reload: messages.ReloadAlways,
			Image: messages.Image{Name: guest.Base, OSFamily: "linux", OSVersion: "12"}})
		cancel()
		if err != nil {
			return fmt.Errorf("submitting the job for %s: %v", c.Name, err)
		}
		fmt.Fprintf(out, "submitted %s: %s on %s (control %s)\n", id, guest.Base, c.Name, c.Control)
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = follow(ctx, cn, cfg, id, out) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", computers[i].Name, err)
		}
	}
	return nil
}

// removeDomains destroys and undefines the real lab's domains and their files.
func removeDomains(computers []messages.Computer, state string) {
	lv, err := libvirtd.New(os.Getenv("LOADPOOL_LIBVIRT_URI"))
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = lv.Do(ctx, func(l *golibvirt.Libvirt) error {
		for _, c := range computers {
			if dom, err := l.DomainLookupByName(c.Name); err == nil {
				_ = l.DomainDestroy(dom)
				_ = l.DomainUndefineFlags(dom, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram)
			}
		}
		return nil
	})
	_ = os.RemoveAll(state)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
