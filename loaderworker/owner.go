package loaderworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jobReadTimeout bounds the read of a job record for a power request.
const jobReadTimeout = 5 * time.Second

// refusal is a power request the endpoint will not serve: code is the
// micro error code (403 not this job's computer, 409 not now, 503 the
// record could not be read).
type refusal struct {
	code int
	msg  string
}

func (r *refusal) Error() string { return r.msg }

func refuse(code int, format string, args ...any) *refusal {
	return &refusal{code: code, msg: fmt.Sprintf(format, args...)}
}

// jobs reads the coordinator's job records (bucket Subjects.JobsBucket()):
// bound read-only, never created, and read through the stream leader.
type jobs struct {
	nc     *nats.Conn
	bucket string

	mu    sync.Mutex
	bound bool
}

// get returns job id's record; a missing bucket or record is a refusal.
func (j *jobs) get(ctx context.Context, id string) (messages.JobRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, jobReadTimeout)
	defer cancel()
	if err := j.bind(ctx); err != nil {
		return messages.JobRecord{}, err
	}
	data, found, err := j.latest(ctx, id)
	if err != nil {
		return messages.JobRecord{}, refuse(503, "could not read job %s from KV bucket %s: %v; try again", id, j.bucket, err)
	}
	if !found {
		return messages.JobRecord{}, refuse(403, "job %s is unknown: power is only for the job that holds the computer", id)
	}
	var rec messages.JobRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return messages.JobRecord{}, refuse(503, "job record %s in KV bucket %s is unreadable: %v", id, j.bucket, err)
	}
	return rec, nil
}

// bind checks once that the bucket exists (the coordinator creates it).
func (j *jobs) bind(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.bound {
		return nil
	}
	js, err := jetstream.New(j.nc)
	if err == nil {
		_, err = js.KeyValue(ctx, j.bucket)
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return refuse(403, "KV bucket %s does not exist (no coordinator has started on this prefix): power is only for a job the coordinator holds", j.bucket)
	}
	if err != nil {
		return refuse(503, "could not bind KV bucket %s: %v; try again", j.bucket, err)
	}
	j.bound = true
	return nil
}

// latest reads key through the stream leader (pool.Latest): the bucket
// allows direct gets, which a replica may answer before it has the
// coordinator's newest write, and power must not follow a state the job
// has left.
func (j *jobs) latest(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := pool.Latest(ctx, j.nc, j.bucket, key)
	return v.Data, v.Found, err
}

// holder checks that req comes from the job that holds the computer, at
// its current attempt, in its post-load step, and returns the computer as
// the job's record has it (the enrolment): what the provisioner acts on,
// whatever else the request's computer says.
func (w *Worker) holder(ctx context.Context, req messages.PowerRequest) (messages.Computer, error) {
	name := req.Computer.Name
	if req.JobID == "" {
		return messages.Computer{}, refuse(403, "a power request must name its job_id and attempt: power of %s is only for the job that holds it, during its post-load", name)
	}
	rec, err := w.jobs.get(ctx, req.JobID)
	if err != nil {
		return messages.Computer{}, err
	}
	held := rec.Spec.Computer // records written before the inventory
	if rec.Enrolled != nil {
		held = *rec.Enrolled
	}
	switch {
	case held.Name != name:
		return messages.Computer{}, refuse(403, "job %s does not hold %s", req.JobID, name)
	case rec.State != messages.StatePostloading:
		return messages.Computer{}, refuse(409, "job %s is in state %s: power only during its post-load", req.JobID, rec.State)
	case rec.Attempt != req.Attempt:
		return messages.Computer{}, refuse(409, "attempt %d is not job %s's current attempt %d", req.Attempt, req.JobID, rec.Attempt)
	case held.Provisioner != w.cfg.Name:
		return messages.Computer{}, refuse(403, "%s is enrolled with provisioner %q, not %q: this endpoint does not power it", name, held.Provisioner, w.cfg.Name)
	}
	return held, nil
}
