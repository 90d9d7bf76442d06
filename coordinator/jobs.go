package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
// that a crash anywhere loses nothing and leaves nothing stuck for ever;
// writes of one step are sent together and awaited together:
//
//  1. hold the computer (a compare-and-set of its enrolment in
//     vcl_inventory: reloading, job <id>; the enrolment is the lock) and
//     create the record, state loading at attempt 1, with the enrolled
//     computer the requests carry (vcl_jobs create), sent together, the
//     hold first. The hold is decided on the enrolment the index has: a
//     won compare-and-set proves it the latest, so the record's
//     force-reload decision saw the end of the job that held the computer
//     before (its taint) and a used computer is never skipped. A lost one
//     reads the leader's enrolment and decides again: another live job
//     holding it (409), maintenance or fields that differ from the
//     enrolment refuse the job (its record purged); a different
//     force-reload decision is written into the record. An id that exists
//     answers that job (or 409 for another spec) and gives back a hold it
//     took. From here the job is accepted.
//  2. dispatch load(1) with Msg-Id <job>.1.load together with its event.
//     A crash before it leaves a fresh record (loading, attempt 1, no
//     step): the sweeper sends the load again relaunchAfter later, once
//     it holds the computer (a job whose computer went to another job
//     meanwhile fails); JetStream drops the repeat of a load that went
//     out. A computer held by a job without a record is freed after
//     repairAfter.
//
// (A record born queued and moved to loading after the dispatch cost one
// write and one round trip more per job.)
func (c *Coordinator) submit(ctx context.Context, data []byte) (messages.JobRecord, error) {
	id, spec, err := decodeSubmit(data)
	if err != nil {
		return messages.JobRecord{}, err
	}
	if err := spec.Image.CheckPollFloor("image", c.cfg.MinPoll); err != nil {
		return messages.JobRecord{}, badInput(err)
	}
	name := spec.Computer.Name
	it, ok := c.inv.item(name)
	if !ok {
		// Not in the index (yet): the leader's enrolment, or 404.
		if it.e, it.rev, err = c.readComputer(ctx, name); err != nil {
			return messages.JobRecord{}, err
		}
	}
	check := func(e messages.Enrollment) error { return refusal(e, spec.Computer) }
	if err := check(it.e); err != nil {
		if rec, _, rerr := c.read(ctx, id); rerr == nil {
			return same(rec, spec) // a resubmission of a job that has begun
		}
		return messages.JobRecord{}, err
	}
	now := time.Now().UTC()
	rec := newRecord(id, spec, it.e, now, c.cfg.StepCap)
	// The hold goes out first: on one server a crash then leaves at worst
	// a computer held by a job without a record (freed after
	// repairAfter); a record without its hold (a cluster, or a crash
	// before the purge of a refused job) is launched only once the
	// relaunch holds the computer.
	h := c.startHold(it, id)
	body := messages.Encode(rec)
	c.index.own.expect(id, body, entryOf(rec, 0))
	sent := c.publish("record of job "+id, &nats.Msg{Subject: c.jobSubject(id), Data: body},
		jetstream.WithExpectLastSequencePerSubject(0))
	rev, err := c.created(ctx, sent, rec)
	c.index.own.settled(id, body)
	e, before, computer, taken, herr := c.finishHold(ctx, h, name, id, check)
	defer c.settle(ctx, computer)
	if err != nil {
		existing, err := c.createLost(ctx, name, id, err, taken, before, e)
		if err != nil {
			return messages.JobRecord{}, err
		}
		return same(existing, spec)
	}
	if herr != nil {
		// Refused (busy, maintenance, another enrolment) or not known to
		// be held: the job is not accepted (a hold that did land is freed
		// after repairAfter: its job has no record). A retry of the same
		// submit is safe.
		c.unrecord(ctx, id, rev)
		return messages.JobRecord{}, herr
	}
	c.log.Info("job accepted", "job", id, "computer", name, "image", spec.Image.Name, "force_reload", rec.ForceReload)
	if c.hookBeforeLaunch != nil && c.hookBeforeLaunch(rec) != nil {
		return rec, nil // a test's crash between the hold and the launch
	}
	if again := newRecord(id, spec, e, now, c.cfg.StepCap); again.ForceReload != rec.ForceReload || !reflect.DeepEqual(again.Enrolled, rec.Enrolled) {
		// The index was behind: the record takes the enrolment the hold won on.
		if _, err = c.write(ctx, again, rev); err != nil {
			c.log.Warn("job accepted but not dispatched yet (the sweeper retries)", "job", id, "err", err)
			return rec, nil
		}
		rec = again
	}
	if _, err := c.firstLoad(ctx, rec); err != nil {
		c.log.Warn("job accepted but its load not dispatched yet (the sweeper retries)", "job", id, "err", err)
		return rec, nil
	}
	c.reabortIfEnded(ctx, id)
	return rec, nil
}

// reabortIfEnded follows a first load's dispatch: a job canceled
// meanwhile may have had its abort go out before the request; it is sent
// again.
func (c *Coordinator) reabortIfEnded(ctx context.Context, id string) {
	if c.index.isLive(id) {
		return
	}
	if cur, _, err := c.read(ctx, id); err == nil && cur.State == messages.StateCanceled {
		c.abort(ctx, id, 0, cur.Error)
	}
}

// firstLoad dispatches the load of attempt 1 of a job whose record says
// loading, with its event; repeated: JetStream had that request already.
func (c *Coordinator) firstLoad(ctx context.Context, rec messages.JobRecord) (repeated bool, err error) {
	req := request(rec, messages.StepLoad)
	sent := c.startDispatch(ctx, req)
	msg := fmt.Sprintf("attempt %d: load dispatched to %s", rec.Attempt, computerOf(rec).Provisioner)
	ev := c.event(rec, messages.StepLoad, msg, fmt.Sprintf("%s.%d.load.dispatch", rec.ID, rec.Attempt))
	repeated, err = c.dispatched(ctx, sent, req)
	c.settle(ctx, ev)
	return repeated, err
}

// createLost follows a record create that failed after the hold was
// decided (before: the enrolment it was decided on; took: the enrolment
// held): the record of that id when it exists (a resubmission), and the
// hold given back unless a live job of this id names this computer (it is
// that job's hold: a resubmission racing its first submit on another
// coordinator).
func (c *Coordinator) createLost(ctx context.Context, name, id string, err error, taken bool, before, took messages.Enrollment) (messages.JobRecord, error) {
	var existing messages.JobRecord
	if errors.Is(err, errConflict) {
		var rerr error
		if existing, _, rerr = c.read(ctx, id); rerr != nil {
			err = rerr
		} else {
			err = nil
		}
	}
	if taken && (err != nil || messages.Terminal(existing.State) || computerOf(existing).Name != name) {
		c.unhold(ctx, name, id, before, took)
	}
	return existing, err
}

// newRecord is the record of a new job for the enrolled computer e: born
// loading at attempt 1 (its load is dispatched once it is stored).
func newRecord(id string, spec messages.JobSpec, e messages.Enrollment, now time.Time, stepCap time.Duration) messages.JobRecord {
	enrolled := e.Computer
	return messages.JobRecord{ID: id, State: messages.StateLoading, Attempt: 1, MaxAttempts: spec.MaxAttempts,
		Spec: spec, Steps: []messages.StepRecord{}, Created: now, Updated: now, StepDeadline: now.Add(stepCap),
		Enrolled: &enrolled, ForceReload: forceReload(e, spec.Image.Name)}
}

func (c *Coordinator) jobSubject(id string) string { return "$KV." + c.sub.JobsBucket() + "." + id }

// created waits for the create of rec's record sent by submit; an id
// whose last write is a delete marker (a purged or expired job) is
// created over it (kv.Create), and an id in use is errConflict.
func (c *Coordinator) created(ctx context.Context, p pending, rec messages.JobRecord) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	ack, err := p.wait(ctx)
	if err != nil && isWrongLastSeq(err) {
		return c.write(ctx, rec, 0)
	}
	if err != nil {
		return 0, fmt.Errorf("write %s/%s to KV: %w", c.sub.JobsBucket(), rec.ID, err)
	}
	c.index.putJob(rec, ack.Sequence)
	c.records.put(rec, ack.Sequence)
	return ack.Sequence, nil
}

// unrecord purges the record of a job submit refused after creating it.
func (c *Coordinator) unrecord(ctx context.Context, id string, rev uint64) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := c.jobs.Purge(ctx, id, jetstream.LastRevision(rev)); err != nil {
		c.log.Warn("record of a refused job not purged (the sweeper launches it once it holds the computer)", "job", id, "err", err)
		return
	}
	c.records.drop(id, rev)
	c.index.dropJob(id, rev)
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

// launch dispatches the load of a queued job and records it as loading
// (records of coordinators before the first load's record was born
// loading, and tests' crashes).
func (c *Coordinator) launch(ctx context.Context, rec messages.JobRecord, rev uint64) (messages.JobRecord, error) {
	for range maxCASRounds {
		if rec.State != messages.StateQueued {
			return rec, nil
		}
		now := time.Now().UTC()
		next := rec
		next.State, next.Updated, next.StepDeadline = messages.StateLoading, now, now.Add(c.cfg.StepCap)
		// The event goes out with the request, before the record is
		// written: a fast worker's result can be applied before this write
		// (which then loses its compare-and-set), and the watcher must
		// still see the dispatch first. Its Msg-Id makes a repeat harmless.
		req := request(next, messages.StepLoad)
		sent := c.startDispatch(ctx, req)
		msg := fmt.Sprintf("attempt %d: load dispatched to %s", next.Attempt, computerOf(next).Provisioner)
		ev := c.event(next, messages.StepLoad, msg, fmt.Sprintf("%s.%d.load.dispatch", next.ID, next.Attempt))
		_, err := c.dispatched(ctx, sent, req)
		if err != nil {
			c.settle(ctx, ev)
			return rec, err
		}
		_, err = c.write(ctx, next, rev)
		c.settle(ctx, ev)
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
		_ = c.jobEnded(ctx, next) // frees the computer (else the sweeper does)
		c.settle(ctx, c.event(next, "", "canceled: "+reason, id+".cancel"))
		c.log.Info("job canceled", "job", id, "reason", reason)
		return next, nil
	}
	return messages.JobRecord{}, fmt.Errorf("job %s: gave up after %d lost compare-and-set rounds", id, maxCASRounds)
}
