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

func apiCode(t *testing.T, err error) *APIError {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an *APIError, got %v", err)
	}
	return ae
}

func TestSubmitIdempotentAndLocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	release := make(chan struct{})
	e.worker(messages.StepLoad, "vmware", func(messages.Request) reply {
		return reply{outcome: messages.OutcomeReady, detail: "cloned", wait: release}
	})
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))

	first := e.submit(spec("res-1", "vm-017"))
	again := e.submit(spec("res-1", "vm-017"))
	if again.ID != first.ID || !again.Created.Equal(first.Created) {
		t.Errorf("resubmit made another job: %+v vs %+v", again, first)
	}
	other := spec("res-1", "vm-017")
	other.Image.Name = "centos-7"
	_, err := e.cl.Submit(ctx(t), other)
	if ae := apiCode(t, err); ae.Code != 409 || !strings.Contains(ae.Message, "res-1") || !strings.Contains(ae.Message, "different spec") {
		t.Errorf("same id, other spec: %d %q", ae.Code, ae.Message)
	}
	_, err = e.cl.Submit(ctx(t), spec("res-2", "vm-017"))
	if ae := apiCode(t, err); ae.Code != 409 || !strings.Contains(ae.Message, "job res-1 holds it") || !strings.Contains(ae.Message, "vm-017") {
		t.Errorf("busy computer: %d %q", ae.Code, ae.Message)
	}
	if h := e.lockHolder("vm-017"); h != "res-1" {
		t.Errorf("lock held by %q", h)
	}

	close(release)
	e.waitState("res-1", messages.StateReady)
	poll.Until(t, "vm-017 released", func() bool { return e.lockHolder("vm-017") == "" })
	e.submit(spec("res-2", "vm-017"))
	e.waitState("res-2", messages.StateReady)

	gen := e.submit(spec("", "vm-018"))
	if err := messages.ValidJobID("id", gen.ID); err != nil {
		t.Errorf("generated id: %v", err)
	}
	e.waitState(gen.ID, messages.StateReady)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	valid := string(messages.Encode(spec("ok-1", "vm-1")))
	cases := []struct {
		name, subject, body string
		code                int
		has                 string
	}{
		{"malformed JSON", subj.JobSubmit(), `{"computer": {`, 400, "malformed JSON"},
		{"not an object", subj.JobSubmit(), `[1,2]`, 400, "not a JSON object"},
		{"empty body", subj.JobSubmit(), ``, 400, "empty"},
		{"missing computer name", subj.JobSubmit(), `{"computer":{"provisioner":"vmware","type":"blade"},"image":{"name":"i","os_family":"linux"}}`, 400, "computer.name"},
		{"missing os family", subj.JobSubmit(), `{"computer":{"name":"a","provisioner":"vmware","type":"blade"},"image":{"name":"i"}}`, 400, "image.os_family"},
		{"provisioner not a token", subj.JobSubmit(), `{"computer":{"name":"a","provisioner":"vm.ware","type":"blade"},"image":{"name":"i","os_family":"linux"}}`, 400, "computer.provisioner"},
		{"unknown field", subj.JobSubmit(), strings.Replace(valid, `"os_version"`, `"osversion"`, 1), 400, "osversion"},
		{"wrong type", subj.JobSubmit(), `{"max_attempts":"three"}`, 400, "max_attempts"},
		{"oversized", subj.JobSubmit(), `{"id":"` + strings.Repeat("x", 200*1024) + `"}`, 400, "larger than 65536"},
		{"get without id", subj.JobGet(), `{}`, 400, "id: is required"},
		{"get bad id", subj.JobGet(), `{"id":"a b"}`, 400, "id: must be"},
		{"get unknown", subj.JobGet(), `{"id":"nope"}`, 404, "nope"},
		{"cancel unknown", subj.JobCancel(), `{"id":"nope"}`, 404, "nope"},
		{"list unknown state", subj.JobList(), `{"state":"done"}`, 400, "queued, loading, postloading, ready, failed, canceled"},
		{"list limit", subj.JobList(), `{"limit":5000}`, 400, "limit"},
		{"list garbage", subj.JobList(), `nope`, 400, "not a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out any
			err := e.cl.do(ctx(t), tc.subject, []byte(tc.body), &out)
			ae := apiCode(t, err)
			if ae.Code != tc.code || !strings.Contains(ae.Message, tc.has) {
				t.Errorf("got %d %q, want %d containing %q", ae.Code, ae.Message, tc.code, tc.has)
			}
		})
	}

	t.Run("full 1 MiB body", func(t *testing.T) {
		body := []byte(`{"id":"` + strings.Repeat("x", 1<<20) + `"}`)
		var out any
		err := e.cl.do(ctx(t), subj.JobSubmit(), body, &out)
		var ae *APIError
		if err == nil || errors.As(err, &ae) {
			t.Fatalf("want a client-side error, got %v", err)
		}
		if !strings.Contains(err.Error(), "max_payload") || !strings.Contains(err.Error(), "smaller") {
			t.Errorf("error does not say what to do: %v", err)
		}
	})

	// The coordinator still serves, and nothing was recorded.
	jobs, err := e.cl.List(ctx(t), messages.ListRequest{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("after bad input: %d jobs, %v", len(jobs), err)
	}
	e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.submit(spec("ok-1", "vm-1"))
	e.waitState("ok-1", messages.StateReady)
}

// TestGarbageResults: garbage on the result (and advisory) subjects is rejected and
// logged; the coordinator keeps working and no record is corrupted.
func TestGarbageResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	hold := make(chan struct{})
	defer close(hold)
	loader := e.worker(messages.StepLoad, "vmware", func(messages.Request) reply { return reply{wait: hold} })
	e.submit(spec("live", "vm-g"))
	req := loader.next()
	rev := e.revision("live")

	for _, body := range []string{
		`not json`, `{}`, `[]`, `{"job_id":"../etc","attempt":1,"step":"load","outcome":"ready"}`,
		`{"job_id":"live","attempt":0,"step":"load","outcome":"ready"}`,
		`{"job_id":"live","attempt":1,"step":"reboot","outcome":"ready"}`,
		`{"job_id":"live","attempt":1,"step":"load","outcome":"maybe"}`,
		`{"job_id":"ghost","attempt":1,"step":"load","outcome":"ready"}`,
		strings.Repeat("{", 60*1024),
	} {
		publishRaw(t, e.js, subj.LoadResult(), []byte(body))
		publishRaw(t, e.js, subj.PostloadResult(), []byte(body))
	}
	for _, body := range []string{`junk`, `{"stream":"VCL_LOAD","stream_seq":999999,"deliveries":5}`, `{"stream":"NOPE","stream_seq":1}`, `{}`} {
		if err := e.nc.Publish(advisoryPrefix+"."+subj.LoadStream()+".loader-vmware", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e.drained()
	if got := e.revision("live"); got != rev {
		t.Fatalf("garbage changed the record (revision %d -> %d)", rev, got)
	}

	// A result without outcome is applied as fail, with a detail that says so.
	noOutcome := resultFor(req, "", "whatever")
	publishRaw(t, e.js, subj.LoadResult(), []byte(strings.Replace(string(messages.Encode(noOutcome)), `"outcome":"",`, "", 1)))
	rec := e.waitState("live", messages.StateFailed)
	if len(rec.Steps) != 1 || rec.Steps[0].Outcome != messages.OutcomeFail || !strings.Contains(rec.Steps[0].Detail, "no outcome") {
		t.Errorf("history after a result without outcome: %+v", rec.Steps)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	release := make(chan struct{})
	e.worker(messages.StepLoad, "vmware", func(messages.Request) reply {
		return reply{outcome: messages.OutcomeReady, detail: "late", wait: release}
	})
	aborts, err := e.nc.SubscribeSync(subj.Abort("job-c"))
	if err != nil {
		t.Fatal(err)
	}
	e.submit(spec("job-c", "vm-c"))
	e.waitState("job-c", messages.StateLoading)

	rec, err := e.cl.Cancel(ctx(t), "job-c", "reservation withdrawn")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != messages.StateCanceled || !strings.Contains(rec.Error, "reservation withdrawn") {
		t.Errorf("cancel answered %s %q", rec.State, rec.Error)
	}
	m, err := aborts.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal("no abort message:", err)
	}
	var ab messages.Abort
	if err := messages.Decode(m.Data, &ab, false); err != nil || ab.JobID != "job-c" || ab.Attempt != 0 || ab.Reason != "reservation withdrawn" {
		t.Errorf("abort = %+v (%v)", ab, err)
	}
	if h := e.lockHolder("vm-c"); h != "" {
		t.Errorf("lock still held by %q", h)
	}
	rev := e.revision("job-c")

	close(release) // the late load result
	e.drained()
	if got := e.revision("job-c"); got != rev {
		t.Errorf("late result changed the canceled job (revision %d -> %d)", rev, got)
	}
	again, err := e.cl.Cancel(ctx(t), "job-c", "twice")
	if err != nil || again.State != messages.StateCanceled || !slices.Equal(steps(again), steps(rec)) || !strings.Contains(again.Error, "withdrawn") {
		t.Errorf("cancel of an ended job: %+v, %v", again, err)
	}
	// The computer is free for the next job.
	e.submit(spec("job-d", "vm-c"))
	if h := e.lockHolder("vm-c"); h != "job-d" {
		t.Errorf("lock held by %q, want job-d", h)
	}
}
