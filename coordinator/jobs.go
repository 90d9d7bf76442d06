package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nuid"
)

// Limits of job.list and job.cancel.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
	maxReasonLen     = 1024
)

// errIDConflict: the id is taken by a job with another spec.
var errIDConflict = errors.New("id conflict")

// submit accepts a job for an enrolled computer. The writes are ordered so
// that a crash anywhere loses nothing and leaves nothing stuck for ever:
//
//  1. lock the computer (vcl_computers create), then read its enrolment:
//     not enrolled (404), in maintenance (409) or fields that differ from
//     the enrolment (400) release the lock again. Reading after the lock
//     sees the end of the job that held it before (its taint), so a used
//     computer is never skipped. A crash here leaves a lock without a
//     record: a resubmit with the same id takes it again, and the sweeper
//     frees it after repairAfter.
//  2. create the record, state queued (vcl_jobs create), with the enrolled
//     computer the requests carry. From here the job is accepted; a crash
//     leaves it queued and the sweeper launches it.
//  3. mark the computer reloading (vcl_inventory compare-and-set); the
//     sweeper repairs a crash before it from the record.
//  4. dispatch load(1) with Msg-Id <job>.1.load, then CAS queued->loading.
//     A crash in between is repaired like 2 (the re-dispatch deduplicates),
//     and a result arriving while the record still says queued is applied
//     as the load of attempt 1.
func (c *Coordinator) submit(ctx context.Context, data []byte) (messages.JobRecord, error) {
	id, spec, err := decodeSubmit(data)
	if err != nil {
		return messages.JobRecord{}, err
	}
	if err := spec.Image.CheckPollFloor("image", c.cfg.MinPoll); err != nil {
		return messages.JobRecord{}, badInput(err)
	}
	if rec, _, err := c.read(ctx, id); err == nil {
		return same(rec, spec)
	} else if !errors.Is(err, errUnknownJob) {
		return messages.JobRecord{}, err
	}
	if e, ok := c.inv.get(spec.Computer.Name); ok {
		// Refuse a bad job before the lock says busy (from the index;
		// the enrolment is read again once the lock is held).
		if err := refusal(e, spec.Computer); err != nil {
			return messages.JobRecord{}, err
		}
	}
	if err := c.lockComputer(ctx, spec.Computer.Name, id); err != nil {
		return messages.JobRecord{}, err
	}
	e, err := c.resolve(ctx, spec.Computer)
	if err != nil {
		c.release(ctx, spec.Computer.Name, id)
		return messages.JobRecord{}, err
	}
	now := time.Now().UTC()
	enrolled := e.Computer
	rec := messages.JobRecord{ID: id, State: messages.StateQueued, Attempt: 1, MaxAttempts: spec.MaxAttempts,
		Spec: spec, Steps: []messages.StepRecord{}, Created: now, Updated: now, StepDeadline: now.Add(c.cfg.StepCap),
		Enrolled: &enrolled, ForceReload: forceReload(e, spec.Image.Name)}
	rev, err := c.write(ctx, rec, 0)
	if errors.Is(err, errConflict) {
		if rec, _, err = c.read(ctx, id); err != nil {
			return messages.JobRecord{}, err
		}
		return same(rec, spec)
	}
	if err != nil {
		return messages.JobRecord{}, err
	}
	c.log.Info("job accepted", "job", id, "computer", spec.Computer.Name, "image", spec.Image.Name, "force_reload", rec.ForceReload)
	if c.hookBeforeHold != nil && c.hookBeforeHold(rec) != nil {
		return rec, nil // a test's crash between the record and the inventory
	}
	c.holdComputer(ctx, spec.Computer.Name, id)
	launched, err := c.launch(ctx, rec, rev)
	if err != nil {
		c.log.Warn("job accepted but not dispatched yet (the sweeper retries)", "job", id, "err", err)
		return rec, nil
	}
	return launched, nil
}

// decodeSubmit decodes a job.submit body: the job's id (generated when
// absent) and its normalized spec without the id, as records keep it.
func decodeSubmit(data []byte) (string, messages.JobSpec, error) {
	spec, err := messages.DecodeJobSpec(data)
	if err != nil {
		return "", messages.JobSpec{}, badInput(err)
	}
	id := spec.ID
	if id == "" {
		id = nuid.Next()
	}
	spec.ID = ""
	return id, spec, nil
}

// same answers a resubmission: the stored job when the spec matches.
func same(rec messages.JobRecord, spec messages.JobSpec) (messages.JobRecord, error) {
	if !bytes.Equal(messages.Encode(rec.Spec), messages.Encode(spec)) {
		return messages.JobRecord{}, fmt.Errorf("%w: id %s is already used by a job with a different spec (state %s): choose another id or resubmit the same spec", errIDConflict, rec.ID, rec.State)
	}
	return rec, nil
}

// launch dispatches the load of a queued job and records it as loading.
func (c *Coordinator) launch(ctx context.Context, rec messages.JobRecord, rev uint64) (messages.JobRecord, error) {
	for range maxCASRounds {
		if rec.State != messages.StateQueued {
			return rec, nil
		}
		now := time.Now().UTC()
		next := rec
		next.State, next.Updated, next.StepDeadline = messages.StateLoading, now, now.Add(c.cfg.StepCap)
		if err := c.dispatch(ctx, request(next, messages.StepLoad)); err != nil {
			return rec, err
		}
		// The event goes out with the request, before the record is
		// written: a fast worker's result can be applied before this write
		// (which then loses its compare-and-set), and the watcher must
		// still see the dispatch first. Its Msg-Id makes a repeat harmless.
		msg := fmt.Sprintf("attempt %d: load dispatched to %s", next.Attempt, computerOf(next).Provisioner)
		c.event(ctx, next, messages.StepLoad, msg, fmt.Sprintf("%s.%d.load.dispatch", next.ID, next.Attempt))
		_, err := c.write(ctx, next, rev)
		if errors.Is(err, errConflict) {
			if rec, rev, err = c.read(ctx, rec.ID); err != nil {
				return rec, err
			}
			if rec.State == messages.StateCanceled {
				// canceled before it was marked loading: the abort may have
				// gone out before our request; say it again.
				c.abort(ctx, rec.ID, 0, rec.Error)
			}
			continue
		}
		if err != nil {
			return rec, err
		}
		return next, nil
	}
	return rec, fmt.Errorf("job %s: gave up after %d lost compare-and-set rounds", rec.ID, maxCASRounds)
}

func (c *Coordinator) get(ctx context.Context, data []byte) (messages.JobRecord, error) {
	id, _, err := decodeID(data, false)
	if err != nil {
		return messages.JobRecord{}, err
	}
	rec, _, err := c.read(ctx, id)
	return rec, err
}

func decodeID(data []byte, cancel bool) (string, string, error) {
	var r messages.GetRequest
	if err := messages.Decode(data, &r, true); err != nil {
		return "", "", badInput(err)
	}
	if r.ID == "" {
		return "", "", badInput(errors.New(`id: is required ({"id": "<job id>"})`))
	}
	if err := messages.ValidJobID("id", r.ID); err != nil {
		return "", "", badInput(err)
	}
	if r.Reason != "" && !cancel {
		return "", "", badInput(errors.New("reason: only job.cancel takes a reason"))
	}
	if len(r.Reason) > maxReasonLen {
		return "", "", badInput(fmt.Errorf("reason: must be at most %d bytes, not %d", maxReasonLen, len(r.Reason)))
	}
	return r.ID, r.Reason, nil
}

func (c *Coordinator) list(ctx context.Context, data []byte) (messages.ListReply, error) {
	var r messages.ListRequest
	if len(bytes.TrimSpace(data)) > 0 {
		if err := messages.Decode(data, &r, true); err != nil {
			return messages.ListReply{}, badInput(err)
		}
	}
	if r.State != "" && !messages.ValidState(r.State) {
		return messages.ListReply{}, badInput(fmt.Errorf("state: must be one of %s, not %q", strings.Join(messages.States, ", "), r.State))
	}
	if r.Limit < 0 || r.Limit > MaxListLimit {
		return messages.ListReply{}, badInput(fmt.Errorf("limit: must be between 1 and %d (0 means %d), not %d", MaxListLimit, DefaultListLimit, r.Limit))
	}
	if r.Limit == 0 {
		r.Limit = DefaultListLimit
	}
	before, err := decodeAfter(r.After)
	if err != nil {
		return messages.ListReply{}, err
	}
	return c.listPage(ctx, r, before)
}

// cancelJob ends a live job as canceled: CAS, abort to the workers,
// release of the computer, event. A job that has already ended is
// returned unchanged (no error): cancel is idempotent.
func (c *Coordinator) cancelJob(ctx context.Context, data []byte) (messages.JobRecord, error) {
	id, reason, err := decodeID(data, true)
	if err != nil {
		return messages.JobRecord{}, err
	}
	if reason == "" {
		reason = "canceled on request"
	}
	for range maxCASRounds {
		rec, rev, err := c.read(ctx, id)
		if err != nil || messages.Terminal(rec.State) {
			return rec, err
		}
		next := rec
		next.State, next.Updated, next.StepDeadline = messages.StateCanceled, time.Now().UTC(), time.Time{}
		next.Error = "canceled: " + reason
		if _, err := c.write(ctx, next, rev); errors.Is(err, errConflict) {
			continue
		} else if err != nil {
			return rec, err
		}
		c.abort(ctx, id, 0, reason)
		if c.jobEnded(ctx, next) == nil {
			c.release(ctx, rec.Spec.Computer.Name, id)
		}
		c.event(ctx, next, "", "canceled: "+reason, id+".cancel")
		c.log.Info("job canceled", "job", id, "reason", reason)
		return next, nil
	}
	return messages.JobRecord{}, fmt.Errorf("job %s: gave up after %d lost compare-and-set rounds", id, maxCASRounds)
}
