package coordinator

import (
	"context"
	"errors"
	"sync"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// records is this process's copy of the live job records it wrote or
// read, with their KV revisions: a result for a job this coordinator
// moved last is decided without a read through the stream leader. The
// copy may be behind (another coordinator wrote since); it is safe
// because every decision on it is either a compare-and-set on its
// revision (a stale copy loses, is dropped and the record read again), or
// a verdict that holds for every later revision (see apply). Ended jobs
// leave the copy: its size is the jobs in flight.
type records struct {
	mu sync.Mutex
	m  map[string]cachedRecord
}

type cachedRecord struct {
	rec messages.JobRecord
	rev uint64
}

func newRecords() *records { return &records{m: map[string]cachedRecord{}} }

// put keeps rec at rev unless a newer revision is known; an ended job is
// forgotten.
func (r *records) put(rec messages.JobRecord, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.m[rec.ID]
	switch {
	case ok && old.rev >= rev:
	case messages.Terminal(rec.State):
		delete(r.m, rec.ID)
	default:
		r.m[rec.ID] = cachedRecord{rec, rev}
	}
}

func (r *records) get(id string) (messages.JobRecord, uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[id]
	return v.rec, v.rev, ok
}

// drop forgets id if the copy is still at rev (it lost a compare-and-set).
func (r *records) drop(id string, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.m[id]; ok && v.rev <= rev {
		delete(r.m, id)
	}
}

// pending is a JetStream publish in flight: effects of one transition
// are sent together and awaited together (one round trip, not one each).
type pending struct {
	f    jetstream.PubAckFuture
	err  error
	what string // for the log line of a failure
}

// publish sends m to its stream without waiting for the acknowledgement.
func (c *Coordinator) publish(what string, m *nats.Msg, opts ...jetstream.PublishOpt) pending {
	f, err := c.js.PublishMsgAsync(m, opts...)
	return pending{f: f, err: err, what: what}
}

// settle waits for publishes whose failure is only logged (events: the
// records are the truth).
func (c *Coordinator) settle(ctx context.Context, ps ...pending) {
	for _, p := range ps {
		if p.f == nil && p.err == nil {
			continue // nothing was sent
		}
		if _, err := p.wait(ctx); err != nil {
			c.log.Warn(p.what+" not published", "err", err)
		}
	}
}

// wait returns the acknowledgement of p (bounded by ctx and the
// connection's publish timeout, opTimeout).
func (p pending) wait(ctx context.Context) (*jetstream.PubAck, error) {
	if p.err != nil {
		return nil, p.err
	}
	select {
	case ack := <-p.f.Ok():
		return ack, nil
	case err := <-p.f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// isWrongLastSeq: a compare-and-set publish lost (10071; 10164 on
// replicated streams).
func isWrongLastSeq(err error) bool {
	if err == nil {
		return false // before the declaration below, which allocates
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
