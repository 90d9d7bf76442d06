package sshd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Path is the sshd binary; sshd re-execs itself, so it must be absolute.
const Path = "/usr/sbin/sshd"

// ReadyTimeout bounds the wait for "Server listening on ...".
const ReadyTimeout = 20 * time.Second

// stopTimeout bounds the wait for sshd's processes to end in Stop.
const stopTimeout = 10 * time.Second

// portTries is how often Start picks another port after a clash.
const portTries = 5

// Options configures one server; the zero value is a fresh server.
type Options struct {
	// HostKey is the server's host key; nil: a new ed25519 key.
	HostKey ed25519.PrivateKey
	// Client is the one client key authorized to log in (as root); nil:
	// a new ed25519 key (Server.Client).
	Client ssh.Signer
	// Port is the port on 127.0.0.1; 0: a free port (with retries when
	// another process takes it first). Set it to restart a server at the
	// same address.
	Port int
	// Hostname is the namespace's hostname at start; "": the host's.
	Hostname string
	// SystemState, when set, installs the systemctl stand-in (see the
	// package doc) answering it to `systemctl is-system-running`
	// ("running", "degraded", "starting", ...).
	SystemState string
}

// Server is one running sshd.
type Server struct {
	tb       testing.TB
	dir      string
	rootHome string // root's home directory, where the clean HOME is mounted
	port     int
	hostKey  ssh.PublicKey
	client   ssh.Signer
	cmd      *exec.Cmd
	log      *logSink
	exited   chan struct{} // closed when cmd.Wait returned
	waitErr  error
	stop     sync.Once
}

// Start starts sshd for tb (see the package doc) and waits until it
// listens. It skips tb when sshd is missing or tb does not run as root.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	requirements(tb)
	s, err := prepare(tb, opts)
	if err != nil {
		tb.Fatalf("real-sshd test: %v", err)
	}
	for try := 1; ; try++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				tb.Fatalf("real-sshd test: %v", err)
			}
		}
		err = s.run(port)
		if err == nil {
			tb.Cleanup(s.Stop)
			return s
		}
		if !errors.Is(err, errPortTaken) || opts.Port != 0 || try == portTries {
			tb.Fatalf("real-sshd test: %v", err)
		}
		tb.Logf("sshd: port %d was taken meanwhile, picking another", port)
	}
}

// requirements skips tb without sshd or root, fails it without util-linux.
func requirements(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(Path); err != nil {
		tb.Skipf("real-sshd test skipped: %s is missing (install Debian's openssh-server: make deps)", Path)
	}
	if os.Geteuid() != 0 {
		tb.Skipf("real-sshd test skipped: it must run as root (it starts sshd as root inside private UTS and mount namespaces); euid is %d", os.Geteuid())
	}
	for _, tool := range []string{"unshare", "nsenter", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("real-sshd test: %s not found in PATH (install util-linux: make deps)", tool)
		}
	}
}

// prepare checks opts and writes keys, HOME, the /etc copy and the stand-in.
func prepare(tb testing.TB, opts Options) (*Server, error) {
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("Options.Port %d: must be 1-65535, or 0 for a free port", opts.Port)
	}
	if opts.SystemState != "" && !plainWord(opts.SystemState) {
		return nil, fmt.Errorf("Options.SystemState %q: must be a word of a-z and '-' like running or degraded", opts.SystemState)
	}
	s := &Server{tb: tb, dir: tb.TempDir(), client: opts.Client, rootHome: "/root"}
	if u, err := user.LookupId("0"); err == nil && u.HomeDir != "" && u.HomeDir != "/" {
		s.rootHome = u.HomeDir
	}
	for _, d := range []string{"home/.ssh", "bin", "etc"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := s.writeKeys(opts.HostKey); err != nil {
		return nil, err
	}
	if opts.SystemState != "" {
		if err := s.writeStandIn(opts.SystemState); err != nil {
			return nil, err
		}
	}
	return s, os.WriteFile(s.path("hostname"), []byte(opts.Hostname), 0o600)
}

func plainWord(w string) bool {
	return strings.Trim(w, "abcdefghijklmnopqrstuvwxyz-") == ""
}

// writeKeys writes the host key (hk, or a new one) and authorizes the
// client key (s.client, or a new one).
func (s *Server) writeKeys(hk ed25519.PrivateKey) error {
	if hk == nil {
		_, hk, _ = ed25519.GenerateKey(rand.Reader)
	}
	pub, err := ssh.NewPublicKey(hk.Public())
	if err != nil {
		return err
	}
	s.hostKey = pub
	if s.client == nil {
		_, ck, _ := ed25519.GenerateKey(rand.Reader)
		if s.client, err = ssh.NewSignerFromKey(ck); err != nil {
			return err
		}
	}
	block, err := ssh.MarshalPrivateKey(hk, "")
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.path("ssh_host_ed25519_key"), pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	return os.WriteFile(s.path("authorized_keys"), ssh.MarshalAuthorizedKey(s.client.PublicKey()), 0o600)
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

// writeStandIn writes the systemctl stand-in and root's PATH for sessions.
func (s *Server) writeStandIn(state string) error {
	exit := 1
	if state == "running" {
		exit = 0
	}
	script := fmt.Sprintf(`#!/bin/sh
# devlab/sshd stand-in for systemctl: PID 1 of the test machine is not
# systemd. It answers is-system-running with the test's word and lists no
# failed units; everything else is refused.
case " $* " in
*" is-system-running "*) echo '%s'; exit %d ;;
*" --failed "*) exit 0 ;;
esac
echo "systemctl stand-in (devlab/sshd): only is-system-running and --failed are answered, not: $*" >&2
exit 1
`, state, exit)
	if err := os.WriteFile(s.path("bin/systemctl"), []byte(script), 0o755); err != nil {
		return err
	}
	env := "PATH=" + s.path("bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	return os.WriteFile(s.path("home/.ssh/environment"), []byte(env), 0o600)
}

func (s *Server) writeConfig(port int) (string, error) {
	lines := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + s.path("ssh_host_ed25519_key"),
		"AuthorizedKeysFile " + s.path("authorized_keys"),
		"PidFile " + s.path("sshd.pid"),
		"UsePAM no",
		"StrictModes no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"MaxStartups 200",
		"LogLevel INFO",
	}
	if _, err := os.Stat(s.path("bin/systemctl")); err == nil {
		lines = append(lines, "PermitUserEnvironment PATH")
	}
	cfg := s.path("sshd_config")
	return cfg, os.WriteFile(cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// nsScript runs as root inside the new namespaces, then execs sshd in
// place (same pid): $1 an empty directory for the /etc copy (a tmpfs:
// copying /etc to disk took 1.5-2.5 s on a loaded machine, to tmpfs 0.1 s),
// $2 the clean HOME, $3 root's home directory, $4 the file holding the
// hostname.
const nsScript = `set -e
mount -t tmpfs -o mode=0755 loadpool-sshd-etc "$1"
cp -a /etc/. "$1"/
mount --bind "$1" /etc
mount --bind "$2" "$3"
mount -t tmpfs -o mode=0755 loadpool-sshd-run /run
mkdir -p /run/sshd
name=$(cat "$4")
[ -z "$name" ] || hostname "$name"
shift 4
exec "$@"`

var errPortTaken = errors.New("port taken")

// run starts sshd on port and waits for it to listen.
func (s *Server) run(port int) error {
	cfg, err := s.writeConfig(port)
	if err != nil {
		return err
	}
	s.port = port
	s.log = newLogSink(s.tb, port)
	s.exited = make(chan struct{})
	s.cmd = exec.Command("unshare", "--uts", "--mount", "--propagation", "private",
		"sh", "-c", nsScript, "sshd-ns", s.path("etc"), s.path("home"), s.rootHome, s.path("hostname"),
		Path, "-D", "-e", "-f", cfg)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.WaitDelay = stopTimeout
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Path, err)
	}
	cmd, exited := s.cmd, s.exited
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	select {
	case <-s.log.listening:
		return nil
	case <-s.exited:
		text := s.log.text()
		if strings.Contains(text, "Address already in use") {
			return fmt.Errorf("%w: %d", errPortTaken, port)
		}
		hint := ""
		if strings.Contains(text, "unshare failed") || strings.Contains(text, "Operation not permitted") {
			hint = " (namespaces need root with CAP_SYS_ADMIN: in a container, run it privileged or with --cap-add SYS_ADMIN)"
		}
		return fmt.Errorf("sshd exited before listening (%v)%s; its output:\n%s", s.waitErr, hint, text)
	case <-time.After(ReadyTimeout):
		s.Stop()
		return fmt.Errorf("sshd did not report listening on port %d within %s; its output:\n%s", port, ReadyTimeout, s.log.text())
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the port sshd listens on.
func (s *Server) Port() int { return s.port }

// Pid is the listener's pid (the namespaces' first process).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// HostKey is the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey }

// HostKeyLine is the host key in authorized_keys form ("ssh-ed25519 AAAA...").
func (s *Server) HostKeyLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostKey)))
}

// Client is the client key authorized to log in as root.
func (s *Server) Client() ssh.Signer { return s.client }

// EtcDir is the host's path to the private /etc that sessions see (through
// /proc/<pid>/root); it is readable while the server runs.
func (s *Server) EtcDir() string {
	return filepath.Join("/proc", strconv.Itoa(s.Pid()), "root", "etc")
}

// Hostname is the hostname inside the server's UTS namespace.
func (s *Server) Hostname(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "nsenter", "--target", strconv.Itoa(s.Pid()), "--uts", "uname", "-n").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nsenter into sshd's UTS namespace: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// ReadFile reads an absolute path as sessions see it (through
// /proc/<pid>/root, i.e. in sshd's mount namespace).
func (s *Server) ReadFile(path string) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("ReadFile(%q): the path must be absolute", path)
	}
	return os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.Pid()), "root", path))
}

// Log is sshd's output so far, one line per entry.
func (s *Server) Log() []string { return s.log.lines() }

// WaitLog waits until a line of sshd's output contains substr.
func (s *Server) WaitLog(ctx context.Context, substr string) error {
	return s.log.wait(ctx, substr)
}
