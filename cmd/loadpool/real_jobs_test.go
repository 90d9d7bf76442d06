package main

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab/guest"
	"github.com/loadpool/loadpool/messages"
)

// TestRealGuests is end to end on real Debian guests through the binary's
// wiring: coordinator + libvirt loader + linux OS worker on embedded NATS.
// Phases run one after the other so that at most three guests boot at
// once on the 2-core CI machine; the guests of a phase boot together.
func TestRealGuests(t *testing.T) {
	r := newRealLab(t)
	t.Run("ssh and qga", func(t *testing.T) {
		t.Run("ssh, then if-needed does not reload", func(t *testing.T) { t.Parallel(); realSSH(t, r) })
		t.Run("qga, no SSH", func(t *testing.T) { t.Parallel(); realQGA(t, r) })
	})
	t.Run("failure catalogue", func(t *testing.T) {
		// Submitted together (three guests boot at once), checked in turn:
		// go test runs only GOMAXPROCS parallel subtests at once.
		slow, nossh, failed := startSlow(t, r), startNoSSH(t, r), startFailedUnit(t, r)
		t.Run("slow boot waits", slow)
		t.Run("sshd never starts: reset, retry, attempt 2", nossh)
		t.Run("failed unit: degraded accepted", failed)
	})
	t.Run("loader killed during a load", func(t *testing.T) { realKilledLoader(t, r) })
}

func realSSH(t *testing.T, r *realLab) {
	c := r.computer(t, "ssh", messages.ControlSSH)
	start := time.Now()
	rec := r.run(t, job("real-ssh-1", c, guest.Base), 6*time.Minute)
	wantState(t, rec, messages.StateReady)
	t.Logf("boot -> ready over SSH in %s", time.Since(start).Round(time.Second))
	if l := lastStep(rec, messages.StepLoad); l.Reloaded == nil || !*l.Reloaded {
		t.Fatalf("the first load did not reload: %s", steps(rec))
	}
	checkLoaded(t, c, guest.Base)
	// The reservation ended without using the computer: no taint, so the
	// next if-needed job may keep the loaded image.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.client.ReleaseComputer(ctx, c.Name, false); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	rec = r.run(t, job("real-ssh-2", c, guest.Base), 3*time.Minute)
	wantState(t, rec, messages.StateReady)
	l := lastStep(rec, messages.StepLoad)
	if l.Reloaded == nil || *l.Reloaded || !strings.Contains(l.Detail, "skipped") {
		t.Fatalf("if-needed on a loaded computer reloaded it: %s", steps(rec))
	}
	t.Logf("if-needed, no reload: ready in %s", time.Since(start).Round(time.Second))
}

func realQGA(t *testing.T, r *realLab) {
	c := r.computer(t, "qga", messages.ControlQGA)
	start := time.Now()
	rec := r.run(t, job("real-qga-1", c, guest.Base), 6*time.Minute)
	wantState(t, rec, messages.StateReady)
	t.Logf("boot -> ready over the guest agent in %s", time.Since(start).Round(time.Second))
	checkLoaded(t, c, guest.Base)
	if c.Address != "" || c.Attributes["ssh_port"] != "" {
		t.Fatal("the qga computer must have no SSH path")
	}
}

// submit submits spec now; the returned func waits for its end.
func (r *realLab) submit(t *testing.T, spec messages.JobSpec, within time.Duration) func(t *testing.T) messages.JobRecord {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	rec, err := r.client.Submit(ctx, spec)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return func(t *testing.T) messages.JobRecord {
		defer cancel()
		return r.wait(t, ctx, rec.ID)
	}
}

func startSlow(t *testing.T, r *realLab) func(t *testing.T) {
	c := r.computer(t, "slow", messages.ControlSSH)
	end := r.submit(t, job("real-slow-1", c, guest.Slow), 9*time.Minute)
	return func(t *testing.T) {
		rec := end(t)
		wantState(t, rec, messages.StateReady)
		if n := len(rec.Steps); n != 2 {
			t.Fatalf("a slow boot should be one attempt: %s", steps(rec))
		}
		pl := lastStep(rec, messages.StepPostload)
		if d := pl.Finished.Sub(pl.Started); d < guest.SlowSeconds*time.Second {
			t.Fatalf("post-load took %s, less than the %ds the image holds its boot", d, guest.SlowSeconds)
		}
		checkLoaded(t, c, guest.Slow)
	}
}

func startNoSSH(t *testing.T, r *realLab) func(t *testing.T) {
	c := r.computer(t, "nossh", messages.ControlSSH)
	spec := job("real-nossh-1", c, guest.NoSSH)
	// always: the coordinator passes the job's reload to every attempt,
	// and if-needed would let attempt 2 keep attempt 1's guest.
	spec.Reload = messages.ReloadAlways
	spec.Image.WaitProfile = []byte(`{"answer_timeout": "30s", "reset_answer_timeout": "20s", "on_timeout": "power-reset"}`)
	end := r.submit(t, spec, 12*time.Minute)
	return func(t *testing.T) {
		rec := end(t)
		wantState(t, rec, messages.StateFailed)
		var attempts []int
		for _, s := range rec.Steps {
			if s.Step == messages.StepPostload {
				attempts = append(attempts, s.Attempt)
				if s.Outcome != messages.OutcomeRetry || !strings.Contains(s.Detail, "power reset") {
					t.Fatalf("post-load of attempt %d: %s %q, want retry after a power reset", s.Attempt, s.Outcome, s.Detail)
				}
			}
		}
		if l := lastStep(rec, messages.StepLoad); l.Attempt != 2 || l.Reloaded == nil || !*l.Reloaded {
			t.Fatalf("attempt 2 did not load again: %s", steps(rec))
		}
		if len(attempts) != 2 || attempts[1] != 2 || rec.Attempt != 2 {
			t.Fatalf("want post-loads of attempts 1 and 2: %v (record attempt %d)%s", attempts, rec.Attempt, steps(rec))
		}
		if got := inGuest(t, c, "systemctl is-active ssh; true"); got == "active" {
			t.Fatal("sshd runs in the nossh variant")
		}
	}
}

func startFailedUnit(t *testing.T, r *realLab) func(t *testing.T) {
	c := r.computer(t, "failed", messages.ControlSSH)
	end := r.submit(t, job("real-failed-1", c, guest.FailedUnit), 9*time.Minute)
	return func(t *testing.T) {
		rec := end(t)
		wantState(t, rec, messages.StateReady)
		pl := lastStep(rec, messages.StepPostload)
		if !strings.Contains(pl.Detail, "degraded") || !strings.Contains(pl.Detail, guest.BrokenUnit) {
			t.Fatalf("post-load detail %q should say degraded and name %s", pl.Detail, guest.BrokenUnit)
		}
	}
}

// realKilledLoader: a loader process killed (SIGKILL) in the middle of a
// libvirt load; another loader takes the request once its lease lapses
// and finishes the job; the computer has one domain.
func realKilledLoader(t *testing.T, r *realLab) {
	r.mu.Lock()
	r.loader.Stop() // only the process under test takes the request
	r.mu.Unlock()
	c := r.computer(t, "killed", messages.ControlSSH)
	// The killable loader stops in the middle of the load: a slow
	// qemu-img (a script that waits) holds it after the domain was
	// destroyed and before the new one is defined.
	hold := holdingQEMUImg(t)
	proc := startKillableLoader(t, r, hold.path)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rec, err := r.client.Submit(ctx, job("real-killed-1", c, guest.Base))
	if err != nil {
		t.Fatal(err)
	}
	hold.waitStarted(t, ctx)
	killGroup(proc)
	_ = proc.Wait()
	r.startLoader()
	rec = r.wait(t, ctx, rec.ID)
	wantState(t, rec, messages.StateReady)
	if l := lastStep(rec, messages.StepLoad); strings.HasSuffix(l.Worker, "/"+strconv.Itoa(proc.Process.Pid)) || len(rec.Steps) != 2 {
		t.Fatalf("the load must be finished once, by the second loader: %s (killed pid %d)", steps(rec), proc.Process.Pid)
	}
	n := 0
	for _, d := range r.lab.Domains() {
		if d == c.Name {
			n++
		}
	}
	if n != 1 || r.lab.State(c.Name) != "on" {
		t.Fatalf("computer %s has %d domains (state %s), want one running", c.Name, n, r.lab.State(c.Name))
	}
	checkLoaded(t, c, guest.Base)
}

const killableLoaderEnv = "LOADPOOL_TEST_KILLABLE_LOADER"

// startKillableLoader runs this test binary as `loadpool loader
// --provisioner libvirt` (TestMain) on the lab's NATS, with qemuImg as its
// qemu-img.
func startKillableLoader(t *testing.T, r *realLab, qemuImg string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killableLoaderEnv+"=1", "LOADPOOL_NATS_URL="+r.url, "LOADPOOL_LIBVIRT_QEMU_IMG="+qemuImg)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its qemu-img dies with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killGroup(cmd); _, _ = cmd.Process.Wait() })
	return cmd
}

// killGroup kills the process group this test started (the loader and
// its qemu-img).
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// holdingQEMUImg is a qemu-img that says it started (a marker file) and
// then never ends: a loader using it is stuck in the middle of a load.
type holding struct{ path, marker string }

func holdingQEMUImg(t *testing.T) holding {
	dir := t.TempDir()
	h := holding{path: filepath.Join(dir, "qemu-img"), marker: filepath.Join(dir, "started")}
	write(t, h.path, "#!/bin/sh\ntouch "+h.marker+"\nexec sleep 600\n")
	if err := os.Chmod(h.path, 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h holding) waitStarted(t *testing.T, ctx context.Context) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(h.marker); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the killable loader never reached qemu-img")
		case <-tick.C:
		}
	}
}

// runKillableLoader is the child's main.
func runKillableLoader() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	return run(ctx, []string{"loader", "--provisioner", "libvirt"}, os.Stdout, os.Stderr)
}
