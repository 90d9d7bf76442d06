package coordinator

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/messages"
)

// A finished job's record expires JobRetention after its last change; the
// expiry leaves a marker, so the coordinator's index forgets it too (get
// is 404, list no longer shows it). A live job does not expire: the
// retention is at least twice the step cap.
func TestJobRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{StepCap: 500 * time.Millisecond, JobRetention: 1500 * time.Millisecond})
	e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.submit(spec("job-old", "vm-r1"))
	e.waitState("job-old", messages.StateReady)
	listed := func() bool {
		jobs, err := e.cl.List(ctx(t), messages.ListRequest{})
		return err == nil && slices.ContainsFunc(jobs, func(r messages.JobRecord) bool { return r.ID == "job-old" })
	}
	if !listed() {
		t.Fatal("the ready job is not listed")
	}
	poll.Within(t, 20*time.Second, "the record to expire", func() bool {
		_, err := e.cl.Get(ctx(t), "job-old")
		var api *APIError
		return errors.As(err, &api) && api.Code == 404
	})
	poll.Within(t, 20*time.Second, "the index to forget the job", func() bool { return !listed() })
}

func TestJobRetentionTooShort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := New(e.nc, Config{StepCap: time.Hour, JobRetention: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "JobRetention") {
		t.Fatalf("err %v, want a JobRetention error", err)
	}
}
