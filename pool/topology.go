package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of a pool's durable consumer. The coordinator and the project's
// workers create the consumer with the same settings, whoever comes first.
const (
	DefaultAckWait       = 30 * time.Second
	DefaultMaxDeliver    = 5
	DefaultMaxAckPending = 1000
	// EventMaxAge is how long VCL_EVENTS keeps a job's events.
	EventMaxAge = 7 * 24 * time.Hour
	// DuplicateWindow is how long JetStream remembers message ids.
	DuplicateWindow = 10 * time.Minute
	// DefaultInactiveThreshold: a pool consumer nobody pulled from this
	// long is removed by the server (a pool name nobody serves leaves no
	// consumer behind); the coordinator makes it again at the pool's next
	// dispatch.
	DefaultInactiveThreshold = 24 * time.Hour
)

// Topology creates the streams of design.md with one replica count.
type Topology struct {
	Subjects messages.Subjects
	// Replicas of every stream (1 on one node, 3 on a cluster).
	Replicas int
	// RequestMaxAge is how long a request may wait in a request stream
	// (the coordinator: twice its step cap, above it so that the cap, not
	// the stream, ends a step; a request for a pool nobody serves goes
	// then). Zero: requests wait for ever.
	RequestMaxAge time.Duration
}

// Streams returns the configurations of the four streams.
func (t Topology) Streams() []jetstream.StreamConfig {
	s := t.Subjects
	r := max(t.Replicas, 1)
	wq := func(name string, subjects ...string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Subjects: subjects, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Replicas: r, MaxMsgSize: messages.MaxBodyBytes,
			Duplicates: DuplicateWindow, Discard: jetstream.DiscardOld,
		}
	}
	requests := func(name string, subjects ...string) jetstream.StreamConfig {
		c := wq(name, subjects...)
		c.MaxAge = t.RequestMaxAge
		return c
	}
	return []jetstream.StreamConfig{
		requests(s.LoadStream(), s.LoadRequest("*")),
		requests(s.PostloadStream(), s.PostloadRequest("*")),
		wq(s.ResultStream(), s.LoadResult(), s.PostloadResult()),
		{
			Name: s.EventStream(), Subjects: []string{s.Events()}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: r, MaxMsgSize: messages.MaxBodyBytes,
			MaxAge: EventMaxAge, Duplicates: time.Minute,
		},
	}
}

// Ensure creates the streams that are missing and updates those whose
// settings differ from this configuration. A stream that already matches
// is left alone: an update racing with a consumer's creation is a data
// race inside nats-server 2.15.2, so no process updates without need.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range t.Streams() {
		_, err := js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = update(ctx, js, cfg)
		}
		if err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

func update(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, want.Name)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	have := info.Config
	if slices.Equal(have.Subjects, want.Subjects) && have.Replicas == want.Replicas && have.MaxMsgSize == want.MaxMsgSize &&
		have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates && have.Retention == want.Retention {
		return nil
	}
	_, err = js.UpdateStream(ctx, want)
	return err
}

// Consumer describes the durable consumer of one pool.
type Consumer struct {
	Subjects messages.Subjects
	Step     string // messages.StepLoad or messages.StepPostload
	Pool     string // provisioner or OS family
	// AckWait is the lease; MaxDeliver the deliveries before JetStream
	// gives up (the coordinator then turns the request into a retry);
	// MaxAckPending the pool-wide concurrency limit. Zero: the defaults.
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int
	// InactiveThreshold removes the consumer once nobody pulled from it
	// this long. Zero: DefaultInactiveThreshold.
	InactiveThreshold time.Duration
}

// Config returns the consumer's configuration.
func (p Consumer) Config() jetstream.ConsumerConfig {
	ackWait := p.AckWait
	if ackWait <= 0 {
		ackWait = DefaultAckWait
	}
	maxDeliver := p.MaxDeliver
	if maxDeliver <= 0 {
		maxDeliver = DefaultMaxDeliver
	}
	pending := p.MaxAckPending
	if pending <= 0 {
		pending = DefaultMaxAckPending
	}
	inactive := p.InactiveThreshold
	if inactive <= 0 {
		inactive = DefaultInactiveThreshold
	}
	name := p.Subjects.Consumer(p.Step, p.Pool)
	return jetstream.ConsumerConfig{
		Name: name, Durable: name,
		Description:   fmt.Sprintf("loadpool %s workers of pool %s", p.Step, p.Pool),
		FilterSubject: p.Subjects.Request(p.Step, p.Pool),
		AckPolicy:     jetstream.AckExplicitPolicy, AckWait: ackWait,
		MaxDeliver: maxDeliver, MaxAckPending: pending,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: inactive,
	}
}

// Ensure creates the consumer if it does not exist and binds to it if it
// does. With update set, an existing consumer is changed to this
// configuration (an operator changing the pool-wide limit).
func (p Consumer) Ensure(ctx context.Context, js jetstream.JetStream, update bool) (jetstream.Consumer, error) {
	if err := messages.ValidToken("pool", p.Pool); err != nil {
		return nil, err
	}
	stream := p.Subjects.RequestStream(p.Step)
	cfg := p.Config()
	if update {
		return js.CreateOrUpdateConsumer(ctx, stream, cfg)
	}
	// Bind first: a worker whose user may not create consumers binds to
	// the one the coordinator made.
	if c, err := js.Consumer(ctx, stream, cfg.Durable); err == nil {
		return c, nil
	}
	c, err := js.CreateConsumer(ctx, stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return js.Consumer(ctx, stream, cfg.Durable)
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}
