package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/loadpool/loadpool/metrics"
	"github.com/loadpool/loadpool/webui"
	"github.com/nats-io/nats.go"
)

// Where `all` and `dev` serve the metrics and the web page unless
// LOADPOOL_METRICS_ADDR / LOADPOOL_UI_ADDR say otherwise (the other
// commands serve them only when told, so that several processes on one
// host do not collide).
const (
	DefaultMetricsAddr = "127.0.0.1:9464"
	DefaultUIAddr      = "127.0.0.1:9465"
)

// observeDefaults fills the addresses of command name: a variable set in
// the environment (even to empty: off) wins; unset, `all` and `dev`
// listen on the defaults.
func (c *Config) observeDefaults(name string) {
	if name != "all" && name != "dev" {
		return
	}
	if _, set := os.LookupEnv("LOADPOOL_METRICS_ADDR"); !set {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if _, set := os.LookupEnv("LOADPOOL_UI_ADDR"); !set {
		c.UIAddr = DefaultUIAddr
	}
}

// observers are the metrics endpoint and the web page of one process.
type observers struct {
	metrics *metrics.Server
	ui      *webui.Server
}

// startObservers serves the metrics (when MetricsAddr is set) and, in a
// process with a coordinator, the web page (when UIAddr is set). A
// default address that is taken falls back to a free port with a warning.
func startObservers(ctx context.Context, cfg Config, log *slog.Logger, nc *nats.Conn, withCoordinator bool) (*observers, error) {
	o := &observers{}
	if cfg.MetricsAddr != "" {
		s, err := metrics.Serve(fallback(cfg.MetricsAddr, DefaultMetricsAddr, "metrics", log))
		if err != nil {
			return nil, err
		}
		o.metrics = s
		log.Info("metrics served", "url", s.URL())
	}
	if cfg.UIAddr == "" || !withCoordinator {
		return o, nil
	}
	ui, err := webui.New(nc, webui.Config{Subjects: cfg.subjects(), Evidence: cfg.Evidence, Logger: log.With("role", "ui")})
	if err == nil {
		err = ui.Serve(fallback(cfg.UIAddr, DefaultUIAddr, "web page", log))
	}
	if err != nil {
		o.Stop()
		return nil, err
	}
	o.ui = ui
	log.Info("web page served", "url", ui.URL())
	return o, nil
}

// fallback is addr, or a free port on its host when addr is the default
// and taken.
func fallback(addr, def, what string, log *slog.Logger) string {
	if addr != def {
		return addr
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		_ = ln.Close()
		return addr
	}
	host, _, _ := net.SplitHostPort(addr)
	log.Warn("default port taken: a free port is used instead", "what", what, "addr", addr)
	return net.JoinHostPort(host, "0")
}

// print writes where to look, for a person at a terminal.
func (o *observers) print(w io.Writer) {
	if o.ui != nil {
		fmt.Fprintf(w, "Web page: %s   (jobs, computers, each job's timeline)\n", o.ui.URL())
	}
	if o.metrics != nil {
		fmt.Fprintf(w, "Metrics:  %s   (Prometheus text format)\n", o.metrics.URL())
	}
}

// Stop stops the page, then the metrics; idempotent.
func (o *observers) Stop() {
	if o.ui != nil {
		o.ui.Stop()
	}
	if o.metrics != nil {
		o.metrics.Stop()
	}
}
