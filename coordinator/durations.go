package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultETASamples is how many past ready steps of an (image, computer
// type, step) it takes before events carry an ETA and requests carry the
// learned durations.
const DefaultETASamples = 5

// durations is the coordinator's copy of the durations bucket, fed by a
// watcher; nil kv until the bucket is made (then nothing is learned).
type durations struct {
	mu sync.Mutex
	kv jetstream.KeyValue
	m  map[string]messages.Durations
}

// startDurations makes (or binds) the durations bucket and follows it, in
// the background: jobs run without it.
func (c *Coordinator) startDurations(bg context.Context) {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	var kv jetstream.KeyValue
	err := untilPlaced(ctx, func() (err error) {
		kv, err = c.bucket(ctx, c.sub.DurationsBucket(), "loadpool durations of past steps per image, computer type and step", 0)
		return err
	})
	var w jetstream.KeyWatcher
	if err == nil {
		w, err = kv.WatchAll(bg)
	}
	if err != nil {
		if bg.Err() == nil {
			c.log.Warn("no durations bucket: events carry no ETA and timeouts are not learned (grant this coordinator's NATS user the KV bucket "+c.sub.DurationsBucket()+")", "err", err)
		}
		return
	}
	defer func() { _ = w.Stop() }()
	c.durs.mu.Lock()
	c.durs.kv = kv
	c.durs.mu.Unlock()
	for e := range w.Updates() {
		if e == nil || e.Operation() != jetstream.KeyValuePut {
			continue
		}
		var d messages.Durations
		if json.Unmarshal(e.Value(), &d) == nil {
			c.durs.mu.Lock()
			c.durs.m[e.Key()] = d
			c.durs.mu.Unlock()
		}
	}
}

// learn adds the duration of a ready step to its key (compare-and-set; a
// lost sample is only logged).
func (c *Coordinator) learn(ctx context.Context, rec messages.JobRecord, res messages.Result) {
	c.durs.mu.Lock()
	kv := c.durs.kv
	c.durs.mu.Unlock()
	if kv == nil || res.Outcome != messages.OutcomeReady || res.Finished.Before(res.Started) || res.Started.IsZero() {
		return
	}
	key := messages.DurationsKey(rec.Spec.Image.Name, computerOf(rec).Type, res.Step)
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for range 10 {
		var d messages.Durations
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			c.log.Debug("duration not learned", "key", key, "err", err)
			return
		default:
			_ = json.Unmarshal(e.Value(), &d)
		}
		d.Add(res.Finished.Sub(res.Started))
		if e == nil {
			_, err = kv.Create(ctx, key, messages.Encode(d))
		} else {
			_, err = kv.Update(ctx, key, messages.Encode(d), e.Revision())
		}
		if err == nil || !isRevisionErr(err) {
			if err != nil {
				c.log.Debug("duration not learned", "key", key, "err", err)
			}
			return
		}
	}
}

// stats are the learned durations of (image, type, step); nil with fewer
// than DefaultETASamples.
func (c *Coordinator) stats(image, computerType, step string) *messages.StepStats {
	c.durs.mu.Lock()
	defer c.durs.mu.Unlock()
	return c.durs.m[messages.DurationsKey(image, computerType, step)].Stats(DefaultETASamples)
}

// eta is the ETA of a live job's running step, begun when the record last
// changed (the transition that dispatched it); nil when ended or unknown.
func (c *Coordinator) eta(rec messages.JobRecord) *messages.StepStats {
	if messages.Terminal(rec.State) {
		return nil
	}
	s := c.stats(rec.Spec.Image.Name, computerOf(rec).Type, currentStep(rec))
	if s != nil {
		s.Started = rec.Updated
	}
	return s
}
