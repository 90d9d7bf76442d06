package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// followRepoll is how long Follow waits for a live event before it looks
// in the stream again (an event may come while it reconnects).
const followRepoll = 2 * time.Second

// Follow calls each with the job's events in order, from the first, until
// each returns false (Follow returns nil) or ctx ends. It reads the events
// stream one message at a time by subject (a stream message get: no
// consumer, so a user that may only read can follow; a consumer could be
// made to deliver anywhere) and waits for the next one on a live
// subscription to the job's event subject.
func (c *Client) Follow(ctx context.Context, id string, each func(messages.Event) bool) error {
	subject := c.sub.Event(id)
	live := make(chan struct{}, 1)
	sub, err := c.nc.Subscribe(subject, func(*nats.Msg) {
		select {
		case live <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("follow job %s: subscribe to %s: %w", id, subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, c.sub.EventStream())
	if err != nil {
		return fmt.Errorf("follow job %s: stream %s: %w", id, c.sub.EventStream(), err)
	}
	for seq := uint64(1); ; {
		msg, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err == nil {
			seq = msg.Sequence + 1
			var ev messages.Event
			if messages.Decode(msg.Data, &ev, false) == nil && !each(ev) {
				return nil
			}
			continue
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("follow job %s: read %s: %w", id, c.sub.EventStream(), err)
		}
		select {
		case <-live:
		case <-time.After(followRepoll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
