package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/loadpool/loadpool/outcome"
	"golang.org/x/crypto/ssh"
)

// reimage boots c again: a new host key, as after a real reimage.
func reimage(t *testing.T, c *devlab.Computer) ssh.PublicKey {
	t.Helper()
	if err := c.Boot("img-again"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "computer answers", c.Answering)
	return c.HostKey()
}

func dialOnce(d *control.SSHDialer, c *devlab.Computer, p control.HostKeyPolicy) error {
	conn, err := d.Dial(context.Background(), control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: p})
	if err == nil {
		conn.Close()
	}
	return err
}

// wantMismatch checks a Permanent *HostKeyMismatchError naming the
// computer, both fingerprints and the source of the expected key.
func wantMismatch(t *testing.T, err error, want, got ssh.PublicKey, source string) {
	t.Helper()
	var mm *control.HostKeyMismatchError
	if !outcome.IsPermanent(err) || !errors.As(err, &mm) || outcome.Reason(err) != "host-key-mismatch" {
		t.Fatalf("err = %v, want a Permanent *HostKeyMismatchError with reason host-key-mismatch", err)
	}
	if mm.Want != ssh.FingerprintSHA256(want) || mm.Got != ssh.FingerprintSHA256(got) {
		t.Errorf("mismatch want %s got %s; want %s got %s", mm.Want, mm.Got, ssh.FingerprintSHA256(want), ssh.FingerprintSHA256(got))
	}
	for _, s := range []string{"vm-1", ssh.FingerprintSHA256(want), ssh.FingerprintSHA256(got), source} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// TestHostKeyPolicy walks the rules of HostKeyPolicy against one computer
// whose key changes when it is reimaged.
func TestHostKeyPolicy(t *testing.T) {
	t.Parallel()
	client := labtest.Signer(t)
	c := upComputer(t, client, nil)
	d := dialer(t, client, 5*time.Second)
	k1 := c.HostKey()
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	learned := &control.HostKeyRecord{Key: authorized(k1), JobID: "job-1", Attempt: 2, Recorded: at}

	// A reload window learns the first key into the step's store.
	step := &control.MemHostKeys{}
	if err := dialOnce(d, c, control.HostKeyPolicy{JobID: "job-1", Attempt: 2, Reloaded: true, Step: step}); err != nil {
		t.Fatalf("reload window: %v", err)
	}
	rec, _, err := step.Get(context.Background(), "vm-1")
	if err != nil || rec.Key != authorized(k1) || rec.JobID != "job-1" || rec.Attempt != 2 || rec.Recorded.IsZero() {
		t.Fatalf("learned = %+v, %v; want %s by job-1 attempt 2", rec, err, authorized(k1))
	}
	// The learned key, enrolled, is accepted by a later step that did not
	// reload (which has nothing to learn).
	noLearn := &control.MemHostKeys{}
	if err := dialOnce(d, c, control.HostKeyPolicy{Learned: learned, JobID: "job-2", Attempt: 1, Step: noLearn}); err != nil {
		t.Fatalf("enrolled learned key: %v", err)
	}
	if _, _, err := noLearn.Get(context.Background(), "vm-1"); !errors.Is(err, control.ErrNoRecord) {
		t.Fatalf("a step with a known key learned something: %v", err)
	}

	k2 := reimage(t, c) // behind loadpool's back
	err = dialOnce(d, c, control.HostKeyPolicy{Learned: learned, JobID: "job-3", Attempt: 1, Step: &control.MemHostKeys{}})
	wantMismatch(t, err, k1, k2, "learned by job job-1 attempt 2 at 2026-11-30T08:00:00Z")

	// Pinned: strict even in a reload window.
	err = dialOnce(d, c, control.HostKeyPolicy{Pinned: authorized(k1), Learned: learned, JobID: "job-4", Attempt: 1, Reloaded: true, Step: &control.MemHostKeys{}})
	wantMismatch(t, err, k1, k2, "pinned at enrolment")

	// A reload window replaces the older learned key.
	step = &control.MemHostKeys{}
	if err := dialOnce(d, c, control.HostKeyPolicy{Learned: learned, JobID: "job-5", Attempt: 1, Reloaded: true, Step: step}); err != nil {
		t.Fatalf("reload window with an older learned key: %v", err)
	}
	if rec, _, _ := step.Get(context.Background(), "vm-1"); rec.Key != authorized(k2) || rec.JobID != "job-5" {
		t.Fatalf("learned %+v, want the new key by job-5", rec)
	}
	// Within the step, the learned key is strict: a second change fails.
	k3 := reimage(t, c)
	err = dialOnce(d, c, control.HostKeyPolicy{Learned: learned, JobID: "job-5", Attempt: 1, Reloaded: true, Step: step})
	wantMismatch(t, err, k2, k3, "learned earlier in this step by job job-5 attempt 1")
}

// TestHostKeyNothingKnown: no key known and no reload (a computer loaded
// before loadpool knew it, skipped by reload if-needed) learns the first
// key; without a step store nothing can be trusted.
func TestHostKeyNothingKnown(t *testing.T) {
	t.Parallel()
	client := labtest.Signer(t)
	c := upComputer(t, client, nil)
	d := dialer(t, client, 5*time.Second)
	step := &control.MemHostKeys{}
	if err := dialOnce(d, c, control.HostKeyPolicy{JobID: "job-9", Attempt: 1, Step: step}); err != nil {
		t.Fatal(err)
	}
	if rec, _, err := step.Get(context.Background(), "vm-1"); err != nil || rec.Key != authorized(c.HostKey()) {
		t.Fatalf("learned = %+v, %v", rec, err)
	}
	err := dialOnce(d, c, control.HostKeyPolicy{JobID: "job-9", Attempt: 1})
	if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), "no host key is known for vm-1") {
		t.Fatalf("no store = %v, want a Permanent refusal", err)
	}
	bad := dialOnce(d, c, control.HostKeyPolicy{Learned: &control.HostKeyRecord{Key: "ssh-ed25519 garbage"}})
	if !outcome.IsPermanent(bad) || !strings.Contains(bad.Error(), "reload always") {
		t.Fatalf("unreadable learned key = %v, want a Permanent error saying to reload", bad)
	}
}

func TestMemHostKeysCAS(t *testing.T) {
	t.Parallel()
	st := &control.MemHostKeys{}
	ctx := context.Background()
	if _, _, err := st.Get(ctx, "c1"); !errors.Is(err, control.ErrNoRecord) {
		t.Fatalf("Get of nothing = %v, want ErrNoRecord", err)
	}
	rec := control.HostKeyRecord{Key: "ssh-ed25519 AAAA", JobID: "j1", Attempt: 1}
	if err := st.Put(ctx, "c1", rec, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "c1", rec, 0); !errors.Is(err, control.ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
	got, rev, err := st.Get(ctx, "c1")
	if err != nil || got.JobID != "j1" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	rec.JobID = "j2"
	if err := st.Put(ctx, "c1", rec, rev+7); !errors.Is(err, control.ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	if err := st.Put(ctx, "c1", rec, rev); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := st.Get(ctx, "c1"); got.JobID != "j2" {
		t.Fatalf("after update %+v", got)
	}
}
