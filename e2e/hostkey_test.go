package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/osworker/modtest"
	"github.com/loadpool/loadpool/pool"
	"golang.org/x/crypto/ssh"
)

// TestLearnedHostKeyThroughTheEnrolment: the real coordinator, a loader
// (devlab.Sim) and the Linux OS worker against a simulated computer. The
// key the OS worker learns in job-1's reload window reaches the
// enrolment; after a release that says the reservation never used the
// computer, job-2 (if-needed) skips the load, so its post-load checks the
// enrolled key strictly: the computer was reimaged behind loadpool's back
// and job-2 fails naming both fingerprints. Job-3 reimages it: its reload
// window learns the new key, which replaces the old one in the enrolment.
func TestLearnedHostKeyThroughTheEnrolment(t *testing.T) {
	t.Parallel()
	url := natstest.New(t).URL()
	startCoordinator(t, url, options{})
	client := labtest.Signer(t)
	comp, err := devlab.NewComputer(devlab.Config{Name: "vm-hk", Shell: &devlab.Linux{}, Authorized: client.PublicKey(),
		BootDelay: 20 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(comp.Close)
	startHostKeyWorkers(t, url, comp, client)
	cl := coordinator.NewClient(connect(t, url), subj)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cl.AddComputer(ctx, messages.Computer{Name: comp.Name(), Provisioner: devlab.SimName,
		Type: messages.TypeVirtualMachine, Address: comp.Addr()}); err != nil {
		t.Fatal(err)
	}
	run := func(id, reload string) messages.JobRecord {
		t.Helper()
		if _, err := cl.Submit(ctx, messages.JobSpec{ID: id, MaxAttempts: 1, Reload: reload,
			Computer: messages.Computer{Name: comp.Name()},
			Image:    messages.Image{Name: "ubuntu-24.04", OSFamily: linux.Family, OSVersion: "24.04"}}); err != nil {
			t.Fatal(err)
		}
		var rec messages.JobRecord
		poll.Until(t, "job "+id+" to end", func() bool {
			rec, err = cl.Get(ctx, id)
			return err == nil && messages.Terminal(rec.State)
		})
		// The enrolment records a job's end just after its record does.
		poll.Until(t, "the enrolment to record the end of "+id, func() bool {
			e, err := cl.GetComputer(ctx, comp.Name())
			return err == nil && e.Job == id && e.State != messages.ComputerReloading
		})
		return rec
	}
	enrolledKey := func() *messages.LearnedHostKey {
		t.Helper()
		e, err := cl.GetComputer(ctx, comp.Name())
		if err != nil {
			t.Fatal(err)
		}
		return e.LearnedHostKey
	}

	if rec := run("hk-1", ""); rec.State != messages.StateReady {
		t.Fatalf("job hk-1: %s (%s)", rec.State, rec.Error)
	}
	first := comp.HostKey()
	if k := enrolledKey(); k == nil || k.Key != authorized(first) || k.JobID != "hk-1" || k.Attempt != 1 {
		t.Fatalf("enrolled learned key %+v, want %s learned by hk-1 attempt 1", k, authorized(first))
	}
	if _, err := cl.ReleaseComputer(ctx, comp.Name(), false); err != nil {
		t.Fatal(err)
	}
	if err := comp.Boot("ubuntu-24.04"); err != nil { // reimaged behind loadpool's back
		t.Fatal(err)
	}
	rec := run("hk-2", messages.ReloadIfNeeded)
	last := rec.Steps[len(rec.Steps)-1]
	if rec.State != messages.StateFailed || last.Step != messages.StepPostload || last.Reason != "host-key-mismatch" {
		t.Fatalf("job hk-2: %s, last step %+v; want failed by a host key mismatch in post-load", rec.State, last)
	}
	if rec.Steps[0].Reloaded == nil || *rec.Steps[0].Reloaded {
		t.Fatalf("job hk-2's load reloaded the computer: the test needs a skipped load (%+v)", rec.Steps[0])
	}
	for _, w := range []string{ssh.FingerprintSHA256(first), ssh.FingerprintSHA256(comp.HostKey()), "learned by job hk-1 attempt 1"} {
		if !strings.Contains(last.Detail, w) {
			t.Errorf("hk-2's detail %q does not name %q", last.Detail, w)
		}
	}
	if rec := run("hk-3", messages.ReloadAlways); rec.State != messages.StateReady {
		t.Fatalf("job hk-3: %s (%s)", rec.State, rec.Error)
	}
	if k := enrolledKey(); k == nil || k.Key != authorized(comp.HostKey()) || k.JobID != "hk-3" {
		t.Fatalf("enrolled learned key after hk-3: %+v, want the new key learned by hk-3", k)
	}
}

// startHostKeyWorkers starts a loader for devlab.Sim serving comp and a
// Linux OS worker logging in with client.
func startHostKeyWorkers(t *testing.T, url string, comp *devlab.Computer, client ssh.Signer) {
	t.Helper()
	sim := devlab.NewSim("ubuntu-24.04")
	sim.Add(comp)
	lw, err := loaderworker.New(connect(t, url), loaderworker.Config{Subjects: subj, Name: devlab.SimName, Logger: quiet,
		Settings: pool.Config{Grace: time.Second}}, sim)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	profiles := fmt.Sprintf(`[{"family": %q, "set": %s}]`, linux.Family, modtest.TinyProfile)
	ow, err := osworker.New(connect(t, url), osworker.Config{Subjects: subj, Signer: client, DialTimeout: 5 * time.Second,
		Profiles: []byte(profiles), Logger: quiet, Settings: pool.Config{Grace: time.Second}}, linux.Module{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ow.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ow.Stop)
}

func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}
