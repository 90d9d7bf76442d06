package stepworker

import (
	"context"
	"errors"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go/jetstream"
)

// errNoConsumer: the pool's consumer, or its stream, does not exist yet.
var errNoConsumer = errors.New("the pool's consumer does not exist yet")

// A worker whose consumer does not exist yet tries again after
// bindFirstRetry, doubling up to bindMaxRetry.
const (
	bindFirstRetry = 50 * time.Millisecond
	bindMaxRetry   = 5 * time.Second
	bindTimeout    = 10 * time.Second
)

func (r *Runtime) poolConsumer() pool.Consumer {
	return pool.Consumer{Subjects: r.cfg.Subjects, Step: r.cfg.Step, Pool: r.cfg.Pool,
		AckWait: r.cfg.Settings.AckWait, MaxDeliver: r.cfg.Settings.MaxDeliver, MaxAckPending: r.cfg.Settings.MaxAckPending}
}

// bind binds to the pool's consumer. With Settings.BindOnly (every
// worker of a real installation) it never creates or changes a stream or a
// consumer: the coordinator makes them (the streams at start, a pool's
// consumer at the pool's first dispatch), and errNoConsumer says to wait.
// Without it, a worker that comes first makes the streams and the
// consumer, and UpdateConsumer applies this process's settings to it.
func (r *Runtime) bind(ctx context.Context) (jetstream.Consumer, error) {
	pc := r.poolConsumer()
	if err := messages.ValidToken("pool", pc.Pool); err != nil {
		return nil, err
	}
	if !r.cfg.Settings.BindOnly {
		if err := r.ensureStreams(ctx); err != nil {
			return nil, err
		}
		return pc.Ensure(ctx, r.js, r.cfg.UpdateConsumer)
	}
	if r.cfg.UpdateConsumer {
		r.log.Warn("the pool-wide limit is not applied: workers only bind to the pool's consumer; set LOADPOOL_MAX_ACK_PENDING on the coordinators")
	}
	c, err := r.js.Consumer(ctx, r.cfg.Subjects.RequestStream(r.cfg.Step), pc.Config().Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, errNoConsumer
	}
	return c, err
}

// ensureStreams creates the streams when the request stream is missing
// (not with BindOnly).
func (r *Runtime) ensureStreams(ctx context.Context) error {
	s := r.cfg.Subjects
	if _, err := r.js.Stream(ctx, s.RequestStream(r.cfg.Step)); err == nil {
		return nil
	}
	return (pool.Topology{Subjects: s, Replicas: r.cfg.Settings.Replicas}).Ensure(ctx, r.js)
}

// waitBind tries to bind until it does or ctx ends (false).
func (r *Runtime) waitBind(ctx context.Context) (jetstream.Consumer, bool) {
	stream, name := r.cfg.Subjects.RequestStream(r.cfg.Step), r.poolConsumer().Config().Durable
	r.log.Info("waiting for the pool's consumer: the coordinator creates it at the pool's first job (workers never do); retrying",
		"consumer", name, "stream", stream)
	wait := bindFirstRetry
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, bindTimeout)
		c, err := r.bind(bctx)
		cancel()
		switch {
		case err == nil:
			r.log.Info("bound to the pool's consumer", "consumer", name, "stream", stream)
			return c, true
		case ctx.Err() != nil:
			return nil, false
		case !errors.Is(err, errNoConsumer):
			r.log.Warn("cannot bind to the pool's consumer yet; retrying", "consumer", name, "stream", stream, "err", err)
		}
		wait = min(2*wait, bindMaxRetry)
	}
}

// serve binds (waiting when the consumer does not exist yet), takes the
// consumer's lease, keeps the leases and fetches until ctx ends.
func (r *Runtime) serve(ctx context.Context, cons jetstream.Consumer) {
	if cons == nil {
		var ok bool
		if cons, ok = r.waitBind(ctx); !ok {
			close(r.fetchDone)
			return
		}
		r.leaseFrom(ctx, cons)
	}
	r.keeper.Add(1)
	go r.keepLeases()
	r.fetchLoop(ctx, cons)
}

// leaseFrom takes the pool's lease from its consumer, whoever made it.
func (r *Runtime) leaseFrom(ctx context.Context, cons jetstream.Consumer) {
	ictx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	if info, err := cons.Info(ictx); err == nil && info.Config.AckWait > 0 {
		r.cfg.Settings.AckWait = info.Config.AckWait
	}
}
