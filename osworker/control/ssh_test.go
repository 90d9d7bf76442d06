package control_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/loadpool/loadpool/stepworker"
	"golang.org/x/crypto/ssh"
)

// upComputer boots a Linux computer and waits until it answers.
func upComputer(t *testing.T, client ssh.Signer, sh devlab.Shell) *devlab.Computer {
	t.Helper()
	if sh == nil {
		sh = &devlab.Linux{}
	}
	c, err := devlab.NewComputer(devlab.Config{Name: "vm-1", Shell: sh, Authorized: client.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Boot("img-1"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "computer answers", c.Answering)
	return c
}

func dialer(t *testing.T, s ssh.Signer, timeout time.Duration) *control.SSHDialer {
	t.Helper()
	d, err := control.NewSSHDialer(control.SSHConfig{Signers: []ssh.Signer{s}, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// learning is the policy of a step that may learn the first key it sees.
func learning() control.HostKeyPolicy {
	return control.HostKeyPolicy{JobID: "job-t", Attempt: 1, Reloaded: true, Step: &control.MemHostKeys{}}
}

func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestDialDeadlineCoversHandshake(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hold := make(chan net.Conn, 1)
	go func() { // accepts and never speaks
		c, err := ln.Accept()
		if err == nil {
			hold <- c
		}
	}()
	d := dialer(t, labtest.Signer(t), 300*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := d.Dial(context.Background(), control.Target{Address: ln.Addr().String(), Computer: "silent", HostKey: learning()})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, control.ErrNotAnswering) || outcome.IsPermanent(err) {
			t.Fatalf("err = %v, want ErrNotAnswering (not permanent)", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Dial did not return: the handshake is not under the deadline")
	}
	select {
	case c := <-hold:
		c.Close()
	default:
	}
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	client := labtest.Signer(t)
	c := upComputer(t, client, nil)
	off, err := devlab.NewComputer(devlab.Config{Name: "off", Shell: &devlab.Linux{}, Authorized: client.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	other := labtest.Signer(t)
	tests := []struct {
		name       string
		signer     ssh.Signer
		target     control.Target
		notAnswer  bool
		permanent  bool
		mismatch   bool
		errMention []string
	}{
		{name: "pinned key accepted", signer: client,
			target: control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: control.HostKeyPolicy{Pinned: authorized(c.HostKey())}}},
		{name: "wrong pinned key", signer: client, permanent: true, mismatch: true,
			target:     control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: control.HostKeyPolicy{Pinned: authorized(other.PublicKey())}},
			errMention: []string{"vm-1", ssh.FingerprintSHA256(other.PublicKey()), ssh.FingerprintSHA256(c.HostKey())}},
		{name: "bad pinned key text", signer: client, permanent: true,
			target:     control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: control.HostKeyPolicy{Pinned: "ssh-ed25519 garbage"}},
			errMention: []string{"host_key enrolled for vm-1", "vcl.computer.set"}},
		{name: "pinned key of a type the server lacks", signer: client, permanent: true,
			target:     control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: control.HostKeyPolicy{Pinned: rsaPub(t)}},
			errMention: []string{"vm-1", "no host key of the expected type", "rsa-sha2-512"}},
		{name: "refused", signer: client, notAnswer: true,
			target: control.Target{Address: off.Addr(), Computer: "off", HostKey: learning()}},
		{name: "auth refused", signer: other, permanent: true,
			target:     control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: control.HostKeyPolicy{Pinned: authorized(c.HostKey())}},
			errMention: []string{"vm-1", "public key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := dialer(t, tc.signer, 5*time.Second)
			conn, err := d.Dial(context.Background(), tc.target)
			if !tc.notAnswer && !tc.permanent {
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				out, err := conn.Run(context.Background(), "echo hi")
				if err != nil || string(out.Stdout) != "hi\n" || out.Exit != 0 {
					t.Fatalf("Run = %+v, %v", out, err)
				}
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("Dial succeeded, want an error")
			}
			if got := errors.Is(err, control.ErrNotAnswering); got != tc.notAnswer {
				t.Errorf("ErrNotAnswering = %v, want %v (%v)", got, tc.notAnswer, err)
			}
			if got := outcome.IsPermanent(err); got != tc.permanent {
				t.Errorf("Permanent = %v, want %v (%v)", got, tc.permanent, err)
			}
			var mm *control.HostKeyMismatchError
			if got := errors.As(err, &mm); got != tc.mismatch {
				t.Errorf("HostKeyMismatchError = %v, want %v (%v)", got, tc.mismatch, err)
			}
			for _, s := range tc.errMention {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestRunExitAndCancel(t *testing.T) {
	t.Parallel()
	client := labtest.Signer(t)
	c := upComputer(t, client, &devlab.Linux{Starting: time.Hour})
	d := dialer(t, client, 5*time.Second)
	conn, err := d.Dial(context.Background(), control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: learning()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out, err := conn.Run(context.Background(), "cat /nonexistent")
	if err != nil || out.Exit != 1 || !strings.Contains(string(out.Stderr), "No such file") {
		t.Fatalf("non-zero exit: %+v, %v; want Exit 1 and no error", out, err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Run(ctx, "systemctl is-system-running --wait") // blocks for an hour
		errc <- err
	}()
	cancel(stepworker.ErrAborted)
	select {
	case err := <-errc:
		if !errors.Is(err, stepworker.ErrAborted) {
			t.Fatalf("Run after cancel = %v, want the cause", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run ignored ctx")
	}
}

func rsaPub(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return authorized(pub)
}
