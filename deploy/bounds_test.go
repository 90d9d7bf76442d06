package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/loadpool/loadpool/progress"
)

// TestBoundedInputs (issue 10, attack 5): what a client submits is bounded
// before it becomes a record or a request, and a spec's problems are all
// named in one 400. Against a server from nats-single.conf, as the client
// user.
func TestBoundedInputs(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "nats-single.conf")
	ctx, cancel := context.WithTimeout(tg.ctx, time.Minute)
	defer cancel()
	long := strings.Repeat("a", 60000)
	for i := range 20 {
		spec := jobSpec(fmt.Sprintf("long-%d", i), fmt.Sprintf("vm-long-%d", i), "vmware", long)
		_, err := tg.client.Submit(ctx, spec)
		wantBadRequest(t, err, "computer.address")
	}
	if _, err := tg.client.List(ctx, messages.ListRequest{}); err != nil {
		t.Errorf("the default job.list after twenty submits with a 60,000-character address: %v", err)
	}
	spec := jobSpec("busy-poll", "vm-poll", "vmware", "")
	spec.Image.WaitProfile = []byte(`{"poll": "1ns"}`)
	_, err := tg.client.Submit(ctx, spec)
	wantBadRequest(t, err, "image.wait_profile.poll")
	spec = jobSpec("two-problems", "", "vmware", "")
	spec.Image.Name = ""
	_, err = tg.client.Submit(ctx, spec)
	wantBadRequest(t, err, "computer.name", "image.name")
	hugeDetail(t, tg)
	expiring(t, tg)
}

// hugeDetail: a load that fails with a megabyte of stderr gives a result
// whose detail is cut to 4 KiB, marked (it could not even be published
// whole: bodies are at most 64 KiB).
func hugeDetail(t *testing.T, tg *target) {
	t.Helper()
	fake := &loaderworker.Fake{LoadFunc: func(context.Context, messages.Request, progress.Progress) (loaderworker.LoadReport, error) {
		return loaderworker.LoadReport{}, errors.New("clone failed: " + strings.Repeat("stderr line\n", 100000))
	}}
	lw, err := loaderworker.New(tg.as(t, "loader").Conn, loaderworker.Config{Subjects: subj, Name: "huge", Logger: quiet,
		Settings: pool.Config{Grace: time.Second, BindOnly: true}}, fake)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(tg.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	if _, err := tg.client.Submit(tg.ctx, tg.enroll(t, jobSpec("huge", "vm-huge", "huge", ""))); err != nil {
		t.Fatal(err)
	}
	var rec messages.JobRecord
	poll.Until(t, "the job with a megabyte of stderr to end", func() bool {
		rec, err = tg.client.Get(tg.ctx, "huge")
		return err == nil && messages.Terminal(rec.State)
	})
	if len(rec.Steps) != 1 || len(rec.Steps[0].Detail) > messages.MaxDetailBytes || !strings.Contains(rec.Steps[0].Detail, "[truncated: ") {
		t.Errorf("steps %d, detail of %d bytes", len(rec.Steps), len(rec.Steps[0].Detail))
	}
}

// expiring: the consumer the coordinator made for a pool expires when
// nobody pulls from it for twice the step cap, and requests wait at most
// that long (above the cap, which ends a step first).
func expiring(t *testing.T, tg *target) {
	t.Helper()
	cons, err := tg.js.Consumer(tg.ctx, subj.LoadStream(), subj.LoaderConsumer(tg.pool))
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.CachedInfo().Config.InactiveThreshold; got != 2*coordinator.DefaultStepCap {
		t.Errorf("pool consumer InactiveThreshold %s, want %s", got, 2*coordinator.DefaultStepCap)
	}
	for _, name := range []string{subj.LoadStream(), subj.PostloadStream()} {
		st, err := tg.js.Stream(tg.ctx, name)
		if err != nil || st.CachedInfo().Config.MaxAge <= coordinator.DefaultStepCap {
			t.Errorf("stream %s: MaxAge %v, want above the step cap %s (%v)", name, st.CachedInfo().Config.MaxAge, coordinator.DefaultStepCap, err)
		}
	}
}

func wantBadRequest(t *testing.T, err error, fields ...string) {
	t.Helper()
	var api *coordinator.APIError
	if !errors.As(err, &api) || api.Code != 400 {
		t.Errorf("want a 400 naming %v, got %.200v", fields, err)
		return
	}
	for _, f := range fields {
		if !strings.Contains(api.Message, f+":") {
			t.Errorf("the 400 does not name %s: %.300s", f, api.Message)
		}
	}
}
