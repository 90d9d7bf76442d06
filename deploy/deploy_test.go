package deploy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

var (
	subj  = messages.Subjects{Prefix: messages.DefaultPrefix}
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	roles = []string{"coordinator", "loader", "os", "operator", "client", "monitor"}
	// routePassword is LOADPOOL_NATS_ROUTE_PASSWORD of this test run.
	routePassword string
)

// passwordVar is the environment variable accounts.conf reads for role.
func passwordVar(role string) string { return "LOADPOOL_" + strings.ToUpper(role) + "_PASSWORD" }

// TestMain sets the environment of nats-server: a random password per
// role and for the routes, placeholder route URLs (the cluster test
// replaces them with loopback ports), and the TLS files of the cluster
// configurations, which it makes with the loadpool binary it builds
// (loadpool certs: a lab CA and a certificate for 127.0.0.1).
func TestMain(m *testing.M) {
	for _, r := range roles {
		os.Setenv(passwordVar(r), randomHex())
	}
	routePassword = randomHex()
	os.Setenv("LOADPOOL_NATS_ROUTE_PASSWORD", routePassword)
	for i := 1; i <= 3; i++ {
		os.Setenv(fmt.Sprintf("LOADPOOL_NATS_ROUTE_%d", i), fmt.Sprintf("nats-route://route:%s@nats%d.example.edu:6222", routePassword, i))
	}
	dir, err := os.MkdirTemp("", "loadpool-deploy-")
	if err == nil {
		err = buildAndCerts(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		// nats.go v1.55.0 races with itself in an object-store Put (the
		// evidence bucket): the Put's own jetStream removes its status
		// channel in a deferred cleanup, which can run before the goroutine
		// started with the first async publish has read that channel; the
		// goroutine then waits on a nil channel for ever (jetstream
		// publish.go resetPendingAcksOnReconnect). Not ours to fix here.
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
			goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// loadpoolBin is the loadpool binary TestMain built; caFile the lab CA
// that signed the servers' certificate (127.0.0.1).
var loadpoolBin, caFile string

func buildAndCerts(dir string) error {
	loadpoolBin = filepath.Join(dir, "loadpool")
	if out, err := exec.Command("go", "build", "-o", loadpoolBin, "github.com/loadpool/loadpool/cmd/loadpool").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	certs := filepath.Join(dir, "certs")
	if out, err := exec.Command(loadpoolBin, "certs", "--dir", certs, "--host", "127.0.0.1", "--client", "coordinator").CombinedOutput(); err != nil {
		return fmt.Errorf("loadpool certs: %v\n%s", err, out)
	}
	caFile = filepath.Join(certs, "ca.pem")
	os.Setenv("LOADPOOL_NATS_TLS_CERT", filepath.Join(certs, "127.0.0.1.pem"))
	os.Setenv("LOADPOOL_NATS_TLS_KEY", filepath.Join(certs, "127.0.0.1-key.pem"))
	os.Setenv("LOADPOOL_NATS_TLS_CA", caFile)
	return nil
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestConfigsParse: every .conf parses with nats-server's own parser and
// says what the README promises.
func TestConfigsParse(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("*.conf")
	if len(files) < 6 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			opts, err := server.ProcessConfigFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(f, "nats-cluster-") || f == "tls.conf" {
				if opts.TLSConfig == nil || len(opts.TLSConfig.Certificates) == 0 {
					t.Errorf("%s: no TLS for clients", f)
				}
			}
			if strings.HasPrefix(f, "nats-cluster-") && (opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert) {
				t.Errorf("%s: routes without verified TLS", f)
			}
			if f == "nats-cluster-common.conf" || f == "tls.conf" {
				return
			}
			checkAccount(t, opts)
			if f == "accounts.conf" {
				return
			}
			if !opts.JetStream || opts.StoreDir == "" || opts.ServerName == "" || opts.HTTPPort == 0 || opts.Port != 4222 {
				t.Errorf("jetstream %v, store_dir %q, server_name %q, http port %d, port %d", opts.JetStream, opts.StoreDir, opts.ServerName, opts.HTTPPort, opts.Port)
			}
			if opts.MaxPayload < 70*1024 {
				t.Errorf("max_payload %d is below loadpool's 64 KiB bodies", opts.MaxPayload)
			}
			if strings.HasPrefix(f, "nats-cluster-") {
				if opts.Cluster.Name != "loadpool" || len(opts.Routes) != 3 || opts.Cluster.Username != "route" || opts.Cluster.Password != routePassword {
					t.Errorf("cluster %q, routes %v, route user %q", opts.Cluster.Name, opts.Routes, opts.Cluster.Username)
				}
				if want := "nats" + strings.TrimSuffix(strings.TrimPrefix(f, "nats-cluster-"), ".conf"); opts.ServerName != want {
					t.Errorf("server_name %q, want %q", opts.ServerName, want)
				}
			}
		})
	}
}

// accountOf is the account of each role's user: the streams' account
// LOADPOOL holds the coordinator only.
var accountOf = map[string]string{"coordinator": "LOADPOOL", "loader": "LOADER", "os": "OS", "operator": "OPERATOR", "client": "CLIENT", "monitor": "MONITOR"}

// checkAccount: one account per role, one user each with the password
// from the environment and permissions, and no user that may answer any
// reply subject.
func checkAccount(t *testing.T, opts *server.Options) {
	t.Helper()
	if len(opts.Users) != len(roles) {
		t.Fatalf("%d users, want %d (%v)", len(opts.Users), len(roles), roles)
	}
	for _, u := range opts.Users {
		if u.Password != os.Getenv(passwordVar(u.Username)) || u.Account == nil || u.Account.Name != accountOf[u.Username] || u.Permissions == nil {
			t.Errorf("user %q in account %v, permissions %v", u.Username, u.Account, u.Permissions != nil)
			continue
		}
		if u.Permissions.Response != nil {
			t.Errorf("user %s has allow_responses: it could answer onto any subject a request names", u.Username)
		}
	}
}

// TestNoSecretsInRepo: every password in the configurations is a variable.
func TestNoSecretsInRepo(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("*.conf")
	re := regexp.MustCompile(`(?m)^\s*password\s*[:=]\s*(\S+)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasPrefix(m[1], "$LOADPOOL_") {
				t.Errorf("%s: password %q is not an environment variable reference", f, m[1])
			}
		}
	}
	// A password variable that is not set stops the server, naming it.
	b, err := os.ReadFile("accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	unset := filepath.Join(t.TempDir(), "accounts.conf")
	if err := os.WriteFile(unset, []byte(strings.Replace(string(b), "$LOADPOOL_CLIENT_PASSWORD", "$LOADPOOL_UNSET_PASSWORD", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ProcessConfigFile(unset); err == nil || !strings.Contains(err.Error(), "LOADPOOL_UNSET_PASSWORD") {
		t.Errorf("unset password variable: %v", err)
	}
	if messages.DefaultPrefix != "vcl" {
		t.Errorf("accounts.conf is written for the prefix vcl, the default is now %q", messages.DefaultPrefix)
	}
}

// violationLog is a nats-server logger that keeps the refusals the server
// logs (permissions violations, authentication and TLS errors) and drops
// the rest.
type violationLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *violationLog) Errorf(format string, v ...any) {
	if s := fmt.Sprintf(format, v...); strings.Contains(s, "Violation") || strings.Contains(s, "authentication error") || strings.Contains(s, "TLS") {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, s)
	}
}

func (l *violationLog) Noticef(string, ...any) {}
func (l *violationLog) Warnf(string, ...any)   {}
func (l *violationLog) Fatalf(string, ...any)  {}
func (l *violationLog) Debugf(string, ...any)  {}
func (l *violationLog) Tracef(string, ...any)  {}

// none fails if the server refused anything.
func (l *violationLog) none(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		t.Errorf("nats-server: %s", s)
	}
}

// startConf starts a server from a configuration file on random loopback
// ports with its store in a temporary directory; adjust changes more.
// The server's permissions violations go to vl when it is not nil.
func startConf(t *testing.T, file string, adjust func(*server.Options), vl ...*violationLog) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1, "127.0.0.1", -1
	opts.StoreDir, opts.NoLog, opts.NoSigs = t.TempDir(), true, true
	if adjust != nil {
		adjust(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range vl {
		s.SetLogger(l, false, false)
	}
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(15 * time.Second) {
		t.Fatalf("server from %s did not start", file)
	}
	return s
}

// roleConn is a connection as one role's user that records the
// permissions violations the server reports.
type roleConn struct {
	*nats.Conn
	role string
	errs chan error
}

func connectAs(t *testing.T, addr, role string) *roleConn {
	t.Helper()
	return connectUser(t, addr, role, os.Getenv(passwordVar(role)))
}

func connectUser(t *testing.T, addr, role, password string, more ...nats.Option) *roleConn {
	t.Helper()
	c := &roleConn{role: role, errs: make(chan error, 64)}
	nc, err := nats.Connect(addr, append([]nats.Option{nats.UserInfo(role, password), nats.CustomInboxPrefix("_INBOX." + role),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if os.Getenv("LOADPOOL_TEST_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
			}
			select {
			case c.errs <- err:
			default:
			}
		})}, more...)...)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// violation waits for the server's permissions violation on subject (or
// on one of the others: what a library tries first may change).
func (c *roleConn) violation(t *testing.T, kind, subject string, others ...string) {
	t.Helper()
	want := fmt.Sprintf("%s to %q", kind, subject)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.errs:
			for _, s := range append([]string{subject}, others...) {
				if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), fmt.Sprintf("%s to %q", kind, s)) {
					return
				}
			}
			t.Logf("%s: other error %v", c.role, err)
		case <-timeout:
			t.Fatalf("%s: no permissions violation for %s", c.role, want)
		}
	}
}

// noViolations fails if the server refused anything this role did.
func (c *roleConn) noViolations(t *testing.T) {
	t.Helper()
	for {
		select {
		case err := <-c.errs:
			t.Errorf("user %s was refused something it needs: %v", c.role, err)
		default:
			return
		}
	}
}

// enroll enrols the computer of spec as the operator user and returns the
// spec naming it only, as a client sends it.
func enroll(t *testing.T, ctx context.Context, op *nats.Conn, spec messages.JobSpec) messages.JobSpec {
	t.Helper()
	if _, err := coordinator.NewClient(op, subj).AddComputer(ctx, spec.Computer); err != nil {
		t.Fatalf("enrol %s as operator: %v", spec.Computer.Name, err)
	}
	spec.Computer = messages.Computer{Name: spec.Computer.Name}
	return spec
}

func jobSpec(id, computer, provisioner, addr string) messages.JobSpec {
	return messages.JobSpec{ID: id, MaxAttempts: 1,
		Computer: messages.Computer{Name: computer, Provisioner: provisioner, Type: messages.TypeVirtualMachine, Address: addr},
		Image:    messages.Image{Name: "ubuntu-24.04", OSFamily: linux.Family, OSVersion: "24.04"}}
}
