package stepworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Runtime pulls one pool's requests, runs a Handler for each, keeps the
// leases and publishes the results.
type Runtime struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg Config
	h   Handler
	log *slog.Logger

	sem      chan struct{}
	mu       sync.Mutex
	running  map[*task]struct{}
	abortSub *nats.Subscription

	stopFetch context.CancelFunc
	base      context.Context
	cancelAll context.CancelCauseFunc
	fetchDone chan struct{}
	tasks     sync.WaitGroup
	keeper    sync.WaitGroup
	stopOnce  sync.Once
	started   bool
}

// task is one running step; it reports the step's events (Event).
type task struct {
	r            *Runtime
	msg          jetstream.Msg
	req          messages.Request
	ctx          context.Context
	cancel       context.CancelCauseFunc
	stopDeadline context.CancelFunc // nil: the request has no deadline
	log          *slog.Logger
	started      time.Time
	lastRenew    time.Time // under Runtime.mu
	lost         bool      // under Runtime.mu: the lease loss is counted
}

// New checks cfg and returns a Runtime that is not yet started.
func New(nc *nats.Conn, cfg Config, h Handler) (*Runtime, error) {
	if nc == nil || h == nil {
		return nil, errors.New("stepworker: a NATS connection and a handler are required")
	}
	if cfg.Step != messages.StepLoad && cfg.Step != messages.StepPostload {
		return nil, fmt.Errorf("stepworker: step must be %q or %q, not %q", messages.StepLoad, messages.StepPostload, cfg.Step)
	}
	if err := messages.ValidToken("pool", cfg.Pool); err != nil {
		return nil, fmt.Errorf("stepworker: %w", err)
	}
	if err := cfg.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("stepworker: %w", err)
	}
	cfg.Settings = cfg.Settings.WithDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("stepworker: %w", err)
	}
	return &Runtime{
		nc: nc, js: js, cfg: cfg, h: h,
		log:     cfg.Logger.With("step", cfg.Step, "pool", cfg.Pool, "worker", cfg.Settings.WorkerID),
		sem:     make(chan struct{}, cfg.Settings.Concurrency),
		running: map[*task]struct{}{},
	}, nil
}

// Config returns the effective configuration (defaults filled).
func (r *Runtime) Config() Config { return r.cfg }

// Start binds the pool's consumer (see bind: with Settings.BindOnly a
// consumer that does not exist yet is waited for in the background, with a
// log line), subscribes to aborts and starts fetching. ctx bounds the
// set-up only.
func (r *Runtime) Start(ctx context.Context) error {
	if r.started {
		return errors.New("stepworker: already started")
	}
	cons, err := r.bind(ctx)
	switch {
	case err == nil:
		r.leaseFrom(ctx, cons)
	case !errors.Is(err, errNoConsumer):
		return fmt.Errorf("stepworker: bind to the %s consumer of pool %s: %w", r.cfg.Step, r.cfg.Pool, err)
	}
	r.abortSub, err = r.nc.Subscribe(r.cfg.Subjects.AbortAll(), r.onAbort)
	if err != nil {
		return fmt.Errorf("stepworker: subscribe to aborts: %w", err)
	}
	r.base, r.cancelAll = context.WithCancelCause(context.Background())
	fetchCtx, stop := context.WithCancel(r.base)
	r.stopFetch = stop
	r.fetchDone = make(chan struct{})
	r.started = true
	go r.serve(fetchCtx, cons)
	r.log.Info("worker started", "concurrency", r.cfg.Settings.Concurrency, "ack_wait", r.cfg.Settings.AckWait)
	return nil
}

// Running is the number of steps running now.
func (r *Runtime) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// Stop stops fetching, lets running steps finish for the grace period,
// then cancels them with ErrShutdown (their requests go back to the pool).
// It is idempotent and returns when every step has ended.
func (r *Runtime) Stop() {
	r.stopOnce.Do(func() {
		if !r.started {
			return
		}
		r.stopFetch()
		<-r.fetchDone
		done := make(chan struct{})
		go func() { r.tasks.Wait(); close(done) }()
		t := time.NewTimer(r.cfg.Settings.Grace)
		select {
		case <-done:
			t.Stop()
		case <-t.C:
			r.log.Warn("grace period over: cancelling running steps", "running", r.Running())
			r.cancelAll(ErrShutdown)
			<-done
		}
		r.cancelAll(ErrShutdown)
		r.keeper.Wait()
		_ = r.abortSub.Unsubscribe()
		r.log.Info("worker stopped")
	})
}

func (r *Runtime) fetchLoop(ctx context.Context, cons jetstream.Consumer) {
	defer close(r.fetchDone)
	for ctx.Err() == nil {
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1 + r.freeSlots()
		for i := 1; i < free; i++ {
			r.sem <- struct{}{}
		}
		got := r.fetch(ctx, cons, free)
		for i := got; i < free; i++ {
			<-r.sem
		}
	}
}

func (r *Runtime) freeSlots() int { return cap(r.sem) - len(r.sem) }

// fetch pulls up to n messages and starts a task for each; it returns how
// many it started (each holds one slot of sem).
func (r *Runtime) fetch(ctx context.Context, cons jetstream.Consumer, n int) int {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		r.fetchFailed(ctx, err)
		return 0
	}
	got := 0
	for msg := range batch.Messages() {
		got++
		r.tasks.Add(1)
		go r.handle(msg)
	}
	if err := batch.Error(); err != nil && got == 0 {
		r.fetchFailed(ctx, err)
	}
	return got
}

func (r *Runtime) fetchFailed(ctx context.Context, err error) {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return
	}
	r.log.Warn("fetch failed; trying again", "err", err)
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
