package deploy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/osworker/modtest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

var (
	subj  = messages.Subjects{Prefix: messages.DefaultPrefix}
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	roles = []string{"coordinator", "loader", "os", "client", "monitor"}
	// routePassword is LOADPOOL_NATS_ROUTE_PASSWORD of this test run.
	routePassword string
)

// passwordVar is the environment variable accounts.conf reads for role.
func passwordVar(role string) string { return "LOADPOOL_" + strings.ToUpper(role) + "_PASSWORD" }

// TestMain sets the environment of nats-server: a random password per
// role and for the routes, and placeholder route URLs (the cluster test
// replaces them with loopback ports).
func TestMain(m *testing.M) {
	for _, r := range roles {
		os.Setenv(passwordVar(r), randomHex())
	}
	routePassword = randomHex()
	os.Setenv("LOADPOOL_NATS_ROUTE_PASSWORD", routePassword)
	for i := 1; i <= 3; i++ {
		os.Setenv(fmt.Sprintf("LOADPOOL_NATS_ROUTE_%d", i), fmt.Sprintf("nats-route://route:%s@nats%d.example.edu:6222", routePassword, i))
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
	)
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
			if f == "nats-cluster-common.conf" {
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

// checkAccount: one JetStream account LOADPOOL with a user per role whose
// password is the one from the environment.
func checkAccount(t *testing.T, opts *server.Options) {
	t.Helper()
	if len(opts.Users) != len(roles) {
		t.Fatalf("%d users, want %d (%v)", len(opts.Users), len(roles), roles)
	}
	for i, u := range opts.Users {
		if u.Username != roles[i] || u.Password != os.Getenv(passwordVar(roles[i])) || u.Account == nil || u.Account.Name != "LOADPOOL" || u.Permissions == nil {
			t.Errorf("user %d: %q in account %v, permissions %v", i, u.Username, u.Account, u.Permissions != nil)
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

// violationLog is a nats-server logger that keeps the permissions
// violations the server logs and drops everything else.
type violationLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *violationLog) Errorf(format string, v ...any) {
	if s := fmt.Sprintf(format, v...); strings.Contains(s, "Violation") {
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
	c := &roleConn{role: role, errs: make(chan error, 64)}
	nc, err := nats.Connect(addr, nats.UserInfo(role, os.Getenv(passwordVar(role))),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if os.Getenv("LOADPOOL_TEST_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
			}
			select {
			case c.errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// violation waits for the server's permissions violation on subject.
func (c *roleConn) violation(t *testing.T, kind, subject string) {
	t.Helper()
	want := fmt.Sprintf("%s to %q", kind, subject)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
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

// eventually polls cond until it holds, with a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
}

func jobSpec(id, computer, provisioner, addr string) messages.JobSpec {
	return messages.JobSpec{ID: id, MaxAttempts: 1,
		Computer: messages.Computer{Name: computer, Provisioner: provisioner, Type: messages.TypeVirtualMachine, Address: addr},
		Image:    messages.Image{Name: "ubuntu-24.04", OSFamily: linux.Family, OSVersion: "24.04"}}
}

// TestPipelineWithRoleUsers runs the real pipeline on a server started
// from nats-single.conf, each role on its own user: a job reaches ready
// through a hung boot that the OS worker power-resets through the loader;
// a request that no worker finishes becomes a max-deliveries retry and is
// removed; a cancel aborts. No role is refused anything on the way.
func TestPipelineWithRoleUsers(t *testing.T) {
	t.Parallel()
	var vl violationLog
	addr := startConf(t, "nats-single.conf", nil, &vl).ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := map[string]*roleConn{}
	for _, r := range roles {
		conns[r] = connectAs(t, addr, r)
	}
	coord, err := coordinator.New(conns["coordinator"].Conn, coordinator.Config{Subjects: subj, Name: "coord",
		AckWait: time.Second, MaxDeliver: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.Stop)
	comp := startWorkers(t, ctx, conns["loader"].Conn, conns["os"].Conn)

	cl := coordinator.NewClient(conns["client"].Conn, subj)
	if _, err := cl.Submit(ctx, jobSpec("deploy-ready", comp.Name(), devlab.SimName, comp.Addr())); err != nil {
		t.Fatal(err)
	}
	events := watch(t, ctx, conns["client"].Conn, "deploy-ready")
	rec, err := cl.Get(ctx, "deploy-ready")
	if err != nil || rec.State != messages.StateReady {
		t.Fatalf("job = %+v, %v; events %v", rec, err, events)
	}
	if !strings.Contains(strings.Join(events, "\n"), "power reset of "+comp.Name()) {
		t.Errorf("no power reset event from the loader among %v", events)
	}

	undeliverable(t, ctx, conns)
	canceled(t, ctx, cl)
	monitorReads(t, ctx, conns["monitor"].Conn)
	for _, r := range roles {
		conns[r].noViolations(t)
	}
	vl.none(t)
}

// startWorkers starts a loader (devlab.Sim) as user loader and a Linux OS
// worker as user os, and returns the simulated computer they serve; its
// first boot hangs.
func startWorkers(t *testing.T, ctx context.Context, loaderNC, osNC *nats.Conn) *devlab.Computer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := devlab.NewComputer(devlab.Config{Name: "vm-01", Shell: &devlab.Linux{}, Authorized: signer.PublicKey(),
		BootDelay: 20 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(comp.Close)
	comp.HangBoots(1)
	sim := devlab.NewSim("ubuntu-24.04")
	sim.Add(comp)
	lw, err := loaderworker.New(loaderNC, loaderworker.Config{Subjects: subj, Name: devlab.SimName, Grace: time.Second, Logger: quiet}, sim)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	profiles := fmt.Sprintf(`[{"family": %q, "set": %s}]`, linux.Family, modtest.TinyProfile)
	ow, err := osworker.New(osNC, osworker.Config{Subjects: subj, SSHUser: "root", Signer: signer,
		DialTimeout: 5 * time.Second, PowerTimeout: 10 * time.Second, Grace: time.Second, Profiles: []byte(profiles), Logger: quiet}, linux.Module{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ow.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ow.Stop)
	return comp
}

// watch follows a job's events with an ordered consumer on VCL_EVENTS (as
// loadpool watch does) until one says the job ended; it returns them.
func watch(t *testing.T, ctx context.Context, nc *nats.Conn, id string) []string {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, subj.EventStream(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj.Event(id)}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("events so far %v: %v", out, err)
		}
		var ev messages.Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Source+": "+ev.Message)
		if messages.Terminal(ev.State) {
			return out
		}
	}
}

// undeliverable: a loader that gives every delivery back exhausts
// MaxDeliver; the coordinator reads the request (advisory), turns it into
// a retry (the job, of one attempt, fails) and deletes it from VCL_LOAD.
func undeliverable(t *testing.T, ctx context.Context, conns map[string]*roleConn) {
	t.Helper()
	spec := jobSpec("deploy-stall", "vm-stall", "stall", "127.0.0.1:9")
	if _, err := coordinator.NewClient(conns["client"].Conn, subj).Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(conns["loader"].Conn)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, subj.LoadStream(), subj.LoaderConsumer("stall"))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Nak() })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cc.Stop(); <-cc.Closed() }()
	rec := waitEnded(t, ctx, coordinator.NewClient(conns["monitor"].Conn, subj), spec.ID)
	if rec.State != messages.StateFailed || len(rec.Steps) != 1 || rec.Steps[0].Reason != "max-deliveries" {
		t.Fatalf("undeliverable job = %+v", rec)
	}
	mjs, err := jetstream.New(conns["monitor"].Conn)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the undeliverable request to leave VCL_LOAD", func() bool {
		st, err := mjs.Stream(ctx, subj.LoadStream())
		return err == nil && st.CachedInfo().State.Msgs == 0
	})
}

// canceled: a client cancels a job whose load nobody takes; the
// coordinator aborts it and frees the computer.
func canceled(t *testing.T, ctx context.Context, cl *coordinator.Client) {
	t.Helper()
	spec := jobSpec("deploy-cancel", "vm-cancel", "nobody", "127.0.0.1:9")
	if _, err := cl.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	rec, err := cl.Cancel(ctx, spec.ID, "deploy test")
	if err != nil || rec.State != messages.StateCanceled {
		t.Fatalf("cancel = %+v, %v", rec, err)
	}
	spec.ID = "deploy-cancel-2"
	if _, err := cl.Submit(ctx, spec); err != nil {
		t.Errorf("the canceled job's computer is still locked: %v", err)
	}
}

func waitEnded(t *testing.T, ctx context.Context, cl *coordinator.Client, id string) messages.JobRecord {
	t.Helper()
	var rec messages.JobRecord
	eventually(t, "job "+id+" to end", func() bool {
		var err error
		rec, err = cl.Get(ctx, id)
		return err == nil && messages.Terminal(rec.State)
	})
	return rec
}

// monitorReads: the monitor user reads micro stats, stream and consumer
// info, a KV record and job.list.
func monitorReads(t *testing.T, ctx context.Context, nc *nats.Conn) {
	t.Helper()
	m, err := nc.RequestWithContext(ctx, "$SRV.STATS."+coordinator.ServiceName, nil)
	if err != nil || !strings.Contains(string(m.Data), `"name":"`+coordinator.ServiceName+`"`) {
		t.Errorf("micro stats: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, subj.EventStream()); err != nil {
		t.Errorf("stream info: %v", err)
	}
	if _, err := js.Consumer(ctx, subj.LoadStream(), subj.LoaderConsumer(devlab.SimName)); err != nil {
		t.Errorf("consumer info: %v", err)
	}
	kv, err := js.KeyValue(ctx, subj.JobsBucket())
	if err != nil {
		t.Fatalf("kv: %v", err)
	}
	if e, err := kv.Get(ctx, "deploy-ready"); err != nil || !strings.Contains(string(e.Value()), `"state":"ready"`) {
		t.Errorf("kv get: %v", err)
	}
	if jobs, err := coordinator.NewClient(nc, subj).List(ctx, messages.ListRequest{Limit: 10}); err != nil || len(jobs) < 3 {
		t.Errorf("job.list = %d jobs, %v", len(jobs), err)
	}
}

// TestDenials: what a role must not do is refused with a permissions
// violation, and only the five users get in.
func TestDenials(t *testing.T) {
	t.Parallel()
	var vl violationLog
	addr := startConf(t, "nats-single.conf", nil, &vl).ClientURL()
	cases := []struct{ name, role, kind, subject string }{
		{"client cannot dispatch a load", "client", "Publish", "vcl.load.request.x"},
		{"client cannot read job records in KV", "client", "Publish", "$JS.API.DIRECT.GET.KV_vcl_jobs.$KV.vcl_jobs.job-1"},
		{"client cannot write job records", "client", "Publish", "$KV.vcl_jobs.job-1"},
		{"client cannot pull a loader pool", "client", "Publish", "$JS.API.CONSUMER.MSG.NEXT.VCL_LOAD.loader-vmware"},
		{"client cannot read requests", "client", "Subscription", "vcl.load.request.>"},
		{"loader cannot submit", "loader", "Publish", "vcl.job.submit"},
		{"loader cannot serve job.submit", "loader", "Subscription", "vcl.job.submit"},
		{"loader cannot report a post-load", "loader", "Publish", "vcl.postload.result"},
		{"loader cannot pull an OS pool", "loader", "Publish", "$JS.API.CONSUMER.MSG.NEXT.VCL_POSTLOAD.os-linux"},
		{"os cannot report a load", "os", "Publish", "vcl.load.result"},
		{"os cannot abort", "os", "Publish", "vcl.abort.job-1"},
		{"os cannot read job records", "os", "Publish", "$JS.API.STREAM.MSG.GET.KV_vcl_jobs"},
		{"monitor cannot submit", "monitor", "Publish", "vcl.job.submit"},
		{"monitor cannot cancel", "monitor", "Publish", "vcl.job.cancel"},
		{"monitor cannot write KV", "monitor", "Publish", "$KV.vcl_jobs.job-1"},
		{"monitor cannot delete a stream", "monitor", "Publish", "$JS.API.STREAM.DELETE.VCL_EVENTS"},
		{"coordinator cannot delete a stream", "coordinator", "Publish", "$JS.API.STREAM.DELETE.VCL_EVENTS"},
		{"coordinator cannot purge a stream", "coordinator", "Publish", "$JS.API.STREAM.PURGE.VCL_LOAD"},
		{"coordinator cannot forge results", "coordinator", "Publish", "vcl.load.result"},
	}
	t.Cleanup(func() { // the server logs what it refuses (TestPipelineWithRoleUsers relies on it)
		vl.mu.Lock()
		defer vl.mu.Unlock()
		if len(vl.lines) < len(cases) {
			t.Errorf("the server logged %d violations for %d refusals: %q", len(vl.lines), len(cases), vl.lines)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := connectAs(t, addr, tc.role)
			var err error
			if tc.kind == "Subscription" {
				_, err = c.SubscribeSync(tc.subject)
			} else {
				err = c.Publish(tc.subject, []byte("{}"))
			}
			if err == nil {
				err = c.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			c.violation(t, tc.kind, tc.subject)
		})
	}
	t.Run("client cannot open KV vcl_jobs", func(t *testing.T) {
		t.Parallel()
		c := connectAs(t, addr, "client")
		js, err := jetstream.New(c.Conn)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := js.KeyValue(ctx, subj.JobsBucket()); err == nil {
			t.Error("the client opened KV vcl_jobs")
		}
		c.violation(t, "Publish", "$JS.API.STREAM.INFO.KV_vcl_jobs")
	})
	t.Run("loader cannot submit through the client", func(t *testing.T) {
		t.Parallel()
		c := connectAs(t, addr, "loader")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := coordinator.NewClient(c.Conn, subj).Submit(ctx, jobSpec("x", "vm-x", "vmware", "")); err == nil {
			t.Error("the loader submitted a job")
		}
		c.violation(t, "Publish", "vcl.job.submit")
	})
	t.Run("a loader cannot create the streams", func(t *testing.T) {
		t.Parallel()
		c := connectAs(t, addr, "loader")
		lw, err := loaderworker.New(c.Conn, loaderworker.Config{Subjects: subj, Name: "vmware", Logger: quiet}, &loaderworker.Fake{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := lw.Start(ctx); err == nil {
			t.Error("a loader started without streams; the coordinator makes them")
		}
		lw.Stop()
		c.violation(t, "Publish", "$JS.API.STREAM.UPDATE.VCL_LOAD")
	})
	for name, opt := range map[string]nats.Option{
		"anonymous is refused":      nil,
		"wrong password is refused": nats.UserInfo("client", "wrong"),
		"unknown user is refused":   nats.UserInfo("admin", os.Getenv(passwordVar("client"))),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var opts []nats.Option
			if opt != nil {
				opts = append(opts, opt)
			}
			nc, err := nats.Connect(addr, opts...)
			if err == nil {
				nc.Close()
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect = %v, want %v", err, nats.ErrAuthorization)
			}
		})
	}
}

// TestClusterFromConfigs: the three node files form a cluster whose routes
// authenticate with the route password (URLs from the environment, here
// on loopback); the coordinator, as its user, creates its streams and
// buckets with three replicas and takes a job.
func TestClusterFromConfigs(t *testing.T) {
	t.Parallel()
	var routes []*url.URL
	ports := make([]int, 3)
	for i := range ports {
		var err error
		if ports[i], err = embednats.FreePort(); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(fmt.Sprintf("nats-route://route:%s@127.0.0.1:%d", routePassword, ports[i]))
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, u)
	}
	var nodes []*server.Server
	var urls []string
	for i := range 3 {
		s := startConf(t, fmt.Sprintf("nats-cluster-%d.conf", i+1), func(o *server.Options) {
			o.Cluster.Host, o.Cluster.Port, o.Routes = "127.0.0.1", ports[i], routes
		})
		nodes, urls = append(nodes, s), append(urls, s.ClientURL())
	}
	eventually(t, "a meta leader that sees three JetStream peers", func() bool {
		for _, s := range nodes { // only the meta leader answers
			if len(s.JetStreamClusterPeers()) >= 3 {
				return true
			}
		}
		return false
	})
	all := strings.Join(urls, ",")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	coord, err := coordinator.New(connectAs(t, all, "coordinator").Conn, coordinator.Config{Subjects: subj, Replicas: 3, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer coord.Stop()
	cl := connectAs(t, all, "client")
	if rec, err := coordinator.NewClient(cl.Conn, subj).Submit(ctx, jobSpec("cluster-1", "vm-c", "vmware", "")); err != nil || rec.State != messages.StateLoading {
		t.Fatalf("submit on the cluster = %+v, %v", rec, err)
	}
	js, err := jetstream.New(connectAs(t, all, "monitor").Conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{subj.LoadStream(), subj.EventStream(), "KV_" + subj.JobsBucket()} {
		st, err := js.Stream(ctx, name)
		if err != nil || st.CachedInfo().Config.Replicas != 3 {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	cl.noViolations(t)
}

// TestSystemdUnits: every unit reads an environment file, is hardened, and
// passes systemd-analyze verify when that is installed (the binaries'
// paths point at an existing executable for the check).
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) != 5 {
		t.Fatalf("units: %v", units)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var copies []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"EnvironmentFile=/etc/", "DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure", "CapabilityBoundingSet=\n"} {
			if !strings.Contains(string(b), "\n"+line) {
				t.Errorf("%s has no %q", u, strings.TrimSpace(line))
			}
		}
		if strings.Contains(u, "@") && !strings.Contains(string(b), "\nExecStart=/usr/local/bin/loadpool ") || strings.Contains(u, "@") && !strings.Contains(string(b), " %i\n") {
			t.Errorf("%s: the instance is not the pool of ExecStart", u)
		}
		text := strings.NewReplacer("/usr/local/bin/loadpool", exe, "/usr/local/bin/nats-server", exe).Replace(string(b))
		name := filepath.Join(dir, strings.Replace(filepath.Base(u), "@.", "@test.", 1))
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, name)
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed: units checked by text only")
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, copies...)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), dir) || strings.Contains(string(out), "loadpool") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// knownKeys is every LOADPOOL_ variable loadpool reads, with its Go type:
// the envconfig tags of the module's code, and the variables the
// configurations of nats-server read (strings).
func knownKeys(t *testing.T) map[string]string {
	t.Helper()
	tag := regexp.MustCompile("(?m)^\\s*\\w+\\s+([\\w.\\[\\]*]+)\\s+`[^`]*envconfig:\"(\\w+)\"")
	keys := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		for _, m := range tag.FindAllStringSubmatch(string(b), -1) {
			keys["LOADPOOL_"+m[2]] = m[1]
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	confs, _ := filepath.Glob("*.conf")
	for _, f := range confs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\$(LOADPOOL_\w+)`).FindAllStringSubmatch(string(b), -1) {
			keys[m[1]] = "string"
		}
	}
	for _, k := range []string{"LOADPOOL_NATS_URL", "LOADPOOL_VSPHERE_URL", "LOADPOOL_XCAT_URL", "LOADPOOL_SSH_USER", "LOADPOOL_MONITOR_PASSWORD"} {
		if keys[k] == "" {
			t.Fatalf("found no %s in the code: %v", k, keys)
		}
	}
	return keys
}

// TestEnvExamples: each example file is comments and KEY=VALUE lines; every
// key (commented-out ones too) is a LOADPOOL_ variable loadpool reads, with
// a value of its type; secrets are placeholders; the NATS user is the
// role's; a unit reads the file.
func TestEnvExamples(t *testing.T) {
	t.Parallel()
	keys := knownKeys(t)
	files, _ := filepath.Glob("env/*.env.example")
	want := []string{"all", "client", "coordinator", "loader-lab", "loader-vmware", "loader-xcat", "nats", "os-linux", "os-windows"}
	var got []string
	for _, f := range files {
		got = append(got, strings.TrimSuffix(filepath.Base(f), ".env.example"))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("examples %v, want %v", got, want)
	}
	units, err := os.ReadFile("systemd/" + "loadpool-coordinator.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"loadpool-loader@.service", "loadpool-os@.service", "loadpool-all.service", "loadpool-nats.service"} {
		b, err := os.ReadFile("systemd/" + u)
		if err != nil {
			t.Fatal(err)
		}
		units = append(units, b...)
	}
	for _, name := range got {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			role, _, _ := strings.Cut(name, "-")
			file := name + ".env"
			if pool, ok := strings.CutPrefix(name, role+"-"); ok {
				file = strings.Replace(file, pool, "%i", 1)
			}
			if role != "client" && !strings.Contains(string(units), "EnvironmentFile=/etc/loadpool/"+file+"\n") && !strings.Contains(string(units), "/"+"loadpool-"+file+"\n") {
				t.Errorf("no unit reads %s", file)
			}
			checkEnvFile(t, "env/"+name+".env.example", role, keys)
		})
	}
}

var (
	settingRE = regexp.MustCompile(`^([A-Za-z0-9_]+)=(.*)$`)
	commented = regexp.MustCompile(`^#\s*(LOADPOOL_\w+=.*)$`)
)

func checkEnvFile(t *testing.T, path, role string, keys map[string]string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if m := commented.FindStringSubmatch(line); m != nil {
			line = m[1]
		} else if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := settingRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s:%d is neither KEY=VALUE nor a comment: %q", path, i+1, line)
			continue
		}
		key, val := m[1], m[2]
		typ, ok := keys[key]
		if !ok {
			t.Errorf("%s:%d: %s is not a variable loadpool reads", path, i+1, key)
			continue
		}
		if err := checkValue(typ, val); err != nil {
			t.Errorf("%s:%d: %s=%q: %v", path, i+1, key, val, err)
		}
		if strings.HasSuffix(key, "_PASSWORD") && !strings.HasPrefix(val, "change-me") {
			t.Errorf("%s:%d: %s must be a change-me placeholder", path, i+1, key)
		}
		if key == "LOADPOOL_NATS_USER" && val != role {
			t.Errorf("%s:%d: the NATS user is %q, want the role %q of accounts.conf", path, i+1, val, role)
		}
		if seen[key] {
			t.Errorf("%s:%d: %s set twice", path, i+1, key)
		}
		seen[key] = true
	}
}

func checkValue(typ, v string) error {
	var err error
	switch typ {
	case "int":
		_, err = strconv.Atoi(v)
	case "bool":
		_, err = strconv.ParseBool(v)
	case "time.Duration":
		_, err = time.ParseDuration(v)
	case "[]string":
		for _, p := range strings.Split(v, ",") {
			if err == nil {
				err = messages.ValidToken("entry", p)
			}
		}
	}
	return err
}

// TestBinaryWithExampleEnv runs the real loadpool binary the way the units
// do (their ExecStart, their instance) with the example environment files,
// changed only where a host differs (server URL, passwords, file paths),
// against a server from nats-single.conf: a job submitted with client.env
// reaches ready, a monitor watches it, and the server refuses nothing;
// SIGTERM stops every process with exit 0.
func TestBinaryWithExampleEnv(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool to build the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "loadpool")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/loadpool/loadpool/cmd/loadpool").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var vl violationLog
	addr := startConf(t, "nats-single.conf", nil, &vl).ClientURL()
	comp, files := labComputer(t, dir)
	env := func(example, role string, more ...string) []string {
		return envFrom(t, "env/"+example+".env.example", append([]string{"LOADPOOL_NATS_URL=" + addr,
			"LOADPOOL_NATS_PASSWORD=" + os.Getenv(passwordVar(role)), "LOADPOOL_LOG_LEVEL=warn"}, more...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := func(role string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env("client", role, "LOADPOOL_NATS_USER="+role)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	startUnit(t, bin, "loadpool-coordinator.service", "", env("coordinator", "coordinator"))
	eventually(t, "the coordinator to serve", func() bool { _, err := client("client", "status"); return err == nil })
	startUnit(t, bin, "loadpool-loader@.service", "lab", env("loader-lab", "loader", "LOADPOOL_LAB_INVENTORY="+files["inventory"]))
	startUnit(t, bin, "loadpool-os@.service", "linux", env("os-linux", "os", "LOADPOOL_SSH_KEY="+files["key"],
		"LOADPOOL_PROFILES="+files["profiles"], "LOADPOOL_DATA_DIR="+dir))

	out, err := client("client", "submit", "--id", "deploy-bin", "--computer", comp.Name(), "--provisioner", "lab",
		"--type", "lab", "--address", comp.Addr(), "--image", "ubuntu-24.04", "--os-family", "linux", "--wait")
	if err != nil || !strings.Contains(out, "job ready") {
		t.Fatalf("submit --wait: %v\n%s", err, out)
	}
	if out, err := client("monitor", "watch", "deploy-bin"); err != nil || !strings.Contains(out, "ready") {
		t.Errorf("watch as monitor: %v\n%s", err, out)
	}
	vl.none(t)
}

// labComputer is a running simulated lab computer with ubuntu-24.04, and
// the files the loader and OS worker need: inventory, SSH key, profiles.
func labComputer(t *testing.T, dir string) (*devlab.Computer, map[string]string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "deploy test")
	if err != nil {
		t.Fatal(err)
	}
	comp, err := devlab.NewComputer(devlab.Config{Name: "lab-01", Shell: &devlab.Linux{}, Authorized: signer.PublicKey(),
		BootDelay: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(comp.Close)
	if err := comp.Boot("ubuntu-24.04"); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"inventory": []byte(`{"computers":[{"name":"lab-01","images":["ubuntu-24.04"]}]}`),
		"key":       pem.EncodeToMemory(block),
		"profiles":  []byte(`[{"family":"linux","set":{"initial_delay":"0s","poll":"50ms","answer_timeout":"20s"}}]`),
	}
	paths := map[string]string{}
	for name, b := range files {
		paths[name] = filepath.Join(dir, name)
		if err := os.WriteFile(paths[name], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return comp, paths
}

// envFrom is the environment an example file describes (its uncommented
// settings), then more on top.
func envFrom(t *testing.T, path string, more []string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		if settingRE.MatchString(line) {
			env = append(env, line)
		}
	}
	return append(env, more...)
}

// startUnit starts what a unit's ExecStart runs, for instance, with env
// (and nothing else); it is stopped with SIGTERM when the test ends and
// must then exit 0.
func startUnit(t *testing.T, bin, unit, instance string, env []string) {
	t.Helper()
	b, err := os.ReadFile("systemd/" + unit)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/loadpool(.*)$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("%s: no ExecStart of /usr/local/bin/loadpool", unit)
	}
	cmd := exec.Command(bin, strings.Fields(strings.ReplaceAll(m[1], "%i", instance))...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil || t.Failed() {
			t.Errorf("%s (%s): exit %v\n%s", unit, instance, err, stderr.String())
		}
	})
}
