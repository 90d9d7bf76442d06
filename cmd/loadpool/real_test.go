package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/guest"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker/libvirt"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/loadpool/loadpool/osworker/control/qga"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/ssh"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// realLab is the binary's own wiring (startCoordinator, startLoader,
// startOS from LOADPOOL_* settings) on an embedded NATS, with the libvirt
// provisioner and the linux OS worker on real guests.
type realLab struct {
	t      *testing.T
	lab    *guest.Lab
	cfg    Config
	url    string
	client *coordinator.Client
	mu     sync.Mutex
	loader stopper
	events *nats.Subscription
}

func newRealLab(t *testing.T) *realLab {
	lab := guest.NewLab(t)
	srv := natstest.New(t)
	dir := t.TempDir()
	signer, err := devlab.WriteKey(filepath.Join(dir, "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "authorized_keys"), string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	write(t, filepath.Join(dir, "profiles.json"), `[{"family":"linux","set":{"initial_delay":"1s","poll":"2s"}}]`)
	for k, v := range map[string]string{
		"LIBVIRT_DOMAIN_TYPE": "qemu", "LIBVIRT_IMAGES": lab.Images, "LIBVIRT_STATE_DIR": lab.StateDir,
		"LIBVIRT_AUTHORIZED_KEYS": filepath.Join(dir, "authorized_keys"), "SSH_KEY": filepath.Join(dir, "id_ed25519"),
		"PROFILES": filepath.Join(dir, "profiles.json"), "DATA_DIR": dir, "ACK_WAIT": "10s", "GRACE": "2s",
		"CONCURRENCY": "4", "LOG_FORMAT": "json", "LOG_LEVEL": "warn",
	} {
		t.Setenv("LOADPOOL_"+k, v)
	}
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	r := &realLab{t: t, lab: lab, cfg: cfg, url: srv.URL()}
	ctx := context.Background()
	co, err := startCoordinator(ctx, cfg, quiet, natstest.Connect(t, r.url))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	r.startLoader()
	ow, err := startOS(ctx, cfg, quiet, natstest.Connect(t, r.url), "linux")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ow.Stop)
	nc := natstest.Connect(t, r.url)
	r.client = coordinator.NewClient(nc, cfg.subjects())
	r.events, err = nc.Subscribe(cfg.subjects().Events(), func(m *nats.Msg) {
		var e messages.Event
		if json.Unmarshal(m.Data, &e) == nil {
			t.Logf("%s %s [%d %s] %s", e.Time.Format("15:04:05.0"), e.JobID, e.Attempt, e.Step, e.Message)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startLoader starts an in-process libvirt loader (stopped at cleanup).
func (r *realLab) startLoader() {
	w, err := startLoader(context.Background(), r.cfg, quiet, natstest.Connect(r.t, r.url), libvirt.Name)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.loader = w
	r.mu.Unlock()
	r.t.Cleanup(w.Stop)
}

// computer enrolls a computer of this lab: control "ssh" with a loopback
// port forward, or "qga" without any network path.
func (r *realLab) computer(t *testing.T, prefix, ctl string) messages.Computer {
	c := messages.Computer{Name: r.lab.Domain(t, prefix), Provisioner: libvirt.Name, Type: messages.TypeVirtualMachine,
		Control: ctl, Attributes: map[string]string{libvirt.AttrMemoryMiB: "448", libvirt.AttrTBCacheMiB: "96"}}
	if ctl == messages.ControlSSH {
		port := guest.FreePort(t)
		c.Address = "127.0.0.1:" + strconv.Itoa(port)
		c.Attributes[libvirt.AttrSSHPort] = strconv.Itoa(port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.client.AddComputer(ctx, c); err != nil {
		t.Fatalf("enrolling %s: %v", c.Name, err)
	}
	return c
}

// run submits a job and waits (up to within) for its end.
func (r *realLab) run(t *testing.T, spec messages.JobSpec, within time.Duration) messages.JobRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	rec, err := r.client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	return r.wait(t, ctx, rec.ID)
}

func (r *realLab) wait(t *testing.T, ctx context.Context, id string) messages.JobRecord {
	t.Helper()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rec, err := r.client.Get(gctx, id)
		cancel()
		if err == nil && messages.Terminal(rec.State) {
			return rec
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s did not end in time: %+v (%v)", id, rec, err)
		case <-tick.C:
		}
	}
}

// inGuest runs cmd in the computer's guest through its agent.
func inGuest(t *testing.T, c messages.Computer, cmd string) string {
	t.Helper()
	d, err := qga.New(qga.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var conn control.Conn
	for { // a guest that was just reset takes a while to run its agent again
		if conn, err = d.Dial(ctx, control.Target{Computer: c.Name, Attributes: c.Attributes}); !errors.Is(err, control.ErrNotAnswering) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the guest agent of %s never answered: %v", c.Name, err)
		case <-tick.C:
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := conn.Run(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out.Stdout))
}

// job is a job for the enrolled computer c, named.
func job(id string, c messages.Computer, image string) messages.JobSpec {
	return messages.JobSpec{ID: id, Computer: messages.Computer{Name: c.Name}, MaxAttempts: 2,
		Image: messages.Image{Name: image, OSFamily: "linux", OSVersion: "12"}}
}

func wantState(t *testing.T, rec messages.JobRecord, state string) {
	t.Helper()
	if rec.State != state {
		t.Fatalf("job %s is %s, want %s: error %q, steps %s", rec.ID, rec.State, state, rec.Error, steps(rec))
	}
}

func steps(rec messages.JobRecord) string {
	var b strings.Builder
	for _, s := range rec.Steps {
		fmt.Fprintf(&b, "\n  [%d %s] %s: %s", s.Attempt, s.Step, s.Outcome, s.Detail)
	}
	return b.String()
}

func lastStep(rec messages.JobRecord, step string) messages.StepRecord {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		if rec.Steps[i].Step == step {
			return rec.Steps[i]
		}
	}
	return messages.StepRecord{}
}

// checkLoaded checks inside the guest what a ready Linux post-load did.
func checkLoaded(t *testing.T, c messages.Computer, image string) {
	t.Helper()
	got := inGuest(t, c, "systemctl is-system-running; hostname; cat /etc/loadpool-image")
	lines := strings.Split(got, "\n")
	if len(lines) < 3 || lines[0] != "running" || lines[1] != c.Name || !strings.Contains(lines[2], image) {
		t.Fatalf("inside %s: %q, want running, hostname %s and %s recorded", c.Name, got, c.Name, image)
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(killableLoaderEnv) != "" {
		os.Exit(runKillableLoader())
	}
	os.Exit(m.Run())
}
