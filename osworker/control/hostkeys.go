package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// HostKeyRecord is what the host keys bucket holds for one computer.
type HostKeyRecord struct {
	// Key is the host key in authorized_keys form.
	Key string `json:"key"`
	// JobID and Attempt are the step that recorded it.
	JobID    string    `json:"job_id"`
	Attempt  int       `json:"attempt,omitempty"`
	Recorded time.Time `json:"recorded"`
}

// ErrNoRecord is Get's error for a computer without a record.
var ErrNoRecord = errors.New("no host key recorded")

// ErrConflict is Put's error when the record changed since it was read.
var ErrConflict = errors.New("host key record changed meanwhile")

// HostKeyStore keeps the trusted host key of each computer.
type HostKeyStore interface {
	// Get returns the record and its revision, or ErrNoRecord.
	Get(ctx context.Context, computer string) (HostKeyRecord, uint64, error)
	// Put writes rec if the stored revision is still rev (0: no record
	// yet); otherwise it returns ErrConflict.
	Put(ctx context.Context, computer string, rec HostKeyRecord, rev uint64) error
}

// KVHostKeys is a HostKeyStore on a NATS KV bucket.
type KVHostKeys struct {
	kv jetstream.KeyValue
}

var _ HostKeyStore = (*KVHostKeys)(nil)

// NewKVHostKeys creates (or binds to) the bucket Subjects.HostKeysBucket().
func NewKVHostKeys(ctx context.Context, js jetstream.JetStream, s messages.Subjects, replicas int) (*KVHostKeys, error) {
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.HostKeysBucket(),
		Description: "loadpool: trusted SSH host key per computer",
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) { // bind; never update (see pool.Topology.Ensure)
		kv, err = js.KeyValue(ctx, s.HostKeysBucket())
	}
	if err != nil {
		return nil, fmt.Errorf("create KV bucket %s: %w", s.HostKeysBucket(), err)
	}
	return &KVHostKeys{kv: kv}, nil
}

// Get implements HostKeyStore.
func (k *KVHostKeys) Get(ctx context.Context, computer string) (HostKeyRecord, uint64, error) {
	e, err := k.kv.Get(ctx, computer)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return HostKeyRecord{}, 0, ErrNoRecord
	}
	if err != nil {
		return HostKeyRecord{}, 0, fmt.Errorf("read host key of %s: %w", computer, err)
	}
	var rec HostKeyRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return HostKeyRecord{}, e.Revision(), fmt.Errorf("host key record of %s is corrupt (%v): delete it", computer, err)
	}
	return rec, e.Revision(), nil
}

// Put implements HostKeyStore.
func (k *KVHostKeys) Put(ctx context.Context, computer string, rec HostKeyRecord, rev uint64) error {
	b, _ := json.Marshal(rec)
	var err error
	if rev == 0 {
		_, err = k.kv.Create(ctx, computer, b)
	} else {
		_, err = k.kv.Update(ctx, computer, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongSequence(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("record host key of %s: %w", computer, err)
	}
	return nil
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// MemHostKeys is an in-memory HostKeyStore for a single process (devlab,
// tests of modules). It does not survive a restart nor share records
// between processes.
type MemHostKeys struct {
	mu   sync.Mutex
	recs map[string]memRec
}

type memRec struct {
	rec HostKeyRecord
	rev uint64
}

var _ HostKeyStore = (*MemHostKeys)(nil)

// Get implements HostKeyStore.
func (m *MemHostKeys) Get(_ context.Context, computer string) (HostKeyRecord, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[computer]
	if !ok {
		return HostKeyRecord{}, 0, ErrNoRecord
	}
	return r.rec, r.rev, nil
}

// Put implements HostKeyStore.
func (m *MemHostKeys) Put(_ context.Context, computer string, rec HostKeyRecord, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[string]memRec{}
	}
	if m.recs[computer].rev != rev {
		return ErrConflict
	}
	m.recs[computer] = memRec{rec: rec, rev: rev + 1}
	return nil
}
