package steptest

import (
	"context"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Subjects are the subjects of every Wire (the default prefix, "vcl").
var Subjects = messages.Subjects{Prefix: messages.DefaultPrefix}

// CallTimeout bounds each call to the server (stream set-up, publish, info).
const CallTimeout = 30 * time.Second

// Wire is an embedded NATS server with the streams, a publisher of
// requests and a reader of results.
type Wire struct {
	tb  testing.TB
	srv *embednats.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	res jetstream.Consumer
}

// New starts the server, creates the streams and the results consumer.
func New(tb testing.TB) *Wire {
	tb.Helper()
	srv := natstest.New(tb)
	nc := natstest.Connect(tb, srv.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	if err := (pool.Topology{Subjects: Subjects}).Ensure(ctx, js); err != nil {
		tb.Fatal(err)
	}
	res, err := js.CreateConsumer(ctx, Subjects.ResultStream(),
		jetstream.ConsumerConfig{Durable: "steptest", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		tb.Fatal(err)
	}
	return &Wire{tb: tb, srv: srv, nc: nc, js: js, res: res}
}

// URL is the server's client URL (for the workers' own connections).
func (w *Wire) URL() string { return w.srv.URL() }

// Conn is the wire's connection (closed when the test ends).
func (w *Wire) Conn() *nats.Conn { return w.nc }

// JetStream is the wire's JetStream context.
func (w *Wire) JetStream() jetstream.JetStream { return w.js }

// Publish sends req to its pool: the load subject of its provisioner, or
// the post-load subject of its image's OS family.
func (w *Wire) Publish(req messages.Request) {
	w.tb.Helper()
	pool := req.Computer.Provisioner
	if req.Step == messages.StepPostload {
		pool = req.Image.OSFamily
	}
	w.PublishRaw(Subjects.Request(req.Step, pool), messages.Encode(req))
}

// PublishRaw sends body to subject through JetStream, as it is.
func (w *Wire) PublishRaw(subject string, body []byte) {
	w.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	if _, err := w.js.Publish(ctx, subject, body); err != nil {
		w.tb.Fatalf("publish to %s: %v", subject, err)
	}
}

// Result waits for the next result, acks it and returns it decoded; it
// fails the test when none arrives within timeout or the body is not a
// valid result.
func (w *Wire) Result(timeout time.Duration) messages.Result {
	w.tb.Helper()
	msg, err := w.res.Next(jetstream.FetchMaxWait(timeout))
	if err != nil {
		w.tb.Fatalf("no result within %s: %v", timeout, err)
	}
	_ = msg.Ack()
	res, err := messages.DecodeResult(msg.Data())
	if err != nil {
		w.tb.Fatalf("bad result %s: %v", msg.Data(), err)
	}
	return res
}

// NoResult fails the test if a result arrives within d.
func (w *Wire) NoResult(d time.Duration) {
	w.tb.Helper()
	if msg, err := w.res.Next(jetstream.FetchMaxWait(d)); err == nil {
		w.tb.Fatalf("a result arrived within %s where none should: %s", d, msg.Data())
	}
}

// Pending is the number of messages stream holds (a work-queue stream
// holds the requests not yet acked or terminated).
func (w *Wire) Pending(stream string) uint64 {
	w.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		w.tb.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		w.tb.Fatal(err)
	}
	return info.State.Msgs
}
