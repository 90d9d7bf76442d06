package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterFromConfigs: the three node files form a cluster over TLS
// whose routes authenticate with certificates of the lab CA and the route
// password (URLs from the environment, here on loopback). Over it, each
// role on its own user: the coordinator creates its streams and buckets
// with three replicas, a job reaches ready through a power reset, the
// binary (status, LOADPOOL_NATS_CA) reads it, and every attack of
// TestAttacks is refused. A plaintext client, a plaintext route and a
// route with a wrong password are refused.
func TestClusterFromConfigs(t *testing.T) {
	t.Parallel()
	nodes, ports, logs := startCluster(t)
	var urls []string
	for _, s := range nodes {
		urls = append(urls, s.ClientURL())
	}
	all, ca := strings.Join(urls, ","), nats.RootCAs(caFile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	as := func(role string) *roleConn { return connectUser(t, all, role, os.Getenv(passwordVar(role)), ca) }
	coord, err := coordinator.New(as("coordinator").Conn, coordinator.Config{Subjects: subj, Name: "coord", Logger: quiet, Settings: pool.Config{Replicas: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer coord.Stop()
	poolConsumers(t, ctx, as("coordinator").Conn, devlab.SimName, linux.Family)
	comp := startWorkers(t, ctx, as("loader").Conn, as("os").Conn)
	cl := as("client")
	if _, err := coordinator.NewClient(cl.Conn, subj).Submit(ctx, enroll(t, ctx, as("operator").Conn, jobSpec("cluster-1", comp.Name(), devlab.SimName, comp.Addr()))); err != nil {
		t.Fatalf("submit on the cluster: %v", err)
	}
	if events := watch(t, ctx, cl.Conn, "cluster-1"); !strings.Contains(strings.Join(events, "\n"), "power reset of "+comp.Name()) {
		t.Errorf("no power reset among %v", events)
	}
	cmd := exec.CommandContext(ctx, loadpoolBin, "status", "cluster-1")
	cmd.Env = []string{"LOADPOOL_NATS_URL=" + all, "LOADPOOL_NATS_USER=monitor",
		"LOADPOOL_NATS_PASSWORD=" + os.Getenv(passwordVar("monitor")), "LOADPOOL_NATS_CA=" + caFile}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ready") {
		t.Errorf("loadpool status over TLS as monitor: %v\n%s", err, out)
	}
	js, err := jetstream.New(as("monitor").Conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{subj.LoadStream(), subj.EventStream(), "KV_" + subj.JobsBucket()} {
		st, err := js.Stream(ctx, name)
		if err != nil || st.CachedInfo().Config.Replicas != 3 {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	for i := range logs { // the pipeline was refused nothing
		logs[i].none(t)
	}
	t.Run("attacks", func(t *testing.T) {
		for i, a := range attacks() {
			t.Run(a.name, func(t *testing.T) {
				t.Parallel()
				tg := newTargetOn(t, all, fmt.Sprintf("attacked-%d", i), fmt.Sprintf("pool%d", i), true, ca)
				if err := a.run(t, tg); err != nil {
					t.Errorf("ATTACK WORKS on the cluster: %v", err)
				}
			})
		}
	})
	plaintextClient(t, nodes[0])
	plaintextRoute(t, ports[0], &logs[0])
	rogueRoute(t, ports[0], &logs[0])
	cl.noViolations(t)
}

// startCluster starts the three nodes from their files with routes on
// loopback and waits for a meta leader that sees them all.
func startCluster(t *testing.T) ([]*server.Server, []int, []violationLog) {
	t.Helper()
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
	logs := make([]violationLog, 3)
	for i := range 3 {
		s := startConf(t, fmt.Sprintf("nats-cluster-%d.conf", i+1), func(o *server.Options) {
			o.Cluster.Host, o.Cluster.Port, o.Routes = "127.0.0.1", ports[i], routes
		}, &logs[i])
		nodes = append(nodes, s)
	}
	poll.Until(t, "a meta leader that sees three JetStream peers", func() bool {
		for _, s := range nodes { // only the meta leader answers
			if len(s.JetStreamClusterPeers()) >= 3 {
				return true
			}
		}
		return false
	})
	return nodes, ports, logs
}

// plaintextClient: a client that speaks plaintext NATS to a node (CONNECT
// with the client's password, PING) gets no PONG: the node wants TLS.
func plaintextClient(t *testing.T, s *server.Server) {
	t.Helper()
	addr := s.Addr().String()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	info, err := r.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("INFO of a TLS node: %q, %v", info, err)
	}
	fmt.Fprintf(c, "CONNECT {\"user\":\"client\",\"pass\":%q,\"verbose\":false}\r\nPING\r\n", os.Getenv(passwordVar("client")))
	rest, _ := io.ReadAll(r)
	if strings.Contains(string(rest), "PONG") {
		t.Errorf("a plaintext client was served: %q", rest)
	}
	t.Logf("plaintext client refused: %q", rest)
}

// plaintextRoute: a node without route TLS but with the right password
// is refused by the node its route points at.
func plaintextRoute(t *testing.T, port int, log *violationLog) {
	t.Helper()
	u, err := url.Parse(fmt.Sprintf("nats-route://route:%s@127.0.0.1:%d", routePassword, port))
	if err != nil {
		t.Fatal(err)
	}
	startConf(t, "nats-cluster-1.conf", func(o *server.Options) {
		o.ServerName, o.Cluster.Host, o.Cluster.Port, o.Routes = "plain", "127.0.0.1", -1, []*url.URL{u}
		o.Cluster.TLSConfig, o.Cluster.TLSTimeout = nil, 0
	})
	poll.Until(t, "the cluster to refuse a plaintext route", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, l := range log.lines {
			if strings.Contains(l, "rid:") && strings.Contains(l, "TLS") {
				t.Logf("plaintext route refused: %s", l)
				return true
			}
		}
		return false
	})
}

// TestPinnedLoader follows the recipe of accounts.conf for a loader pinned
// to one provisioner: a copy of the loader user, loader-sim, with its pool
// lines narrowed, serves the sim pool (a job's load ends ready) and is
// refused the vmware pool.
func TestPinnedLoader(t *testing.T) {
	t.Parallel()
	dir := pinnedConf(t)
	addr := startConf(t, filepath.Join(dir, "nats-single.conf"), nil).ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	coord, err := coordinator.New(connectAs(t, addr, "coordinator").Conn, coordinator.Config{Subjects: subj, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.Stop)
	poolConsumers(t, ctx, connectAs(t, addr, "coordinator").Conn, "sim", "linux")
	pinned := connectUser(t, addr, "loader-sim", os.Getenv(passwordVar("loader")))
	lw, err := loaderworker.New(pinned.Conn, loaderworker.Config{Subjects: subj, Name: "sim", Logger: quiet, Settings: pool.Config{Grace: time.Second, BindOnly: true}}, &loaderworker.Fake{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	cl := coordinator.NewClient(connectAs(t, addr, "client").Conn, subj)
	if _, err := cl.Submit(ctx, enroll(t, ctx, connectAs(t, addr, "operator").Conn, jobSpec("pinned", "vm-p", "sim", ""))); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the pinned loader's load to end ready", func() bool {
		rec, err := cl.Get(ctx, "pinned")
		return err == nil && rec.State == messages.StatePostloading
	})
	pinned.noViolations(t)

	other := connectUser(t, addr, "loader-sim", os.Getenv(passwordVar("loader")))
	vw, err := loaderworker.New(other.Conn, loaderworker.Config{Subjects: subj, Name: "vmware", Logger: quiet}, &loaderworker.Fake{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	defer scancel()
	if err := vw.Start(sctx); err == nil {
		t.Error("the loader pinned to sim started on the vmware pool")
	}
	vw.Stop()
	other.violation(t, "Publish", "$JS.API.CONSUMER.INFO.VCL_LOAD.loader-vmware")
}

// pinnedConf writes nats-single.conf and an accounts.conf with the user
// loader-sim added as the recipe says, and returns their directory.
func pinnedConf(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	user := strings.Index(text, "        user: loader\n")
	start := strings.LastIndex(text[:max(user, 0)], "      {\n")
	end := strings.Index(text[max(user, 0):], "\n      }\n")
	if user < 0 || start < 0 || end < 0 {
		t.Fatal("accounts.conf: the loader user's block is not where the test looks for it")
	}
	end += user + len("\n      }\n")
	narrow := strings.NewReplacer("VCL_LOAD.*", "VCL_LOAD.loader-sim", "request.*", "request.sim", "power.*", "power.sim",
		"status.load.*", "status.load.sim", "_INBOX.loader.", "_INBOX.loader-sim.")
	var block strings.Builder
	for _, line := range strings.SplitAfter(text[start:end], "\n") {
		if strings.Contains(line, "# pool") {
			if line = narrow.Replace(line); strings.Contains(line, "*") {
				t.Fatalf("a pool line is still wide after the recipe: %s", line)
			}
		}
		block.WriteString(strings.Replace(line, "user: loader\n", "user: loader-sim\n", 1))
	}
	dir := t.TempDir()
	single, err := os.ReadFile("nats-single.conf")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"accounts.conf": text[:end] + block.String() + text[end:], "nats-single.conf": string(single)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rogueRoute: a node that does not know the route password is refused by
// the node its route points at.
func rogueRoute(t *testing.T, port int, log *violationLog) {
	t.Helper()
	u, err := url.Parse(fmt.Sprintf("nats-route://route:wrong@127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	startConf(t, "nats-cluster-1.conf", func(o *server.Options) {
		o.ServerName, o.Cluster.Host, o.Cluster.Port, o.Routes = "rogue", "127.0.0.1", -1, []*url.URL{u}
	})
	poll.Until(t, "the cluster to refuse a route with a wrong password", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, l := range log.lines {
			if strings.Contains(l, "rid:") && strings.Contains(l, "authentication error") {
				return true
			}
		}
		return false
	})
}
