package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxCASRounds bounds the re-read/re-decide loop of one change.
const maxCASRounds = 50

// currentStep is the step whose result a live job waits for. A queued job
// waits for the load of attempt 1 (its request may already be out).
func currentStep(rec messages.JobRecord) string {
	if rec.State == messages.StatePostloading {
		return messages.StepPostload
	}
	return messages.StepLoad
}

type verdict int

const (
	verdictApply verdict = iota
	verdictStale
	verdictDuplicate
)

// classify says what res means for rec: the result of the running step,
// a duplicate of one already in the history, or a stale one (an older
// attempt, another step, an ended job).
func classify(rec messages.JobRecord, res messages.Result) verdict {
	for _, s := range rec.Steps {
		if s.Attempt == res.Attempt && s.Step == res.Step {
			return verdictDuplicate
		}
	}
	if messages.Terminal(rec.State) || res.Attempt != rec.Attempt || res.Step != currentStep(rec) {
		return verdictStale
	}
	return verdictApply
}

// decide is the attempt loop of VCL's new.pm as a pure function: the
// record after res. When the job is still live, its next request is
// request(next, currentStep(next)).
func decide(rec messages.JobRecord, res messages.Result, now time.Time, stepCap time.Duration) messages.JobRecord {
	next := rec
	next.Steps = append(slices.Clone(rec.Steps), res.Record())
	next.Updated = now
	next.StepDeadline = time.Time{}
	switch {
	case res.Outcome == messages.OutcomeReady && res.Step == messages.StepLoad:
		next.State = messages.StatePostloading
		// A loader that does not say is taken to have reimaged the computer.
		next.Reloaded = res.Reloaded == nil || *res.Reloaded
		next.StepDeadline = now.Add(stepCap)
	case res.Outcome == messages.OutcomeReady:
		next.State = messages.StateReady
		next.Error = ""
	case res.Outcome == messages.OutcomeRetry && rec.Attempt < rec.MaxAttempts:
		next.State = messages.StateLoading
		next.Attempt++
		next.Reloaded = false
		next.StepDeadline = now.Add(stepCap)
	case res.Outcome == messages.OutcomeRetry:
		next.State = messages.StateFailed
		next.Error = fmt.Sprintf("gave up after %d attempts; last: %s said retry: %s", rec.MaxAttempts, res.Step, res.Detail)
	default:
		next.State = messages.StateFailed
		next.Error = fmt.Sprintf("attempt %d: %s failed and loading again will not help: %s", res.Attempt, res.Step, res.Detail)
	}
	return next
}

// request is the body of rec's step of its current attempt.
func request(rec messages.JobRecord, step string) messages.Request {
	r := messages.Request{JobID: rec.ID, Attempt: rec.Attempt, Step: step,
		Computer: computerOf(rec), Image: rec.Spec.Image, Reload: rec.Spec.Reload,
		Deadline: rec.StepDeadline}
	if rec.ForceReload || rec.Attempt > 1 {
		// A tainted computer, or a retry: "retry" means load the image
		// again, so a later attempt never keeps the guest that failed.
		r.Reload = messages.ReloadAlways
	}
	if step == messages.StepPostload {
		r.Reloaded = rec.Reloaded
		if k := newestLearnedKey(rec); k != nil && r.Computer.HostKey == "" {
			// An earlier attempt of this job reimaged the computer and
			// learned its key since the enrolment was read: a post-load
			// after a skipped load must expect that key, not the older one.
			r.Computer.LearnedHostKey = k
		}
	}
	return r
}

// newestLearnedKey is the host key the job's last post-load that learned
// one reported (nil: none did).
func newestLearnedKey(rec messages.JobRecord) *messages.LearnedHostKey {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		if k := rec.Steps[i].LearnedHostKey; k != nil {
			return k
		}
	}
	return nil
}

func requestID(r messages.Request) string {
	return fmt.Sprintf("%s.%d.%s", r.JobID, r.Attempt, r.Step)
}

// describe is the sentence of the event that res caused, given the record
// after it.
func describe(res messages.Result, after messages.JobRecord) string {
	s := fmt.Sprintf("attempt %d: %s %s: %s", res.Attempt, res.Step, res.Outcome, res.Detail)
	switch after.State {
	case messages.StatePostloading:
		return s + "; postload dispatched to " + after.Spec.Image.OSFamily
	case messages.StateLoading:
		return fmt.Sprintf("%s; starting attempt %d of %d, load dispatched to %s", s, after.Attempt, after.MaxAttempts, computerOf(after).Provisioner)
	case messages.StateReady:
		return s + "; job ready"
	case messages.StateCanceled:
		return s + "; job " + after.Error
	}
	return s + "; job failed: " + after.Error
}

// startDispatch sends a step request to its pool without waiting for its
// acknowledgement (dispatched waits for it), deduplicated by a Msg-Id so
// that re-publishing after a crash sends nothing twice.
func (c *Coordinator) startDispatch(ctx context.Context, req messages.Request) pending {
	p := req.Pool()
	if err := c.ensurePool(ctx, req.Step, p); err != nil {
		return pending{err: err}
	}
	req.Learned = c.stats(req.Image.Name, req.Computer.Type, req.Step)
	msg := &nats.Msg{Subject: c.sub.Request(req.Step, p), Data: messages.Encode(req)}
	return c.publish("request", msg, jetstream.WithMsgID(requestID(req)))
}

// dispatched waits for startDispatch's publish; repeated: JetStream had
// that request already (its Msg-Id, within pool.DuplicateWindow).
func (c *Coordinator) dispatched(ctx context.Context, p pending, req messages.Request) (repeated bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	ack, err := p.wait(ctx)
	if err != nil {
		return false, fmt.Errorf("dispatch %s of job %s attempt %d to %s: %w", req.Step, req.JobID, req.Attempt, req.Pool(), err)
	}
	c.log.Debug("dispatched", "job", req.JobID, "attempt", req.Attempt, "step", req.Step, "pool", req.Pool())
	return ack.Duplicate, nil
}

// poolRecheck is how long ensurePool trusts that a pool's consumer
// exists: the server removes one nobody pulled from for its
// InactiveThreshold, and the next dispatch makes it again.
const poolRecheck = time.Minute

// ensurePool creates (or binds to) a pool's consumer, at most once per
// poolRecheck per pool and process. The consumer expires after
// requestLife without a worker (pool.Consumer.InactiveThreshold).
func (c *Coordinator) ensurePool(ctx context.Context, step, p string) error {
	key := step + "/" + p
	c.poolMu.Lock()
	at, done := c.pools[key]
	c.poolMu.Unlock()
	if done && time.Since(at) < poolRecheck {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	pc := c.cfg.Settings.Consumer(c.sub, step, p)
	pc.InactiveThreshold = c.cfg.requestLife()
	if n, ok := c.cfg.PoolMaxAckPending[c.sub.Consumer(step, p)]; ok {
		pc.MaxAckPending = n
	}
	if _, err := pc.Ensure(ctx, c.js, false); err != nil {
		return fmt.Errorf("pool consumer for %s %s: %w", step, p, err)
	}
	c.poolMu.Lock()
	c.pools[key] = time.Now()
	c.poolMu.Unlock()
	return nil
}

// apply applies one step result to its job with compare-and-set: read,
// classify, decide, write; on a lost race re-read and re-decide. Only the
// winner of the write dispatches the next request (Msg-Id
// <job>.<attempt>.<step>), so a request is never out before the record
// says so. The caller acknowledges the result after apply returns: a
// crash between the write and the dispatch redelivers the result, which is
// then a duplicate of the record's last step; with redelivered set, apply
// repeats the effects of that transition (dispatch, event, lock release),
// which JetStream's Msg-Id deduplication and the lock's revision check
// make idempotent. It reports whether this call changed the record.
func (c *Coordinator) apply(ctx context.Context, res messages.Result, redelivered bool) (bool, error) {
	for range maxCASRounds {
		rec, rev, cached, err := c.current(ctx, res.JobID)
		if err != nil {
			return false, err
		}
		v := classify(rec, res)
		if cached && (v != verdictApply || redelivered) {
			// This process's copy may be behind: only a won
			// compare-and-set proves it current, so anything but a
			// fresh result is decided on the leader's record.
			c.records.drop(res.JobID, rev)
			continue
		}
		switch v {
		case verdictStale:
			c.log.Debug("stale result ignored", "job", res.JobID, "attempt", res.Attempt, "step", res.Step, "state", rec.State, "current_attempt", rec.Attempt)
			return false, nil
		case verdictDuplicate:
			c.log.Debug("duplicate result ignored", "job", res.JobID, "attempt", res.Attempt, "step", res.Step)
			if last := rec.Steps[len(rec.Steps)-1]; redelivered && last.Attempt == res.Attempt && last.Step == res.Step {
				return false, c.effects(ctx, rec, res)
			}
			return false, nil
		}
		next := decide(rec, res, time.Now().UTC(), c.cfg.StepCap)
		if _, err := c.write(ctx, next, rev); errors.Is(err, errConflict) {
			continue
		} else if err != nil {
			return false, err
		}
		c.observe(ctx, rec, next, res)
		if c.hookAfterWrite != nil {
			if err := c.hookAfterWrite(next); err != nil {
				return true, err
			}
		}
		return true, c.effectsRetried(ctx, next, res)
	}
	return false, fmt.Errorf("job %s: gave up after %d lost compare-and-set rounds", res.JobID, maxCASRounds)
}

// effectsRetried runs effects, trying again twice on a failure (a
// JetStream publish lost in a leader election), so that a path without
// redelivery (the sweeper, an advisory) rarely leaves a step undispatched.
func (c *Coordinator) effectsRetried(ctx context.Context, rec messages.JobRecord, res messages.Result) error {
	var err error
	for i, wait := range []time.Duration{0, 200 * time.Millisecond, time.Second} {
		if i > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(wait):
			}
		}
		if err = c.effects(ctx, rec, res); err == nil {
			return nil
		}
	}
	return err
}

// effects runs what follows a recorded transition: the request of the
// running step (if the job is live) and the event, sent together; for an
// ended job first the computer's new state (which frees it), then the
// event (in that order: on one server a client that sees the event finds
// the computer free). All of it may run twice.
func (c *Coordinator) effects(ctx context.Context, rec messages.JobRecord, res messages.Result) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	live := rec.State == messages.StateLoading || rec.State == messages.StatePostloading
	var req messages.Request
	var sent, computer pending
	switch {
	case live:
		req = request(rec, currentStep(rec))
		sent = c.startDispatch(ctx, req)
	case messages.Terminal(rec.State):
		// A failure leaves the computer held; the sweeper records the end.
		computer, _ = c.jobEndedAsync(ctx, rec)
	}
	ev := c.event(rec, res.Step, describe(res, rec), fmt.Sprintf("%s.%d.%s.result", rec.ID, res.Attempt, res.Step))
	var err error
	if live {
		_, err = c.dispatched(ctx, sent, req)
	}
	c.settle(ctx, computer, ev)
	if err != nil {
		return err
	}
	lvl := "job moved on"
	if !live {
		lvl = "job ended"
	}
	c.log.Info(lvl, "job", rec.ID, "state", rec.State, "attempt", rec.Attempt, "step", res.Step, "outcome", res.Outcome)
	return nil
}

// event publishes a job event (JetStream, deduplicated by id) and leaves
// it in flight: settle logs a failure, never fatal: the record is the
// truth.
func (c *Coordinator) event(rec messages.JobRecord, step, text, id string) pending {
	ev := messages.Event{JobID: rec.ID, Time: time.Now().UTC(), Attempt: rec.Attempt, Step: step,
		Source: c.cfg.Name, Message: text, State: rec.State, ETA: c.eta(rec)}
	msg := &nats.Msg{Subject: c.sub.Event(rec.ID), Data: messages.Encode(ev)}
	return c.emit(msg, id)
}

// emit publishes an event into the events stream without asking for an
// acknowledgement (core NATS; the stream stores it, deduplicated by its
// Msg-Id): events are the operators' and clients' view, the records are
// the truth, and a lost event was only ever logged.
func (c *Coordinator) emit(m *nats.Msg, id string) pending {
	m.Header = nats.Header{jetstream.MsgIDHeader: []string{id}}
	if err := c.nc.PublishMsg(m); err != nil {
		c.log.Warn("event not published", "subject", m.Subject, "err", err)
	}
	return pending{}
}

// abort tells workers (core NATS) to stop work on attempts up to attempt
// (0: all) of a job.
func (c *Coordinator) abort(_ context.Context, id string, attempt int, reason string) {
	body := messages.Encode(messages.Abort{JobID: id, Attempt: attempt, Reason: reason})
	if err := c.nc.Publish(c.sub.Abort(id), body); err != nil {
		c.log.Warn("abort not published", "job", id, "err", err)
	}
}
