// Package natstest starts the real nats-server for tests, embedded in the
// test process on random loopback ports with JetStream in the test's
// temporary directory: one node (New) or a three-node cluster
// (NewCluster). Each registers its own cleanup.
package natstest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// New starts a one-node server with JetStream in t.TempDir() on a random
// loopback port and shuts it down when the test ends.
func New(tb testing.TB) *embednats.Server {
	tb.Helper()
	s, err := embednats.Start(embednats.Config{Port: -1, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// Connect opens a client connection to url that is closed when the test
// ends.
func Connect(tb testing.TB, url string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Cluster is a three-node cluster on loopback.
type Cluster struct {
	Nodes []*embednats.Server
	mu    sync.Mutex
	cfgs  []embednats.Config
}

// URLs is a comma-separated list of every node's client URL.
func (c *Cluster) URLs() string {
	var u []string
	for _, cfg := range c.cfgs {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", cfg.Port))
	}
	return strings.Join(u, ",")
}

// Stop shuts node i down (simulating a crash of that node).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Nodes[i] != nil {
		c.Nodes[i].Shutdown()
		c.Nodes[i] = nil
	}
}

// Restart starts node i again on its old ports and data.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := embednats.Start(c.cfgs[i])
	if err != nil {
		tb.Fatal(err)
	}
	c.Nodes[i] = s
}

// NewCluster starts a three-node JetStream cluster on loopback and waits
// until JetStream has a meta leader.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c := &Cluster{Nodes: make([]*embednats.Server, 3)}
	client := make([]int, 3)
	routes := make([]int, 3)
	for i := range 3 {
		var err error
		if client[i], err = embednats.FreePort(); err != nil {
			tb.Fatal(err)
		}
		if routes[i], err = embednats.FreePort(); err != nil {
			tb.Fatal(err)
		}
	}
	var rs []string
	for _, p := range routes {
		rs = append(rs, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	base := tb.TempDir()
	for i := range 3 {
		c.cfgs = append(c.cfgs, embednats.Config{
			Port: client[i], StoreDir: filepath.Join(base, fmt.Sprint(i)),
			Name: fmt.Sprintf("n%d", i), ClusterName: "loadpool-test",
			ClusterPort: routes[i], Routes: rs,
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() { c.Nodes[i], errs[i] = embednats.Start(c.cfgs[i]) })
	}
	wg.Wait()
	tb.Cleanup(func() {
		for i := range c.Nodes {
			c.Stop(i)
		}
	})
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := waitMetaLeader(c.URLs(), 30*time.Second); err != nil {
		tb.Fatal(err)
	}
	if err := c.waitPeers(3, 30*time.Second); err != nil {
		tb.Fatal(err)
	}
	return c
}

// waitPeers polls until the meta leader sees n JetStream peers online with
// current stats (what placing a stream with n replicas needs).
func (c *Cluster) waitPeers(n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		for _, s := range c.Nodes {
			if s != nil && len(s.JetStreamClusterPeers()) >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embednats: the cluster did not see %d JetStream peers within %s", n, within)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
}

// waitMetaLeader polls until JetStream answers account info through the
// cluster, which needs an elected meta leader.
func waitMetaLeader(urls string, within time.Duration) error {
	nc, err := nats.Connect(urls)
	if err != nil {
		return fmt.Errorf("embednats: connect to the cluster: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embednats: the cluster elected no JetStream meta leader within %s: %w", within, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
}
