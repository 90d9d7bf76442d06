package pool

import (
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/loadpool/loadpool/messages"
)

// Defaults of Config, in one place.
const (
	DefaultConcurrency = 8
	DefaultGrace       = 30 * time.Second
	DefaultReplicas    = 1
)

// Config is a pool's settings: the durable consumer's (lease, deliveries,
// pool-wide limit), the streams' replicas, and one worker process's own
// (id, concurrency, grace). Loaders, OS workers and the coordinator take
// the same type; the command fills it from LOADPOOL_* once (the envconfig
// tags). A zero field means its default (WithDefaults).
type Config struct {
	// WorkerID names this process in results and events (default host/pid).
	WorkerID string `envconfig:"WORKER_ID"`
	// Concurrency is this process's limit on steps at once.
	Concurrency int `envconfig:"CONCURRENCY"`
	// AckWait is the lease of a request; a worker extends it while it works.
	AckWait time.Duration `envconfig:"ACK_WAIT"`
	// MaxDeliver is how often a request is delivered before JetStream gives
	// up on it (the coordinator then turns it into a retry of the job).
	MaxDeliver int `envconfig:"MAX_DELIVER"`
	// MaxAckPending is the pool-wide limit on requests in work (xCAT's
	// throttle). Zero: the pool's own default (DefaultMaxAckPending, or a
	// provisioner's).
	MaxAckPending int `envconfig:"MAX_ACK_PENDING"`
	// Grace is how long a stopping worker lets running steps finish.
	Grace time.Duration `envconfig:"GRACE"`
	// Replicas of the streams and buckets (1 on one node, 3 on a cluster).
	Replicas int `envconfig:"REPLICAS"`
	// BindOnly: a worker only binds to its pool's consumer, waiting until
	// the coordinator has made it, and never creates or changes a stream or
	// a consumer (loadpool sets it whenever LOADPOOL_NATS_URL names a
	// server: deploy/accounts.conf lets no worker create either). Off, a
	// worker that comes first makes them (an embedded server, tests).
	BindOnly bool `ignored:"true"`
}

// WithDefaults fills the zero fields (MaxAckPending stays zero: the pool's
// own default applies when the consumer is made).
func (c Config) WithDefaults() Config {
	if c.WorkerID == "" {
		c.WorkerID = DefaultWorkerID()
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	return c
}

// Validate checks the settings; each error names the LOADPOOL_ variable to
// fix. Zero fields are valid (their defaults apply).
func (c Config) Validate() error {
	switch {
	case c.WorkerID != "" && (len(c.WorkerID) > 128 || strings.ContainsFunc(c.WorkerID, unicode.IsControl)):
		return fmt.Errorf("LOADPOOL_WORKER_ID must be at most 128 characters without control characters")
	case c.Concurrency < 0 || c.Concurrency > 100000:
		return fmt.Errorf("LOADPOOL_CONCURRENCY must be 1 to 100000, not %d", c.Concurrency)
	case c.AckWait != 0 && (c.AckWait < 100*time.Millisecond || c.AckWait > time.Hour):
		return fmt.Errorf("LOADPOOL_ACK_WAIT must be 100ms to 1h, not %s", c.AckWait)
	case c.MaxDeliver < 0 || c.MaxDeliver > 100:
		return fmt.Errorf("LOADPOOL_MAX_DELIVER must be 1 to 100, not %d", c.MaxDeliver)
	case c.MaxAckPending < 0 || c.MaxAckPending > 1000000:
		return fmt.Errorf("LOADPOOL_MAX_ACK_PENDING must be 1 to 1000000 (or unset), not %d", c.MaxAckPending)
	case c.Grace < 0:
		return fmt.Errorf("LOADPOOL_GRACE must not be negative, not %s", c.Grace)
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("LOADPOOL_REPLICAS must be 1 to 5, not %d", c.Replicas)
	}
	return nil
}

// Consumer is the durable consumer of pool name for step, with these
// settings.
func (c Config) Consumer(s messages.Subjects, step, name string) Consumer {
	return Consumer{Subjects: s, Step: step, Pool: name, AckWait: c.AckWait, MaxDeliver: c.MaxDeliver, MaxAckPending: c.MaxAckPending}
}

// DefaultWorkerID is host/pid.
func DefaultWorkerID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "worker"
	}
	return fmt.Sprintf("%s/%d", h, os.Getpid())
}
