package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"golang.org/x/crypto/ssh"
)

// DefaultDialTimeout bounds TCP connect plus SSH handshake.
const DefaultDialTimeout = 15 * time.Second

// SSHConfig configures an SSHDialer.
type SSHConfig struct {
	// User is the login (default "root").
	User string
	// Signers are the client's private keys (at least one).
	Signers []ssh.Signer
	// Timeout bounds TCP connect plus handshake (default 15s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// SSHDialer dials computers over SSH with key authentication.
type SSHDialer struct {
	cfg SSHConfig
	log *slog.Logger
}

var _ Dialer = (*SSHDialer)(nil)

// NewSSHDialer checks cfg and returns a dialer.
func NewSSHDialer(cfg SSHConfig) (*SSHDialer, error) {
	if len(cfg.Signers) == 0 {
		return nil, errors.New("SSH: no private key configured: set LOADPOOL_SSH_KEY to a private key file")
	}
	if cfg.User == "" {
		cfg.User = "root"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDialTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &SSHDialer{cfg: cfg, log: log}, nil
}

// LoadSigner reads an unencrypted OpenSSH/PEM private key file (ed25519,
// RSA, ECDSA). The error never contains the key.
func LoadSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("SSH private key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var pe *ssh.PassphraseMissingError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("SSH private key %s is encrypted: give an unencrypted key file", path)
		}
		return nil, fmt.Errorf("SSH private key %s is not a private key file (ed25519, RSA or ECDSA in OpenSSH or PEM form)", path)
	}
	return s, nil
}

// Dial implements Dialer: TCP connect and handshake share one deadline.
func (d *SSHDialer) Dial(ctx context.Context, t Target) (Conn, error) {
	deadline := time.Now().Add(d.cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	hk, err := newHostKeyCheck(dctx, t)
	if err != nil {
		return nil, err
	}
	nd := net.Dialer{}
	raw, err := nd.DialContext(dctx, "tcp", t.Address)
	if err != nil {
		return nil, classify(t, err, nil)
	}
	// What the step learned is read only once the computer accepts TCP.
	if err := hk.load(); err != nil {
		raw.Close()
		return nil, err
	}
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(dctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	cc, chans, reqs, err := ssh.NewClientConn(raw, t.Address, &ssh.ClientConfig{
		User:              d.cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(d.cfg.Signers...)},
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms(),
	})
	stop()
	if err != nil {
		raw.Close()
		return nil, classify(t, err, hk)
	}
	_ = raw.SetDeadline(time.Time{})
	return &sshConn{c: ssh.NewClient(cc, chans, reqs), t: t}, nil
}

// classify turns a dial error into ErrNotAnswering or a Permanent error.
func classify(t Target, err error, hk *hostKeyCheck) error {
	if hk != nil && hk.failure != nil {
		if errors.Is(hk.failure, ErrNotAnswering) {
			return hk.failure
		}
		return outcome.Permanent(hk.failure)
	}
	msg := err.Error()
	if hk != nil && strings.Contains(msg, "no common algorithm for host key") {
		return outcome.Permanent(fmt.Errorf("computer %s (%s) offers no host key of the expected type (%s): %v",
			t.Computer, t.Address, strings.Join(hk.algorithms(), ", "), err))
	}
	// x/crypto/ssh reports a refused login only in words.
	if strings.Contains(msg, "unable to authenticate") {
		return outcome.Permanent(fmt.Errorf("%w by %s (%s): check that the image authorizes loadpool's public key for the SSH user", ErrAuth, t.Computer, t.Address))
	}
	return fmt.Errorf("%w: %s (%s): %v", ErrNotAnswering, t.Computer, t.Address, shortNetErr(err))
}

func shortNetErr(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "no answer before the dial deadline"
	case errors.Is(err, io.EOF):
		return "closed during the SSH handshake"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	return err.Error()
}

type sshConn struct {
	c *ssh.Client
	t Target
}

// Run implements Conn: the session is closed when ctx ends.
func (s *sshConn) Run(ctx context.Context, cmd string) (Output, error) {
	sess, err := s.c.NewSession()
	if err != nil {
		return Output{}, fmt.Errorf("%w: %s: open session: %v", ErrNotAnswering, s.t.Computer, err)
	}
	defer sess.Close()
	out, errb := &capped{}, &capped{}
	sess.Stdout, sess.Stderr = out, errb
	end := s.cancelOnDone(ctx, sess)
	err = sess.Run(cmd)
	end()
	o := Output{Stdout: out.b, Stderr: errb.b}
	if ctx.Err() != nil {
		return o, fmt.Errorf("run %q on %s: %w", cmd, s.t.Computer, context.Cause(ctx))
	}
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		o.Exit = ee.ExitStatus()
	case errors.As(err, &missing):
		o.Exit = -1
	default:
		return o, fmt.Errorf("%w: %s: run %q: %v", ErrNotAnswering, s.t.Computer, cmd, err)
	}
	return o, nil
}

func (s *sshConn) Close() error { return s.c.Close() }

// cancelGrace is how long a cancelled command's session may take to end
// before the whole connection is closed.
const cancelGrace = 2 * time.Second

// cancelOnDone ends sess when ctx ends: SIGKILL (sshd refuses signals for
// root logins without privilege separation, so it may not help), close
// the session, and, since OpenSSH answers the close only once the command
// exits, close the connection after cancelGrace so that Run returns. A
// later Run on a closed connection wraps ErrNotAnswering (callers redial).
// The returned func must be called when Run has returned.
func (s *sshConn) cancelOnDone(ctx context.Context, sess *ssh.Session) (end func()) {
	var mu sync.Mutex
	var grace *time.Timer
	finished := false
	stop := context.AfterFunc(ctx, func() {
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			grace = time.AfterFunc(cancelGrace, func() { s.c.Close() })
		}
	})
	return func() {
		stop()
		mu.Lock()
		defer mu.Unlock()
		finished = true
		if grace != nil {
			grace.Stop()
		}
	}
}

func permanent(err error) error { return outcome.Permanent(err) }

// MaxOutput is how much of a command's stdout (and of its stderr) Run
// keeps; the rest is dropped.
const MaxOutput = 1 << 20

// capped keeps the first MaxOutput bytes written to it.
type capped struct{ b []byte }

func (c *capped) Write(p []byte) (int, error) {
	if room := MaxOutput - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
