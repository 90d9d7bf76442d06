package steptest

import (
	"context"
	"errors"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// PutJob writes rec into the jobs bucket (Subjects.JobsBucket()) as the
// coordinator holds it, creating the bucket on first use: what a loader's
// power endpoint checks a power request against.
func (w *Wire) PutJob(rec messages.JobRecord) {
	w.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	kv, err := w.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Subjects.JobsBucket()})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = w.js.KeyValue(ctx, Subjects.JobsBucket())
	}
	if err != nil {
		w.tb.Fatalf("jobs bucket: %v", err)
	}
	if _, err := kv.Put(ctx, rec.ID, messages.Encode(rec)); err != nil {
		w.tb.Fatalf("put job %s: %v", rec.ID, err)
	}
}

// Postloading writes the record of req's job in its post-load step at
// req's attempt, holding req.Computer (the enrolled computer).
func (w *Wire) Postloading(req messages.Request) {
	w.tb.Helper()
	c := req.Computer
	now := time.Now().UTC()
	w.PutJob(messages.JobRecord{ID: req.JobID, State: messages.StatePostloading, Attempt: req.Attempt,
		MaxAttempts: max(req.Attempt, messages.DefaultMaxAttempts), Enrolled: &c, Reloaded: req.Reloaded,
		Spec:    messages.JobSpec{ID: req.JobID, Computer: messages.Computer{Name: c.Name}, Image: req.Image, Reload: req.Reload},
		Created: now, Updated: now})
}
