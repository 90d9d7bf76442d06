package sshd_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab/sshd"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dial logs in with strict known_hosts checking of srv's host key.
func dial(t *testing.T, srv *sshd.Server, signer ssh.Signer) (*ssh.Client, error) {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey())
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(kh)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", srv.Addr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: cb, HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}, Timeout: 10 * time.Second})
}

func run(t *testing.T, c *ssh.Client, cmd string) (string, string, error) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		return "", "", err
	}
	defer sess.Close()
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &errb
	err = sess.Run(cmd)
	return out.String(), errb.String(), err
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSessionIsRealAndIsolated(t *testing.T) {
	t.Parallel()
	hostName, _ := os.Hostname()
	hostEtcHostname, _ := os.ReadFile("/etc/hostname")
	marker := "/etc/devlab-sshd-marker-" + filepath.Base(t.TempDir())
	srv := sshd.Start(t, sshd.Options{Hostname: "before"})
	c, err := dial(t, srv, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := srv.WaitLog(ctx(t), "Accepted publickey for root"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(c.ServerVersion()), "OpenSSH") {
		t.Errorf("server version %q is not OpenSSH's", c.ServerVersion())
	}
	out, _, err := run(t, c, "hostname; hostname changed && printf 'changed\\n' > /etc/hostname && echo x > "+marker+" && hostname && echo $HOME")
	if err != nil || out != "before\nchanged\n/root\n" {
		t.Fatalf("session: %q, %v", out, err)
	}
	if got, err := srv.Hostname(ctx(t)); err != nil || got != "changed" {
		t.Errorf("hostname in the namespace = %q, %v; want changed", got, err)
	}
	if b, err := srv.ReadFile(marker); err != nil || string(b) != "x\n" {
		t.Errorf("ReadFile(%s) = %q, %v", marker, b, err)
	}
	if b, err := os.ReadFile(filepath.Join(srv.EtcDir(), "hostname")); err != nil || string(b) != "changed\n" {
		t.Errorf("private /etc copy: hostname = %q, %v", b, err)
	}
	if h, _ := os.Hostname(); h != hostName {
		t.Errorf("the host's hostname changed: %q -> %q", hostName, h)
	}
	if b, _ := os.ReadFile("/etc/hostname"); !bytes.Equal(b, hostEtcHostname) {
		t.Errorf("the host's /etc/hostname changed: %q -> %q", hostEtcHostname, b)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s appeared on the host (stat: %v)", marker, err)
	}
}

func TestSystemctlStandIn(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t, sshd.Options{SystemState: "degraded"})
	c, err := dial(t, srv, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, _, err := run(t, c, "timeout 5 systemctl is-system-running --wait")
	var ee *ssh.ExitError
	if out != "degraded\n" || !errors.As(err, &ee) || ee.ExitStatus() != 1 {
		t.Errorf("is-system-running: %q, %v; want degraded, exit 1", out, err)
	}
	if _, stderr, err := run(t, c, "systemctl restart ssh"); err == nil || !strings.Contains(stderr, "stand-in") {
		t.Errorf("other verbs must be refused: %q, %v", stderr, err)
	}
}

func TestStopEndsEverything(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t, sshd.Options{})
	c, err := dial(t, srv, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := run(t, c, "true"); err != nil {
		t.Fatal(err)
	}
	pid := srv.Pid()
	srv.Stop()
	srv.Stop() // idempotent
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("listener %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if _, _, err := run(t, c, "true"); err == nil {
		t.Error("the open connection still runs commands after Stop")
	}
	if conn, err := net.Dial("tcp", srv.Addr()); err == nil {
		conn.Close()
		t.Error("the port still accepts connections after Stop")
	}
}

func TestRestartOnSamePortWithNewKey(t *testing.T) {
	t.Parallel()
	first := sshd.Start(t, sshd.Options{})
	first.Stop()
	second := sshd.Start(t, sshd.Options{Port: first.Port(), Client: first.Client()})
	if second.Addr() != first.Addr() || bytes.Equal(second.HostKey().Marshal(), first.HostKey().Marshal()) {
		t.Fatalf("restart: %s key %s, want %s with a new key", second.Addr(), second.HostKeyLine(), first.Addr())
	}
	c, err := dial(t, second, first.Client())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// BenchmarkStartStop: one server's cost (the /etc copy dominates), and
// one strict login + exec against it.
func BenchmarkStartStop(b *testing.B) {
	for b.Loop() {
		sshd.Start(b, sshd.Options{}).Stop()
	}
}

func BenchmarkDialExec(b *testing.B) {
	srv := sshd.Start(b, sshd.Options{})
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(srv.Client())},
		HostKeyCallback: ssh.FixedHostKey(srv.HostKey()), HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}}
	for b.Loop() {
		c, err := ssh.Dial("tcp", srv.Addr(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		s, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Run("true"); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
