package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/lmittmann/tint"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
)

// Config is every LOADPOOL_* setting the commands share. Provisioner- and
// OS-specific settings (LOADPOOL_VSPHERE_*, LOADPOOL_XCAT_*, LOADPOOL_SSH_*)
// are read by the command that needs them.
type Config struct {
	// NATSURL is an existing NATS server or cluster (comma-separated
	// URLs). Empty: run an embedded nats-server with JetStream.
	NATSURL      string `envconfig:"NATS_URL"`
	NATSCreds    string `envconfig:"NATS_CREDS"`
	NATSUser     string `envconfig:"NATS_USER"`
	NATSPassword string `envconfig:"NATS_PASSWORD"`
	// NATSInboxPrefix: default _INBOX.<NATSUser>, the only inbox
	// deploy/accounts.conf lets a user read.
	NATSInboxPrefix string `envconfig:"NATS_INBOX_PREFIX"`
	// TLS: the CA that signed the server's certificate, and this
	// client's certificate and key when the server verifies clients.
	NATSCA   string `envconfig:"NATS_CA"`
	NATSCert string `envconfig:"NATS_CERT"`
	NATSKey  string `envconfig:"NATS_KEY"`
	// Embedded server: where it listens and keeps its data.
	NATSHost string `envconfig:"NATS_HOST" default:"127.0.0.1"`
	NATSPort int    `envconfig:"NATS_PORT" default:"4222"`
	DataDir  string `envconfig:"DATA_DIR" default:".loadpool"`

	Prefix string `envconfig:"PREFIX" default:"vcl"`

	// The pools' settings, one set for every role (LOADPOOL_CONCURRENCY,
	// _ACK_WAIT, _MAX_DELIVER, _MAX_ACK_PENDING, _GRACE, _REPLICAS,
	// _WORKER_ID); unset means package pool's defaults.
	pool.Config

	// Coordinator.
	StepCap      time.Duration `envconfig:"STEP_CAP" default:"4h"`
	JobRetention time.Duration `envconfig:"JOB_RETENTION" default:"720h"`

	// `all` runs these pools beside the coordinator.
	Loaders    []string `envconfig:"LOADERS" default:"lab"`
	OSFamilies []string `envconfig:"OS_FAMILIES" default:"linux"`

	LabInventory string `envconfig:"LAB_INVENTORY"`

	// PoolMaxAckPending is the limit of named pools ("os-linux:10000,
	// loader-xcat:10"): it wins over MAX_ACK_PENDING and the built-in
	// limits (xCAT's 10), applied by the coordinator that creates the
	// pool's consumer.
	PoolMaxAckPending map[string]int `envconfig:"POOL_MAX_ACK_PENDING"`

	// Operators' view (observe.go): the Prometheus metrics of every
	// process and the coordinator's web page; host:port, empty is off.
	// Unset, `all` and `dev` listen on DefaultMetricsAddr and DefaultUIAddr
	// and the other commands not at all.
	MetricsAddr string `envconfig:"METRICS_ADDR"`
	UIAddr      string `envconfig:"UI_ADDR"`
	// Evidence: the coordinator makes the evidence bucket and loaders
	// write into it (deploy/ grants both).
	Evidence bool `envconfig:"EVIDENCE" default:"true"`
	// Durations: the coordinator learns step durations (ETA in events,
	// learned durations in requests). LearnTimeouts: OS workers raise a
	// post-load's answer wait to the learned p99 × LearnMargin, at most
	// LearnCap.
	Durations     bool          `envconfig:"DURATIONS" default:"true"`
	LearnTimeouts bool          `envconfig:"LEARN_TIMEOUTS"`
	LearnMargin   float64       `envconfig:"LEARN_MARGIN" default:"1.5"`
	LearnCap      time.Duration `envconfig:"LEARN_CAP" default:"2h"`

	LogLevel  string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"auto"`
}

// loadConfig reads LOADPOOL_* and checks what can be checked up front.
func loadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("loadpool", &c); err != nil {
		return c, fmt.Errorf("configuration: %v", err)
	}
	if err := refusePlaceholder("LOADPOOL_NATS_PASSWORD", c.NATSPassword); err != nil {
		return c, err
	}
	// On a real server the coordinator makes streams and consumers; workers
	// only bind (deploy/accounts.conf lets them do nothing else).
	c.Config.BindOnly = c.NATSURL != ""
	if _, err := messages.NewSubjects(c.Prefix); err != nil {
		return c, fmt.Errorf("LOADPOOL_PREFIX: %v", err)
	}
	for _, p := range append(append([]string{}, c.Loaders...), c.OSFamilies...) {
		if err := messages.ValidToken("LOADPOOL_LOADERS/LOADPOOL_OS_FAMILIES entry", p); err != nil {
			return c, err
		}
	}
	if err := c.Config.Validate(); err != nil {
		return c, err
	}
	for name, n := range c.PoolMaxAckPending {
		if !strings.HasPrefix(name, "loader-") && !strings.HasPrefix(name, "os-") {
			return c, fmt.Errorf("LOADPOOL_POOL_MAX_ACK_PENDING: %q is not a pool: name its consumer, loader-<provisioner> or os-<family> (\"os-linux:10000,loader-xcat:10\")", name)
		}
		if err := messages.ValidToken("LOADPOOL_POOL_MAX_ACK_PENDING pool", name); err != nil {
			return c, err
		}
		if n < 1 || n > 1_000_000 {
			return c, fmt.Errorf("LOADPOOL_POOL_MAX_ACK_PENDING: %s must be 1 to 1000000, not %d", name, n)
		}
	}
	if c.StepCap < time.Second {
		return c, fmt.Errorf("LOADPOOL_STEP_CAP must be at least 1s, not %s", c.StepCap)
	}
	if c.JobRetention < 2*c.StepCap {
		return c, fmt.Errorf("LOADPOOL_JOB_RETENTION (%s) must be at least twice LOADPOOL_STEP_CAP (%s)", c.JobRetention, c.StepCap)
	}
	if c.NATSPort < 0 || c.NATSPort > 65535 {
		return c, fmt.Errorf("LOADPOOL_NATS_PORT must be 0 to 65535, not %d", c.NATSPort)
	}
	return c, nil
}

func (c Config) subjects() messages.Subjects { return messages.Subjects{Prefix: c.Prefix} }

func (c Config) natsDir() string { return filepath.Join(c.DataDir, "nats") }

// newLogger logs through tint on a terminal and JSON otherwise.
func newLogger(c Config) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("LOADPOOL_LOG_LEVEL must be debug, info, warn or error, not %q", c.LogLevel)
	}
	format := strings.ToLower(c.LogFormat)
	if format == "auto" {
		format = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(tint.NewTextHandler(os.Stderr, &tint.Options{Level: lvl, TimeFormat: time.TimeOnly})), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
	}
	return nil, fmt.Errorf("LOADPOOL_LOG_FORMAT must be auto, text or json, not %q", c.LogFormat)
}
