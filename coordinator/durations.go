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

// durationsFlush is how long learned samples wait in memory before they
// are merged into the durations bucket: one compare-and-set per key per
// flush instead of one per ready step (every job of a lab shares a few
// keys, so per-step writes were a hot key and a decode of up to
// MaxDurationSamples samples per step).
const durationsFlush = 250 * time.Millisecond

// durations is the coordinator's copy of the durations bucket, fed by a
// watcher; nil kv until the bucket is made (then nothing is learned).
// Samples learned here wait in pending until the next flush; stats are
// computed once per change of a key, not per event or request.
type durations struct {
	mu      sync.Mutex
	kv      jetstream.KeyValue
	m       map[string]messages.Durations
	stats   map[string]*messages.StepStats
	pending map[string][]time.Duration
	order   []string // the keys of pending, in the order first learned
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
	c.bg.Go(func() { c.flushDurations(bg, kv) })
	for e := range w.Updates() {
		if e == nil || e.Operation() != jetstream.KeyValuePut {
			continue
		}
		var d messages.Durations
		if json.Unmarshal(e.Value(), &d) == nil {
			st := d.Stats(DefaultETASamples)
			c.durs.mu.Lock()
			c.durs.m[e.Key()] = d
			c.durs.stats[e.Key()] = st
			c.durs.mu.Unlock()
		}
	}
}

// learn keeps the duration of a ready step for the next flush.
func (c *Coordinator) learn(rec messages.JobRecord, res messages.Result) {
	if res.Outcome != messages.OutcomeReady || res.Finished.Before(res.Started) || res.Started.IsZero() {
		return
	}
	key := messages.DurationsKey(rec.Spec.Image.Name, computerOf(rec).Type, res.Step)
	c.durs.mu.Lock()
	defer c.durs.mu.Unlock()
	if c.durs.kv == nil {
		return
	}
	if _, ok := c.durs.pending[key]; !ok {
		c.durs.order = append(c.durs.order, key)
	}
	if len(c.durs.pending[key]) < messages.MaxDurationSamples {
		c.durs.pending[key] = append(c.durs.pending[key], res.Finished.Sub(res.Started))
	}
}

// flushDurations merges the pending samples into the bucket every
// durationsFlush, and once more when bg ends.
func (c *Coordinator) flushDurations(bg context.Context, kv jetstream.KeyValue) {
	t := time.NewTicker(durationsFlush)
	defer t.Stop()
	for {
		select {
		case <-bg.Done():
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			c.mergeDurations(ctx, kv)
			cancel()
			return
		case <-t.C:
			c.mergeDurations(bg, kv)
		}
	}
}

func (c *Coordinator) mergeDurations(ctx context.Context, kv jetstream.KeyValue) {
	c.durs.mu.Lock()
	pending, order := c.durs.pending, c.durs.order
	c.durs.pending, c.durs.order = map[string][]time.Duration{}, nil
	c.durs.mu.Unlock()
	for _, key := range order { // in the order first learned: a job's load before its post-load
		if err := mergeDurations(ctx, kv, key, pending[key]); err != nil {
			c.log.Debug("durations not learned", "key", key, "samples", len(pending[key]), "err", err)
		}
	}
}

// mergeDurations adds samples to key with compare-and-set (a lost race
// reads again, ten times at most).
func mergeDurations(ctx context.Context, kv jetstream.KeyValue, key string, samples []time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var err error
	for range 10 {
		var d messages.Durations
		e, gerr := kv.Get(ctx, key)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
		case gerr != nil:
			return gerr
		default:
			_ = json.Unmarshal(e.Value(), &d)
		}
		for _, s := range samples {
			d.Add(s)
		}
		if e == nil {
			_, err = kv.Create(ctx, key, messages.Encode(d))
		} else {
			_, err = kv.Update(ctx, key, messages.Encode(d), e.Revision())
		}
		if err == nil || !isRevisionErr(err) {
			return err
		}
	}
	return err
}

// stats are the learned durations of (image, type, step); nil with fewer
// than DefaultETASamples.
func (c *Coordinator) stats(image, computerType, step string) *messages.StepStats {
	c.durs.mu.Lock()
	defer c.durs.mu.Unlock()
	st := c.durs.stats[messages.DurationsKey(image, computerType, step)]
	if st == nil {
		return nil
	}
	cp := *st
	return &cp
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
