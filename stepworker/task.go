package stepworker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/metrics"
	"github.com/loadpool/loadpool/outcome"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// handle runs one request from delivery to ack. It stays on its
// goroutine's stack for the whole step (a post-load waits for minutes, and
// one process may hold 10,000), so it only sequences: begin and finish
// hold the locals (BenchmarkTenThousandWaits in osworker).
func (r *Runtime) handle(msg jetstream.Msg) {
	defer r.tasks.Done()
	defer func() { <-r.sem }()
	t := r.begin(msg)
	if t == nil {
		return
	}
	defer t.end()
	rep, err := r.run(t)
	r.finish(t, rep, err)
}

// begin accepts a delivery and tracks it as a running step (nil: rejected).
func (r *Runtime) begin(msg jetstream.Msg) *task {
	req, ok := r.accept(msg)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithCancelCause(r.base)
	t := &task{r: r, msg: msg, req: req, ctx: ctx, cancel: cancel, lastRenew: time.Now(), started: time.Now().UTC()}
	if !req.Deadline.IsZero() {
		t.ctx, t.stopDeadline = context.WithDeadline(ctx, req.Deadline)
	}
	t.log = r.log.With("job", req.JobID, "attempt", req.Attempt, "computer", req.Computer.Name)
	r.track(t, true)
	t.log.Info("step started", "delivery", deliveries(msg))
	return t
}

// end untracks the step and releases its contexts.
func (t *task) end() {
	t.r.track(t, false)
	if t.stopDeadline != nil {
		t.stopDeadline()
	}
	t.cancel(nil)
}

// finish acts on the step's end: an abort, a lost lease or a shutdown
// gives the request up without a result; otherwise the result is reported.
func (r *Runtime) finish(t *task, rep Report, err error) {
	switch cause := context.Cause(t.ctx); {
	case errors.Is(cause, ErrAborted):
		t.log.Info("step aborted by the coordinator")
		_ = t.msg.TermWithReason("aborted")
		return
	case errors.Is(cause, ErrLeaseLost):
		t.log.Warn("lease lost: giving the request up without a result")
		return
	case errors.Is(cause, ErrShutdown):
		t.log.Info("shutdown: returning the request to the pool")
		_ = t.msg.Nak()
		return
	}
	res := r.result(t.req, rep, err, t.started)
	t.log.Info("step finished", "outcome", res.Outcome, "detail", res.Detail)
	r.report(t.msg, res, t.log)
}

// run calls the handler, turning a panic into a retry so a bad module
// cannot take the worker down.
func (r *Runtime) run(t *task) (rep Report, err error) {
	defer r.recoverHandler(t, &err)
	return r.h(t.ctx, t.req, t)
}

func (r *Runtime) recoverHandler(t *task, err *error) {
	if p := recover(); p != nil {
		r.log.Error("handler panicked", "job", t.req.JobID, "panic", p)
		*err = fmt.Errorf("the %s worker crashed on this request (%v); another attempt may work", t.req.Step, p)
	}
}

// accept decodes and checks a delivery. A request that cannot be decoded
// at all is terminated; one that names its job but is wrong for this pool
// is answered fail so the job does not wait for its safety cap.
func (r *Runtime) accept(msg jetstream.Msg) (messages.Request, bool) {
	req, err := messages.DecodeRequest(msg.Data())
	if err == nil {
		err = r.belongs(req)
	}
	if err == nil {
		return req, true
	}
	r.log.Warn("rejected request", "subject", msg.Subject(), "err", err)
	if messages.ValidJobID("job_id", req.JobID) == nil && req.Attempt > 0 {
		req.Step = r.cfg.Step
		res := r.result(req, Report{Reason: outcome.ReasonBadRequest}, outcome.Permanent(fmt.Errorf("bad %s request: %v", r.cfg.Step, err)), time.Now().UTC())
		r.report(msg, res, r.log.With("job", req.JobID))
		return req, false
	}
	_ = msg.TermWithReason("bad request: " + err.Error())
	return req, false
}

func (r *Runtime) belongs(req messages.Request) error {
	if req.Step != r.cfg.Step {
		return fmt.Errorf("step is %q but this is a %s worker", req.Step, r.cfg.Step)
	}
	if p := req.Pool(); p != r.cfg.Pool {
		return fmt.Errorf("request is for pool %q but this worker serves %q", p, r.cfg.Pool)
	}
	return nil
}

func (r *Runtime) result(req messages.Request, rep Report, err error, started time.Time) messages.Result {
	detail := rep.Detail
	if err != nil && detail == "" {
		detail = err.Error()
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) && !req.Deadline.IsZero() && time.Now().After(req.Deadline) {
		detail = "the coordinator's safety cap for this step ran out: " + detail
	}
	reason := rep.Reason
	if err != nil && reason == "" {
		reason = outcome.Reason(err)
	}
	return messages.Result{
		JobID: req.JobID, Attempt: req.Attempt, Step: req.Step, Outcome: outcome.Of(err),
		Detail: messages.TruncateDetail(detail), Reason: reason, Worker: r.cfg.Settings.WorkerID,
		Started: started, Finished: time.Now().UTC(), Reloaded: rep.Reloaded, Profile: rep.Profile,
		LearnedHostKey: rep.LearnedHostKey, Evidence: rep.Evidence,
	}
}

// report publishes the result and then acks the request. If the result
// cannot be stored, the request is nak'ed so that it runs again.
func (r *Runtime) report(msg jetstream.Msg, res messages.Result, log interface {
	Warn(string, ...any)
}) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := fmt.Sprintf("%s.%d.%s.%d", res.JobID, res.Attempt, res.Step, deliveries(msg))
	_, err := r.js.Publish(ctx, r.cfg.Subjects.Result(res.Step), messages.Encode(res), jetstream.WithMsgID(id))
	if err != nil {
		log.Warn("could not publish the result; the request will run again", "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("result published but the ack failed; the request may run again (the coordinator ignores a duplicate)", "err", err)
	}
}

func deliveries(msg jetstream.Msg) uint64 {
	md, err := msg.Metadata()
	if err != nil {
		return 0
	}
	return md.NumDelivered
}

func (r *Runtime) track(t *task, add bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if add {
		r.running[t] = struct{}{}
		metrics.InFlight(r.cfg.Step, r.cfg.Pool, r.cfg.Settings.WorkerID, 1)
	} else {
		delete(r.running, t)
		metrics.InFlight(r.cfg.Step, r.cfg.Pool, r.cfg.Settings.WorkerID, -1)
	}
}

// onAbort cancels the running steps of an aborted job (attempts up to
// the one named; 0 means all).
func (r *Runtime) onAbort(m *nats.Msg) {
	var a messages.Abort
	if err := messages.Decode(m.Data, &a, false); err != nil || messages.ValidJobID("job_id", a.JobID) != nil {
		r.log.Warn("ignored malformed abort", "subject", m.Subject, "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.running {
		if t.req.JobID == a.JobID && (a.Attempt == 0 || t.req.Attempt <= a.Attempt) {
			t.cancel(ErrAborted)
		}
	}
}

// keepLeases renews every running step's lease (InProgress) at a third of
// AckWait, confirmed by a flush. A step whose lease has not been confirmed
// for two thirds of AckWait is cancelled with ErrLeaseLost before the
// server can hand its request to another worker.
func (r *Runtime) keepLeases() {
	defer r.keeper.Done()
	tick := time.NewTicker(r.cfg.Settings.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-r.base.Done():
			return
		case <-tick.C:
			r.renew()
		}
	}
}

func (r *Runtime) renew() {
	now := time.Now()
	r.mu.Lock()
	tasks := make([]*task, 0, len(r.running))
	for t := range r.running {
		tasks = append(tasks, t)
	}
	r.mu.Unlock()
	if len(tasks) == 0 {
		return
	}
	sent := make([]*task, 0, len(tasks))
	for _, t := range tasks {
		if t.msg.InProgress() == nil {
			sent = append(sent, t)
		}
	}
	flushed := r.nc.FlushTimeout(r.cfg.Settings.AckWait/4) == nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if flushed {
		for _, t := range sent {
			t.lastRenew = now
		}
		metrics.LeaseRenewed(r.cfg.Step, r.cfg.Pool, len(sent))
	}
	for _, t := range tasks {
		if time.Since(t.lastRenew) > 2*r.cfg.Settings.AckWait/3 {
			t.cancel(ErrLeaseLost)
			if !t.lost {
				t.lost = true
				metrics.LeaseLost(r.cfg.Step, r.cfg.Pool)
			}
		}
	}
}

// Event publishes an event of the running step (progress.Progress).
func (t *task) Event(msg string) {
	r, req := t.r, &t.req
	state := messages.StateLoading
	if req.Step == messages.StepPostload {
		state = messages.StatePostloading
	}
	ev := messages.Event{
		JobID: req.JobID, Time: time.Now().UTC(), Attempt: req.Attempt, Step: req.Step,
		Source: r.cfg.Settings.WorkerID, Message: msg, State: state,
	}
	r.log.Info(msg, "job", req.JobID, "attempt", req.Attempt)
	if err := r.nc.Publish(r.cfg.Subjects.Event(req.JobID), messages.Encode(ev)); err != nil {
		r.log.Warn("could not publish an event", "job", req.JobID, "err", err)
	}
}
