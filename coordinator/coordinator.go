package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/loadpool/loadpool/internal/service"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/metrics"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultStepCap = 4 * time.Hour
	// opTimeout bounds every single NATS/KV call the coordinator makes.
	opTimeout = 10 * time.Second
	// resultAckWait is the lease of a result on the shared result consumer:
	// a coordinator that dies while applying one gives it to another.
	resultAckWait = 30 * time.Second
)

// Config configures a Coordinator. Zero values take the defaults.
type Config struct {
	Subjects messages.Subjects
	// StepCap is the generous safety cap of one step (default 4h).
	StepCap time.Duration
	// SweepInterval is how often the one sweeper checks caps; default
	// min(StepCap/10, 1m), at least 100ms.
	SweepInterval time.Duration
	// Settings are the pools' (package pool): the consumer settings a
	// pool's consumer gets when the coordinator is the first to create it,
	// and the replicas of the streams and KV buckets (1 single node, 3
	// cluster). The per-process worker fields are not used.
	Settings pool.Config
	// Handlers bounds the requests and results this process handles at
	// once (default 64); one job's changes stay serialized by the
	// compare-and-set.
	Handlers int
	// JobRetention is how long a job record stays in KV after its last
	// change (default 30 days; at least twice StepCap, so a live job,
	// changed at least once per step, never expires). It applies when the
	// coordinator creates the bucket.
	JobRetention time.Duration
	// Evidence makes the object store <prefix>_evidence (in the
	// background; a failure is a warning), where loaders save the
	// screenshots of waits that ran out. Its NATS user needs the rights
	// to the bucket's stream OBJ_<prefix>_evidence.
	Evidence bool
	// PoolMaxAckPending is the pool-wide limit of named pools, by
	// consumer name ("loader-xcat": 10, xCAT's throttle; "os-linux":
	// 10000): it wins over Settings.MaxAckPending. The coordinator makes
	// the consumers, so it applies them.
	PoolMaxAckPending map[string]int
	// MinPoll is the shortest poll an image's wait_profile may ask for
	// (default messages.MinPoll, 1s; tests of scaled-down time set less).
	MinPoll time.Duration
	// Durations makes the KV bucket <prefix>_durations (in the
	// background; a failure is a warning) and learns from it: the
	// durations of ready steps per image, computer type and step, an ETA
	// in events and StepStats in requests once DefaultETASamples are known.
	Durations bool
	// Name identifies this coordinator in events and logs (default host/pid).
	Name   string
	Logger *slog.Logger
}

// minRequestLife bounds requestLife from below (above the streams'
// duplicate window, and no churn of consumers under short test caps).
const minRequestLife = time.Hour

// requestLife is how long a request may wait in its stream and a pool's
// consumer may go unpulled before the server removes it: twice the step
// cap (the cap ends a step first), at least minRequestLife.
func (c Config) requestLife() time.Duration { return max(2*c.StepCap, minRequestLife) }

// DefaultJobRetention keeps job records for 30 days after their last change.
const DefaultJobRetention = 30 * 24 * time.Hour

func (c Config) withDefaults() Config {
	if c.MinPoll <= 0 {
		c.MinPoll = messages.MinPoll
	}
	if c.StepCap <= 0 {
		c.StepCap = DefaultStepCap
	}
	if c.JobRetention <= 0 {
		c.JobRetention = DefaultJobRetention
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = min(c.StepCap/10, time.Minute)
	}
	c.SweepInterval = max(c.SweepInterval, 100*time.Millisecond)
	if c.Handlers <= 0 {
		c.Handlers = 64
	}
	c.Settings = c.Settings.WithDefaults()
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Coordinator is one process of the stateless coordinator service. Any
// number of them may run against the same NATS: all state is in KV.
type Coordinator struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger
	sub messages.Subjects

	jobs      jetstream.KeyValue
	inventory jetstream.KeyValue
	index     *index
	records   *records
	inv       *invIndex
	durs      durations

	poolMu sync.Mutex
	pools  map[string]time.Time // pool consumer ensured at (poolRecheck)

	// in-flight guard: handlers enter while the coordinator serves.
	mu       sync.Mutex
	stopping bool
	started  bool
	inflight sync.WaitGroup
	slots    chan struct{} // bounds concurrent handlers
	work     chan func()   // results and requests, taken by the Handlers goroutines of handle

	// hookAfterWrite, set by tests only, runs after a result's record is
	// written and before its effects; an error makes apply fail there
	// (as a crash would).
	hookAfterWrite func(messages.JobRecord) error
	// hookBeforeLaunch, set by tests only, runs after submit held the
	// computer and wrote the record, before it dispatches the load; an
	// error ends the submit there (as a crash would).
	hookBeforeLaunch func(messages.JobRecord) error

	svc      *service.Service
	consume  jetstream.ConsumeContext
	advisory []*nats.Subscription
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	stopOnce sync.Once
}

// New checks cfg and returns a Coordinator; Start makes it serve.
func New(nc *nats.Conn, cfg Config) (*Coordinator, error) {
	if nc == nil {
		return nil, errors.New("coordinator: a NATS connection is required")
	}
	sub, err := messages.NewSubjects(cfg.Subjects.Prefix)
	if err != nil {
		return nil, fmt.Errorf("coordinator: Subjects.%w", err)
	}
	cfg.Subjects = sub
	cfg = cfg.withDefaults()
	if cfg.JobRetention < 2*cfg.StepCap {
		return nil, fmt.Errorf("coordinator: JobRetention (%s) must be at least twice StepCap (%s), or live jobs could expire", cfg.JobRetention, cfg.StepCap)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(opTimeout), jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	return &Coordinator{
		nc: nc, js: js, cfg: cfg, sub: cfg.Subjects,
		log:   cfg.Logger.With("coordinator", cfg.Name),
		index: newIndex(), records: newRecords(), inv: newInvIndex(), pools: map[string]time.Time{}, durs: durations{m: map[string]messages.Durations{}, stats: map[string]*messages.StepStats{}, pending: map[string][]time.Duration{}},
		slots: make(chan struct{}, cfg.Handlers), work: make(chan func()),
	}, nil
}

// Start creates the streams, the KV buckets, the result consumer, the
// advisory subscriptions, the sweeper and the micro service, and returns
// once the coordinator serves. ctx bounds the set-up only; Stop stops.
func (c *Coordinator) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started || c.stopping {
		c.mu.Unlock()
		return errors.New("coordinator: Start called twice or after Stop")
	}
	c.started = true
	c.mu.Unlock()
	bg, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if err := c.setup(ctx, bg); err != nil {
		c.Stop()
		return err
	}
	metrics.AddSource(c, c.stateCounts)
	c.log.Info("coordinator serving", "prefix", c.sub.Prefix, "step_cap", c.cfg.StepCap)
	return nil
}

func (c *Coordinator) setup(ctx, bg context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := untilPlaced(sctx, func() error {
		return (pool.Topology{Subjects: c.sub, Replicas: c.cfg.Settings.Replicas, RequestMaxAge: c.cfg.requestLife()}).Ensure(sctx, c.js)
	})
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	err = untilPlaced(sctx, func() (err error) {
		c.jobs, err = c.bucket(sctx, c.sub.JobsBucket(), "loadpool job records", c.cfg.JobRetention)
		return err
	})
	if err != nil {
		return err
	}
	err = untilPlaced(sctx, func() (err error) {
		c.inventory, err = c.bucket(sctx, c.sub.InventoryBucket(), "loadpool lab inventory: enrolled computers", 0)
		return err
	})
	if err != nil {
		return err
	}
	if err := c.watch(sctx, bg); err != nil {
		return err
	}
	for range c.cfg.Handlers {
		c.bg.Go(func() { c.handle(bg) })
	}
	if err := c.startResults(sctx); err != nil {
		return err
	}
	if err := c.startAdvisories(); err != nil {
		return err
	}
	c.bg.Go(func() { c.sweeper(bg) })
	if c.cfg.Durations {
		c.bg.Go(func() { c.startDurations(bg) })
	}
	if c.cfg.Evidence {
		c.bg.Go(func() { c.ensureEvidence(bg) }) // optional: the coordinator serves without it
	}
	if err := c.startService(); err != nil {
		return err
	}
	// The server has our subscriptions once the flush returns: serving.
	if err := c.nc.FlushWithContext(sctx); err != nil {
		return fmt.Errorf("coordinator: flush subscriptions: %w", err)
	}
	return nil
}

// untilPlaced runs f again while JetStream says it cannot place or serve a
// stream yet (a cluster still forming, a leader election: error codes
// 10005 no suitable peers, 10008 cluster not available, HTTP-like 503),
// until ctx ends. Other errors (permissions, bad config) return at once.
func untilPlaced(ctx context.Context, f func() error) error {
	for {
		err := f()
		var api *jetstream.APIError
		if err == nil || !errors.As(err, &api) || !(api.ErrorCode == 10005 || api.ErrorCode == 10008 || api.Code == 503) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// bucket creates or binds a KV bucket. A ttl expires records that long
// after their last change, leaving a delete marker (for a minute) so the
// watchers' indexes drop them too.
func (c *Coordinator) bucket(ctx context.Context, name, desc string, ttl time.Duration) (jetstream.KeyValue, error) {
	marker := time.Duration(0)
	if ttl > 0 {
		marker = time.Minute
	}
	// Create, or bind to an existing bucket: never update one that exists
	// (an update racing with a watcher's consumer creation is a data race
	// inside nats-server 2.15.2).
	kv, err := c.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: name, Description: desc, History: 1,
		Storage: jetstream.FileStorage, Replicas: c.cfg.Settings.Replicas,
		TTL: ttl, LimitMarkerTTL: marker,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = c.js.KeyValue(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("coordinator: create KV bucket %s: %w", name, err)
	}
	return kv, nil
}

// Stop stops serving: the micro service and the result consumer stop
// taking work, in-flight handlers finish, background goroutines end. It
// is idempotent and safe before Start.
func (c *Coordinator) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopping = true
		c.mu.Unlock()
		metrics.RemoveSource(c)
		if c.svc != nil {
			c.svc.Stop() // drains: the requests it received are answered
		}
		if c.consume != nil {
			c.consume.Stop()
			<-c.consume.Closed()
		}
		for _, s := range c.advisory {
			_ = s.Unsubscribe()
		}
		c.inflight.Wait()
		if c.cancel != nil {
			c.cancel()
		}
		c.bg.Wait()
		c.log.Info("coordinator stopped")
	})
}

// handle runs work until bg ends: long-lived goroutines, whose stacks
// have grown once, rather than a new goroutine per result.
func (c *Coordinator) handle(bg context.Context) {
	for {
		select {
		case f := <-c.work:
			f()
		case <-bg.Done():
			return
		}
	}
}

// enter registers an in-flight handler; false once stopping.
func (c *Coordinator) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return false
	}
	c.inflight.Add(1)
	return true
}

func (c *Coordinator) leave() { c.inflight.Done() }
