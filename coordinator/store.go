package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// kvValue is the latest value of a KV key as its stream leader knows it.
type kvValue struct {
	data    []byte
	rev     uint64
	created time.Time
	found   bool
}

// latest reads key of bucket through the stream leader
// ($JS.API.STREAM.MSG.GET), not kv.Get: KV buckets allow direct gets,
// which a replica may answer before it has the newest write, and a
// compare-and-set loop must see its own and others' last write.
func (c *Coordinator) latest(ctx context.Context, bucket, key string) (kvValue, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	body := lastByRequest("$KV." + bucket + "." + key)
	msg, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, body)
	if err != nil {
		return kvValue{}, fmt.Errorf("read %s/%s: %w", bucket, key, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64    `json:"seq"`
			Hdrs []byte    `json:"hdrs"`
			Data []byte    `json:"data"`
			Time time.Time `json:"time"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return kvValue{}, fmt.Errorf("read %s/%s: unreadable JetStream reply: %w", bucket, key, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return kvValue{}, nil
	case resp.Error != nil:
		return kvValue{}, fmt.Errorf("read %s/%s: JetStream error %d: %s", bucket, key, resp.Error.Code, resp.Error.Description)
	case resp.Message == nil:
		return kvValue{}, fmt.Errorf("read %s/%s: empty JetStream reply", bucket, key)
	}
	m := resp.Message
	if len(m.Hdrs) > 0 {
		if h, err := nats.DecodeHeadersMsg(m.Hdrs); err == nil {
			// A delete, a purge, or the marker JetStream leaves when a
			// record expires (JobRetention).
			if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" || h.Get("Nats-Marker-Reason") != "" {
				return kvValue{rev: m.Seq}, nil
			}
		}
	}
	return kvValue{data: m.Data, rev: m.Seq, created: m.Time, found: true}, nil
}

func lastByRequest(subject string) []byte {
	b, _ := json.Marshal(struct {
		LastBy string `json:"last_by_subj"`
	}{subject})
	return b
}

// errUnknownJob: no record with this id.
var errUnknownJob = errors.New("unknown job")

// read returns a job's record and its KV revision, from the leader.
func (c *Coordinator) read(ctx context.Context, id string) (messages.JobRecord, uint64, error) {
	rec, rev, err := readJSON[messages.JobRecord](ctx, c, c.sub.JobsBucket(), id, func() error { return fmt.Errorf("%w %q", errUnknownJob, id) })
	if err == nil {
		c.index.putJob(rec, rev)
	}
	return rec, rev, err
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
	if !kv.found {
		return v, kv.rev, missing()
	}
	if err := json.Unmarshal(kv.data, &v); err != nil {
		return v, 0, fmt.Errorf("%s/%s in KV is unreadable: %w", bucket, key, err)
	}
	return v, kv.rev, nil
}

// write stores rec with a compare-and-set on rev (0: create). A lost race
// returns an error matching errConflict.
func (c *Coordinator) write(ctx context.Context, rec messages.JobRecord, rev uint64) (uint64, error) {
	nrev, err := putCAS(ctx, c.jobs, rec.ID, messages.Encode(rec), rev)
	if errors.Is(err, errConflict) {
		c.log.Debug("compare-and-set lost", "job", rec.ID, "revision", rev)
	}
	if err != nil {
		return 0, err
	}
	c.index.putJob(rec, nrev)
	return nrev, nil
}

// putCAS stores data under key with a compare-and-set on rev (0: create).
// A lost race returns errConflict.
func putCAS(ctx context.Context, kv jetstream.KeyValue, key string, data []byte, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var err error
	var nrev uint64
	if rev == 0 {
		nrev, err = kv.Create(ctx, key, data)
	} else {
		nrev, err = kv.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, errConflict
	}
	if err != nil {
		return 0, fmt.Errorf("write %s/%s to KV: %w", kv.Bucket(), key, err)
	}
	return nrev, nil
}

// errConflict: another writer changed the record first; re-read, re-decide.
var errConflict = errors.New("job record changed concurrently")
