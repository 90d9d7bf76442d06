package control_test

// Tests of the SSH dialer against Debian's real OpenSSH server
// (devlab/sshd: a child sshd on a loopback port, inside private UTS and
// mount namespaces). They skip only when /usr/sbin/sshd is missing or the
// tests do not run as root.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/devlab/sshd"
	"github.com/loadpool/loadpool/osworker/control"
	"golang.org/x/crypto/ssh"
)

const realDialTimeout = 15 * time.Second

func realCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func pinnedTarget(srv *sshd.Server, pinned string) control.Target {
	return control.Target{Address: srv.Addr(), Computer: "real-1", HostKey: control.HostKeyPolicy{Pinned: pinned}}
}

func TestRealSSHDRun(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t, sshd.Options{})
	d := dialer(t, srv.Client(), realDialTimeout)
	conn, err := d.Dial(realCtx(t), pinnedTarget(srv, srv.HostKeyLine()))
	if err != nil {
		t.Fatalf("dial with the pinned key: %v", err)
	}
	defer conn.Close()
	if err := srv.WaitLog(realCtx(t), "Accepted publickey for root"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cmd, stdout, stderr string
		exit                int
	}{
		{cmd: "echo hi; echo oops >&2; exit 3", stdout: "hi\n", stderr: "oops\n", exit: 3},
		{cmd: "true", stdout: "", stderr: "", exit: 0},
		{cmd: "printf '%s' \"$HOME\"; no-such-command-here", stdout: "/root", stderr: "no-such-command-here", exit: 127},
	}
	for _, tc := range tests {
		out, err := conn.Run(realCtx(t), tc.cmd)
		if err != nil {
			t.Errorf("Run(%q): %v", tc.cmd, err)
			continue
		}
		if string(out.Stdout) != tc.stdout || !strings.Contains(string(out.Stderr), tc.stderr) || out.Exit != tc.exit {
			t.Errorf("Run(%q) = stdout %q stderr %q exit %d; want %q, %q, %d",
				tc.cmd, out.Stdout, out.Stderr, out.Exit, tc.stdout, tc.stderr, tc.exit)
		}
	}
}

// TestRealSSHDRunCancel: Run must return soon after its ctx ends, even
// when the remote command would run on. Against OpenSSH, closing the
// session channel neither ends the remote command nor lets Session.Wait
// return (sshd answers the close only when the command exits), and a
// "signal" request is refused for root logins without privilege
// separation; so Run closes the whole connection after cancelGrace.
func TestRealSSHDRunCancel(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t, sshd.Options{})
	conn, err := dialer(t, srv.Client(), realDialTimeout).Dial(realCtx(t), pinnedTarget(srv, srv.HostKeyLine()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(realCtx(t), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := conn.Run(ctx, "sleep 600")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run past its ctx deadline: err = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("Run still blocked 30s after its ctx ended (the remote sleep 600 holds it)")
	}
}

func TestRealSSHDRefusals(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t, sshd.Options{})
	other := labtest.Signer(t)
	tests := []struct {
		name     string
		signer   ssh.Signer
		pinned   string
		mismatch bool
		auth     bool
		mention  []string
	}{
		{name: "wrong pinned key", signer: srv.Client(), pinned: authorized(other.PublicKey()), mismatch: true,
			mention: []string{"real-1", ssh.FingerprintSHA256(other.PublicKey()), ssh.FingerprintSHA256(srv.HostKey()), "pinned at enrolment"}},
		{name: "client key not authorized", signer: other, pinned: srv.HostKeyLine(), auth: true,
			mention: []string{"real-1", srv.Addr()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, err := dialer(t, tc.signer, realDialTimeout).Dial(realCtx(t), pinnedTarget(srv, tc.pinned))
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded")
			}
			if !outcome.IsPermanent(err) || errors.Is(err, control.ErrNotAnswering) {
				t.Fatalf("err = %v: want Permanent, not ErrNotAnswering", err)
			}
			var mm *control.HostKeyMismatchError
			if errors.As(err, &mm) != tc.mismatch || errors.Is(err, control.ErrAuth) != tc.auth {
				t.Fatalf("err = %v: mismatch %v auth %v, want %v %v", err, errors.As(err, &mm), errors.Is(err, control.ErrAuth), tc.mismatch, tc.auth)
			}
			if mm != nil && (mm.Want != ssh.FingerprintSHA256(other.PublicKey()) || mm.Got != ssh.FingerprintSHA256(srv.HostKey())) {
				t.Errorf("mismatch want %s got %s", mm.Want, mm.Got)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// TestRealSSHDLearnedHostKey: the key seen in job-1's reload window is
// learned into the step; enrolled, it is enforced on job-2, which did not
// reload, once sshd restarts at the same address with a new host key (a
// computer reimaged behind loadpool's back): a Permanent mismatch. Job-3's
// own reload learns the new key.
func TestRealSSHDLearnedHostKey(t *testing.T) {
	t.Parallel()
	first := sshd.Start(t, sshd.Options{})
	d := dialer(t, first.Client(), realDialTimeout)
	dial := func(p control.HostKeyPolicy) error {
		conn, err := d.Dial(realCtx(t), control.Target{Address: first.Addr(), Computer: "real-tofu", HostKey: p})
		if err == nil {
			conn.Close()
		}
		return err
	}
	step1 := &control.MemHostKeys{}
	for range 2 { // learned, then checked against what was learned
		if err := dial(control.HostKeyPolicy{JobID: "job-1", Attempt: 1, Reloaded: true, Step: step1}); err != nil {
			t.Fatalf("dial: %v", err)
		}
	}
	rec, _, err := step1.Get(realCtx(t), "real-tofu")
	if err != nil || rec.Key != first.HostKeyLine() || rec.JobID != "job-1" {
		t.Fatalf("learned %+v, %v; want %s by job-1", rec, err, first.HostKeyLine())
	}
	first.Stop()
	_, newKey, _ := ed25519.GenerateKey(rand.Reader)
	second := sshd.Start(t, sshd.Options{Port: first.Port(), Client: first.Client(), HostKey: newKey})

	err = dial(control.HostKeyPolicy{Learned: &rec, JobID: "job-2", Attempt: 1, Step: &control.MemHostKeys{}})
	var mm *control.HostKeyMismatchError
	if !outcome.IsPermanent(err) || !errors.As(err, &mm) {
		t.Fatalf("changed key: err = %v, want a Permanent *HostKeyMismatchError", err)
	}
	if mm.Want != ssh.FingerprintSHA256(first.HostKey()) || mm.Got != ssh.FingerprintSHA256(second.HostKey()) ||
		!strings.Contains(err.Error(), "real-tofu") || !strings.Contains(err.Error(), "learned by job job-1 attempt 1") {
		t.Errorf("mismatch %+v (%v): want %s -> %s, learned by job-1", mm, err,
			ssh.FingerprintSHA256(first.HostKey()), ssh.FingerprintSHA256(second.HostKey()))
	}
	step3 := &control.MemHostKeys{}
	if err := dial(control.HostKeyPolicy{Learned: &rec, JobID: "job-3", Attempt: 1, Reloaded: true, Step: step3}); err != nil {
		t.Fatalf("job-3 reloaded the computer: its first key must be learned: %v", err)
	}
	if got, _, _ := step3.Get(realCtx(t), "real-tofu"); got.Key != second.HostKeyLine() || got.JobID != "job-3" {
		t.Errorf("learned by job-3: %+v, want the new key", got)
	}
}
