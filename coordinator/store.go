package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// kvValue is the latest value of a KV key as its stream leader knows it.
type kvValue = pool.KVValue

// latest reads key of bucket through the stream leader (pool.Latest): a
// compare-and-set loop must see its own and others' last write.
func (c *Coordinator) latest(ctx context.Context, bucket, key string) (kvValue, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return pool.Latest(ctx, c.nc, bucket, key)
}

// errUnknownJob: no record with this id.
var errUnknownJob = errors.New("unknown job")

// read returns a job's record and its KV revision, from the leader.
func (c *Coordinator) read(ctx context.Context, id string) (messages.JobRecord, uint64, error) {
	rec, rev, err := readJSON[messages.JobRecord](ctx, c, c.sub.JobsBucket(), id, func() error { return fmt.Errorf("%w %q", errUnknownJob, id) })
	if err == nil {
		c.index.putJob(rec, rev)
		c.records.put(rec, rev)
	}
	return rec, rev, err
}

// current returns a job's record from this process's copy when it has
// one (cached true: it may be behind), else from the leader.
func (c *Coordinator) current(ctx context.Context, id string) (rec messages.JobRecord, rev uint64, cached bool, err error) {
	if rec, rev, ok := c.records.get(id); ok {
		return rec, rev, true, nil
	}
	rec, rev, err = c.read(ctx, id)
	return rec, rev, false, err
}

// readJSON reads key of bucket from the leader and decodes it; missing
// makes the error of a key that does not exist (the revision of its
// delete, if any, is returned with it).
func readJSON[T any](ctx context.Context, c *Coordinator, bucket, key string, missing func() error) (T, uint64, error) {
	var v T
	kv, err := c.latest(ctx, bucket, key)
	if err != nil {
		return v, 0, err
	}
	if !kv.Found {
		return v, kv.Rev, missing()
	}
	if err := json.Unmarshal(kv.Data, &v); err != nil {
		return v, 0, fmt.Errorf("%s/%s in KV is unreadable: %w", bucket, key, err)
	}
	return v, kv.Rev, nil
}

// write stores rec with a compare-and-set on rev (0: create). A lost race
// returns an error matching errConflict.
func (c *Coordinator) write(ctx context.Context, rec messages.JobRecord, rev uint64) (uint64, error) {
	data := messages.Encode(rec)
	c.index.own.expect(rec.ID, data, entryOf(rec, 0))
	defer c.index.own.settled(rec.ID, data)
	nrev, err := c.putCAS(ctx, c.jobs, rec.ID, data, rev)
	if errors.Is(err, errConflict) {
		c.log.Debug("compare-and-set lost", "job", rec.ID, "revision", rev)
		c.records.drop(rec.ID, rev)
	}
	if err != nil {
		return 0, err
	}
	c.index.putJob(rec, nrev)
	c.records.put(rec, nrev)
	return nrev, nil
}

// putCAS stores data under key with a compare-and-set on rev (0: create,
// which kv.Create does: over a delete marker too). An update is one
// asynchronous publish awaited (cheaper than the KV API's request).
// A lost race returns errConflict.
func (c *Coordinator) putCAS(ctx context.Context, kv jetstream.KeyValue, key string, data []byte, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var err error
	var nrev uint64
	if rev == 0 {
		nrev, err = kv.Create(ctx, key, data)
	} else {
		var ack *jetstream.PubAck
		ack, err = c.publish("write", &nats.Msg{Subject: "$KV." + kv.Bucket() + "." + key, Data: data},
			jetstream.WithExpectLastSequencePerSubject(rev)).wait(ctx)
		if ack != nil {
			nrev = ack.Sequence
		}
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSeq(err) {
		return 0, errConflict
	}
	if err != nil {
		return 0, fmt.Errorf("write %s/%s to KV: %w", kv.Bucket(), key, err)
	}
	return nrev, nil
}

// errConflict: another writer changed the record first; re-read, re-decide.
var errConflict = errors.New("job record changed concurrently")
