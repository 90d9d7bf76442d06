package control

import (
	"context"
	"errors"
	"sync"
	"time"
)

// HostKeyRecord is a host key and the step that learned it.
type HostKeyRecord struct {
	// Key is the host key in authorized_keys form.
	Key string `json:"key"`
	// JobID and Attempt are the step that learned it.
	JobID    string    `json:"job_id"`
	Attempt  int       `json:"attempt,omitempty"`
	Recorded time.Time `json:"recorded"`
}

// ErrNoRecord is Get's error for a computer without a record.
var ErrNoRecord = errors.New("no host key recorded")

// ErrConflict is Put's error when the record changed since it was read.
var ErrConflict = errors.New("host key record changed meanwhile")

// HostKeyStore keeps the host key a step learned, so that every dial of
// the step after the first is checked against it. The OS worker gives
// each step a fresh one (MemHostKeys) and reports what it holds in the
// step's result; the coordinator writes it into the enrolment.
type HostKeyStore interface {
	// Get returns the record and its revision, or ErrNoRecord.
	Get(ctx context.Context, computer string) (HostKeyRecord, uint64, error)
	// Put writes rec if the stored revision is still rev (0: no record
	// yet); otherwise it returns ErrConflict.
	Put(ctx context.Context, computer string, rec HostKeyRecord, rev uint64) error
}

// MemHostKeys is an in-memory HostKeyStore: one step's memory. It is safe
// for concurrent dials of the step; the zero value is empty.
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
