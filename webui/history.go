package webui

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// maxHistory bounds the events one job page replays.
const maxHistory = 2000

// history reads a job's past events from the event stream (an ordered
// consumer on <prefix>.event.<job>, from the first), oldest first, up to
// maxHistory.
func history(ctx context.Context, js jetstream.JetStream, sub messages.Subjects, job string) ([]messages.Event, error) {
	cons, err := js.OrderedConsumer(ctx, sub.EventStream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{sub.Event(job)}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	left := min(int(info.NumPending), maxHistory)
	out := make([]messages.Event, 0, left)
	for left > 0 {
		batch, err := cons.Fetch(min(left, 200), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var ev messages.Event
			if json.Unmarshal(m.Data(), &ev) == nil {
				out = append(out, ev)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return out, err
		}
		if got == 0 {
			break
		}
		left -= got
	}
	return out, nil
}
