package embednats

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config says where an embedded server listens and keeps its data.
type Config struct {
	// Host and Port of the client listener; Port -1 picks a free port.
	Host string
	Port int
	// StoreDir is JetStream's data directory (required).
	StoreDir string
	// Name is the server name (default "loadpool").
	Name string
	// Cluster, when set, joins a cluster: ClusterPort and Routes.
	ClusterName string
	ClusterPort int
	Routes      []string
	// MaxPayload caps message size; 0 keeps nats-server's default (1 MiB).
	MaxPayload int32
	// Log routes nats-server's own log to stderr.
	Log bool
}

// Server is a running embedded nats-server.
type Server struct {
	*server.Server
}

// Start runs a server and waits until it accepts clients.
func Start(c Config) (*Server, error) {
	if c.StoreDir == "" {
		return nil, fmt.Errorf("embednats: StoreDir is required (JetStream keeps its data there)")
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Name == "" {
		c.Name = "loadpool"
	}
	opts := &server.Options{
		ServerName: c.Name, Host: c.Host, Port: c.Port,
		JetStream: true, StoreDir: c.StoreDir,
		NoLog: !c.Log, NoSigs: true, MaxPayload: c.MaxPayload,
	}
	if c.ClusterName != "" {
		opts.Cluster = server.ClusterOpts{Name: c.ClusterName, Host: c.Host, Port: c.ClusterPort}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embednats: route %q: %v", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embednats: %w", err)
	}
	if c.Log {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embednats: server on %s:%d did not start within 15s (is the port taken?)", c.Host, c.Port)
	}
	return &Server{s}, nil
}

// URL is the nats:// URL clients connect to.
func (s *Server) URL() string { return s.ClientURL() }

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.Server.Shutdown()
	s.WaitForShutdown()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
