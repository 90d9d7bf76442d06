package loaderworker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"
	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker"
	"github.com/nats-io/nats.go"
)

func TestOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		load    func(context.Context, messages.Request, progress.Progress) (loaderworker.LoadReport, error)
		outcome messages.Outcome
		detail  string
	}{
		{"ready", nil, messages.OutcomeReady, "loaded ubuntu-24.04"},
		{"transient error is retry", func(context.Context, messages.Request, progress.Progress) (loaderworker.LoadReport, error) {
			return loaderworker.LoadReport{}, errors.New("datastore busy")
		}, messages.OutcomeRetry, "datastore busy"},
		{"permanent error is fail", func(context.Context, messages.Request, progress.Progress) (loaderworker.LoadReport, error) {
			return loaderworker.LoadReport{}, outcome.Permanent(errors.New("template not found"))
		}, messages.OutcomeFail, "template not found"},
		{"panic is retry", func(context.Context, messages.Request, progress.Progress) (loaderworker.LoadReport, error) {
			panic("boom")
		}, messages.OutcomeRetry, "crashed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			f := &loaderworker.Fake{LoadFunc: c.load}
			w, _ := r.worker(f, nil)
			r.Publish(request("job-1", 2))
			res := r.Result(resultWait)
			if res.Outcome != c.outcome || !strings.Contains(res.Detail, c.detail) {
				t.Fatalf("got %s %q, want %s containing %q", res.Outcome, res.Detail, c.outcome, c.detail)
			}
			if res.JobID != "job-1" || res.Attempt != 2 || res.Step != messages.StepLoad || res.Worker != w.WorkerID() {
				t.Fatalf("result does not identify its request: %+v", res)
			}
			if c.outcome == messages.OutcomeReady && (res.Reloaded == nil || !*res.Reloaded) {
				t.Fatalf("ready load must say reloaded: %+v", res)
			}
			if got := f.Loads(); len(got) != 1 || got[0].Attempt != 2 {
				t.Fatalf("provisioner saw %+v", got)
			}
			poll.Until(t, "request acked", func() bool { return r.pending() == 0 })
		})
	}
}

// A load that takes three leases long keeps its lease: delivered once, one result.
func TestLeaseKeptDuringSlowLoad(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// A lease long enough that renewals every third of it arrive in time on
	// a loaded machine under -race (600ms did not, once, in a CI run).
	const ackWait = 2 * time.Second
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, p progress.Progress) (loaderworker.LoadReport, error) {
		p.Event("cloning")
		select { // the slow task itself, not test synchronisation
		case <-time.After(4 * ackWait):
		case <-ctx.Done():
			return loaderworker.LoadReport{}, context.Cause(ctx)
		}
		return loaderworker.LoadReport{Detail: "cloned", Reloaded: true}, nil
	}}
	r.worker(f, func(c *loaderworker.Config) { c.Settings.AckWait = ackWait })
	r.worker(f, func(c *loaderworker.Config) { c.Settings.AckWait = ackWait }) // a second worker that must not get it
	r.Publish(request("job-slow", 1))
	if res := r.Result(resultWait); res.Outcome != messages.OutcomeReady {
		t.Fatalf("got %+v", res)
	}
	r.NoResult(2 * ackWait)
	if n := len(f.Loads()); n != 1 {
		t.Fatalf("request delivered %d times, want 1 (the lease was not kept)", n)
	}
}

// A loader that dies mid-load (its connection gone: no lease renewals, no
// result) loses nothing: another loader gets the request once the lease
// lapses, and exactly one result is published.
func TestKilledLoaderRequestRedelivered(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	const ackWait = time.Second
	started := make(chan struct{})
	var calls atomic.Int32
	var firstCause atomic.Value
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, p progress.Progress) (loaderworker.LoadReport, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-ctx.Done() // hangs until the runtime gives the work up
			firstCause.Store(context.Cause(ctx))
			return loaderworker.LoadReport{Detail: "late"}, nil
		}
		return loaderworker.LoadReport{Detail: "loaded by the survivor", Reloaded: true}, nil
	}}
	_, nc1 := r.worker(f, func(c *loaderworker.Config) { c.Settings.AckWait = ackWait; c.Settings.WorkerID = "doomed" })
	r.Publish(request("job-k", 1))
	<-started
	nc1.Close() // the process is gone from NATS' point of view
	r.worker(f, func(c *loaderworker.Config) { c.Settings.AckWait = ackWait; c.Settings.WorkerID = "survivor" })
	res := r.Result(resultWait)
	if res.Worker != "survivor" || res.Outcome != messages.OutcomeReady {
		t.Fatalf("got %+v, want ready from survivor", res)
	}
	poll.Until(t, "the doomed worker gave its work up", func() bool { return firstCause.Load() != nil })
	if c := firstCause.Load().(error); !errors.Is(c, stepworker.ErrLeaseLost) {
		t.Fatalf("doomed worker stopped with %v, want ErrLeaseLost", c)
	}
	r.NoResult(2 * ackWait)
}

func TestAbortStopsTheStep(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	started := make(chan struct{})
	cause := make(chan error, 1)
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, p progress.Progress) (loaderworker.LoadReport, error) {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return loaderworker.LoadReport{}, ctx.Err()
	}}
	r.worker(f, nil)
	r.Publish(request("job-a", 3))
	<-started
	// An abort for an older attempt leaves attempt 3 alone; one for it stops it.
	if err := r.Conn().Publish(subj.Abort("job-a"), messages.Encode(messages.Abort{JobID: "job-a", Attempt: 2})); err != nil {
		t.Fatal(err)
	}
	if err := r.Conn().Publish(subj.Abort("job-a"), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := r.Conn().Publish(subj.Abort("job-a"), messages.Encode(messages.Abort{JobID: "job-a", Attempt: 3, Reason: "canceled"})); err != nil {
		t.Fatal(err)
	}
	if c := <-cause; !errors.Is(c, stepworker.ErrAborted) {
		t.Fatalf("cause %v, want ErrAborted", c)
	}
	poll.Until(t, "aborted request removed", func() bool { return r.pending() == 0 })
	r.NoResult(500 * time.Millisecond)
}

// Stop lets a step finish within the grace period; past it, the step is
// cancelled with ErrShutdown and its request goes to another worker.
func TestStopReturnsWorkToThePool(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	started := make(chan struct{}, 2)
	var calls atomic.Int32
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, p progress.Progress) (loaderworker.LoadReport, error) {
		if calls.Add(1) == 1 {
			started <- struct{}{}
			<-ctx.Done()
			return loaderworker.LoadReport{}, context.Cause(ctx)
		}
		return loaderworker.LoadReport{Detail: "second worker", Reloaded: true}, nil
	}}
	w1, _ := r.worker(f, func(c *loaderworker.Config) { c.Settings.Grace = 100 * time.Millisecond })
	r.Publish(request("job-s", 1))
	<-started
	w1.Stop()
	w1.Stop() // idempotent
	r.worker(f, nil)
	if res := r.Result(resultWait); res.Detail != "second worker" || res.Outcome != messages.OutcomeReady {
		t.Fatalf("got %+v", res)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	f := &loaderworker.Fake{}
	r.worker(f, nil)
	r.PublishRaw(subj.LoadRequest("fake"), []byte("not json at all"))
	r.PublishRaw(subj.LoadRequest("fake"), []byte(`{"job_id":"../x","attempt":1}`))
	// Names its job but misses the computer: answered fail so the job does not hang.
	r.PublishRaw(subj.LoadRequest("fake"), []byte(`{"job_id":"job-b","attempt":1,"step":"load"}`))
	res := r.Result(resultWait)
	if res.JobID != "job-b" || res.Outcome != messages.OutcomeFail || !strings.Contains(res.Detail, "computer.name") {
		t.Fatalf("got %+v", res)
	}
	// A request for another pool's computer on this pool's subject.
	req := request("job-c", 1)
	req.Computer.Provisioner = "vmware"
	r.PublishRaw(subj.LoadRequest("fake"), messages.Encode(req))
	res = r.Result(resultWait)
	if res.JobID != "job-c" || res.Outcome != messages.OutcomeFail || !strings.Contains(res.Detail, "pool") {
		t.Fatalf("got %+v", res)
	}
	poll.Until(t, "garbage removed", func() bool { return r.pending() == 0 })
	if n := len(f.Loads()); n != 0 {
		t.Fatalf("provisioner ran %d bad requests", n)
	}
	// Still serving.
	r.Publish(request("job-d", 1))
	if res := r.Result(resultWait); res.JobID != "job-d" || res.Outcome != messages.OutcomeReady {
		t.Fatalf("got %+v", res)
	}
}

func TestPowerEndpoint(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	f := &loaderworker.Fake{PowerFunc: func(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error) {
		if req.Computer.Name == "gone" {
			return messages.PowerReply{}, outcome.Permanent(fmt.Errorf("no VM named gone"))
		}
		return messages.PowerReply{State: "on", Detail: "reset done"}, nil
	}}
	r.worker(f, nil)
	ask := func(body []byte) (*nats.Msg, error) {
		return r.Conn().Request(subj.Power("fake"), body, 10*time.Second)
	}
	comp := func(name string) messages.Computer {
		return messages.Computer{Name: name, Provisioner: "fake", Type: messages.TypeVirtualMachine}
	}
	pr := messages.PowerRequest{JobID: "job-p", Attempt: 2, Action: messages.PowerReset, Computer: comp("vm-1")}
	wantRefused := func(name string, body []byte, code, want string) {
		t.Helper()
		msg, err := ask(body)
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get("Nats-Service-Error-Code"); got != code || !strings.Contains(string(msg.Data), want) {
			t.Errorf("%s: code %q body %s, want %s containing %q", name, got, msg.Data, code, want)
		}
	}
	// No coordinator yet: no jobs bucket, no power.
	wantRefused("no jobs bucket", messages.Encode(pr), "403", "KV bucket vcl_jobs does not exist")

	enrolled := comp("vm-1")
	enrolled.Address, enrolled.Attributes = "10.1.0.17", map[string]string{"vm_path": "/DC0/vm/lab/vm-1"}
	req := messages.Request{JobID: "job-p", Attempt: 2, Step: messages.StepPostload, Computer: enrolled,
		Image: messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"}, Reload: messages.ReloadIfNeeded}
	r.Postloading(req)
	gone := req
	gone.JobID, gone.Computer = "job-g", comp("gone")
	r.Postloading(gone)
	r.PutJob(messages.JobRecord{ID: "job-r", State: messages.StateReady, Attempt: 1, Enrolled: &enrolled})

	// The holder at its current attempt: served, on the enrolled computer
	// whatever the request's computer says besides its name.
	forged := pr
	forged.Computer.Address, forged.Computer.Attributes = "192.0.2.66", map[string]string{"vm_path": "/DC0/vm/other-vm"}
	msg, err := ask(messages.Encode(forged))
	if err != nil {
		t.Fatal(err)
	}
	var rep messages.PowerReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil || rep.State != "on" || rep.Action != "reset" || rep.Computer != "vm-1" {
		t.Fatalf("reply %s (%v)", msg.Data, err)
	}
	if got := f.PowerRequests(); len(got) != 1 || got[0].Computer.Address != "10.1.0.17" || got[0].Computer.Attributes["vm_path"] != "/DC0/vm/lab/vm-1" {
		t.Fatalf("provisioner got %+v, want the enrolled computer", got)
	}
	other := pr
	other.Computer = comp("vm-2")
	stale := pr
	stale.Attempt = 1
	noJob := pr
	noJob.JobID = ""
	ready, unknown := pr, pr
	ready.JobID, unknown.JobID = "job-r", "job-x"
	bad := []struct {
		name string
		body []byte
		code string
		want string
	}{
		{"garbage", []byte("{{{"), "400", "malformed JSON"},
		{"unknown action", []byte(`{"job_id":"job-p","attempt":2,"action":"explode","computer":{"name":"vm-1","provisioner":"fake","type":"blade"}}`), "400", "action"},
		{"other provisioner", []byte(`{"job_id":"job-p","attempt":2,"action":"on","computer":{"name":"vm-1","provisioner":"xcat","type":"blade"}}`), "400", "serves"},
		{"computer the job does not hold", messages.Encode(other), "403", "job job-p does not hold vm-2"},
		{"stale attempt", messages.Encode(stale), "409", "attempt 1 is not job job-p's current attempt 2"},
		{"job not in post-load", messages.Encode(ready), "409", "job job-r is in state ready: power only during its post-load"},
		{"no job", messages.Encode(noJob), "403", "must name its job_id"},
		{"unknown job", messages.Encode(unknown), "403", "job job-x is unknown"},
		{"permanent failure", messages.Encode(messages.PowerRequest{JobID: "job-g", Attempt: 2, Action: messages.PowerOn, Computer: comp("gone")}), "400", "no VM named gone"},
	}
	for _, b := range bad {
		wantRefused(b.name, b.body, b.code, b.want)
	}
	if n := len(f.PowerRequests()); n != 2 {
		t.Fatalf("provisioner got %d power requests, want 2 (the holder's and the one that failed)", n)
	}
}

// The status endpoint says what a worker of the pool is doing.
func TestStatusEndpoint(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	started := make(chan struct{})
	release := make(chan struct{})
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, p progress.Progress) (loaderworker.LoadReport, error) {
		close(started)
		<-release
		return loaderworker.LoadReport{Detail: "loaded", Reloaded: true}, nil
	}}
	w, _ := r.worker(f, func(c *loaderworker.Config) { c.Settings.Concurrency = 3 })
	r.Publish(request("job-st", 1))
	<-started
	msg, err := r.Conn().Request(subj.Status(messages.StepLoad, "fake"), nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st messages.WorkerStatus
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		t.Fatal(err)
	}
	want := messages.WorkerStatus{Worker: w.WorkerID(), Step: messages.StepLoad, Pool: "fake", Running: 1, Concurrency: 3}
	if st != want {
		t.Fatalf("status %+v, want %+v", st, want)
	}
	close(release)
	if res := r.Result(resultWait); res.Outcome != messages.OutcomeReady {
		t.Fatalf("got %+v", res)
	}
}
