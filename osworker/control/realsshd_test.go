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
	d := dialer(t, srv.Client(), nil, realDialTimeout)
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
	conn, err := dialer(t, srv.Client(), nil, realDialTimeout).Dial(realCtx(t), pinnedTarget(srv, srv.HostKeyLine()))
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
			mention: []string{"real-1", ssh.FingerprintSHA256(other.PublicKey()), ssh.FingerprintSHA256(srv.HostKey()), "pinned by the image"}},
		{name: "client key not authorized", signer: other, pinned: srv.HostKeyLine(), auth: true,
			mention: []string{"real-1", srv.Addr()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, err := dialer(t, tc.signer, nil, realDialTimeout).Dial(realCtx(t), pinnedTarget(srv, tc.pinned))
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

// TestRealSSHDTrustOnFirstUse: the key seen after job-1's reload is
// recorded; sshd restarted at the same address with a new host key (a
// computer reimaged behind loadpool's back) is a Permanent mismatch for
// job-1, and job-2's own reload accepts and records the new key.
func TestRealSSHDTrustOnFirstUse(t *testing.T) {
	t.Parallel()
	store := kvStore(t)
	first := sshd.Start(t, sshd.Options{})
	d := dialer(t, first.Client(), store, realDialTimeout)
	target := func(job string) control.Target {
		return control.Target{Address: first.Addr(), Computer: "real-tofu",
			HostKey: control.HostKeyPolicy{JobID: job, Attempt: 1, Reloaded: true}}
	}
	for range 2 { // recorded, then checked against the record
		conn, err := d.Dial(realCtx(t), target("job-1"))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conn.Close()
	}
	if rec, _, err := store.Get(realCtx(t), "real-tofu"); err != nil || rec.Key != first.HostKeyLine() || rec.JobID != "job-1" {
		t.Fatalf("record %+v, %v; want %s by job-1", rec, err, first.HostKeyLine())
	}
	first.Stop()
	_, newKey, _ := ed25519.GenerateKey(rand.Reader)
	second := sshd.Start(t, sshd.Options{Port: first.Port(), Client: first.Client(), HostKey: newKey})

	_, err := d.Dial(realCtx(t), target("job-1"))
	var mm *control.HostKeyMismatchError
	if !outcome.IsPermanent(err) || !errors.As(err, &mm) {
		t.Fatalf("changed key: err = %v, want a Permanent *HostKeyMismatchError", err)
	}
	if mm.Want != ssh.FingerprintSHA256(first.HostKey()) || mm.Got != ssh.FingerprintSHA256(second.HostKey()) ||
		!strings.Contains(err.Error(), "real-tofu") || !strings.Contains(err.Error(), "recorded by job job-1 attempt 1") {
		t.Errorf("mismatch %+v (%v): want %s -> %s, recorded by job-1", mm, err,
			ssh.FingerprintSHA256(first.HostKey()), ssh.FingerprintSHA256(second.HostKey()))
	}
	conn, err := d.Dial(realCtx(t), target("job-2"))
	if err != nil {
		t.Fatalf("job-2 reloaded the computer: its first key must be accepted: %v", err)
	}
	conn.Close()
	if rec, _, _ := store.Get(realCtx(t), "real-tofu"); rec.Key != second.HostKeyLine() || rec.JobID != "job-2" {
		t.Errorf("record after job-2: %+v, want the new key by job-2", rec)
	}
}
