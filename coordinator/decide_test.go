package coordinator

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
)

func live(state string, attempt, maxAttempts int, hist ...messages.StepRecord) messages.JobRecord {
	return messages.JobRecord{ID: "j", State: state, Attempt: attempt, MaxAttempts: maxAttempts, Steps: hist,
		Spec: messages.JobSpec{Computer: messages.Computer{Name: "c", Provisioner: "vmware", Type: "blade"},
			Image: messages.Image{Name: "i", OSFamily: "linux"}, Reload: messages.ReloadIfNeeded}}
}

func res(attempt int, step string, o messages.Outcome) messages.Result {
	return messages.Result{JobID: "j", Attempt: attempt, Step: step, Outcome: o, Detail: "d"}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	loadRetry := messages.StepRecord{Attempt: 1, Step: messages.StepLoad, Outcome: messages.OutcomeRetry}
	cases := []struct {
		name string
		rec  messages.JobRecord
		res  messages.Result
		want verdict
	}{
		{"queued waits for load 1", live(messages.StateQueued, 1, 3), res(1, "load", "ready"), verdictApply},
		{"loading", live(messages.StateLoading, 2, 3, loadRetry), res(2, "load", "ready"), verdictApply},
		{"postloading", live(messages.StatePostloading, 1, 3), res(1, "postload", "retry"), verdictApply},
		{"older attempt", live(messages.StateLoading, 2, 3, loadRetry), res(1, "postload", "ready"), verdictStale},
		{"other step", live(messages.StateLoading, 1, 3), res(1, "postload", "ready"), verdictStale},
		{"future attempt", live(messages.StateLoading, 1, 3), res(2, "load", "ready"), verdictStale},
		{"duplicate", live(messages.StateLoading, 2, 3, loadRetry), res(1, "load", "retry"), verdictDuplicate},
		{"ended", live(messages.StateReady, 1, 3), res(1, "postload", "ready"), verdictStale},
		{"canceled", live(messages.StateCanceled, 1, 3), res(1, "load", "ready"), verdictStale},
	}
	for _, tc := range cases {
		if got := classify(tc.rec, tc.res); got != tc.want {
			t.Errorf("%s: verdict %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	no := false
	cases := []struct {
		name     string
		rec      messages.JobRecord
		res      messages.Result
		state    string
		attempt  int
		next     string // step dispatched next ("" : none)
		errHas   string
		reloaded bool
	}{
		{"load ready", live(messages.StateLoading, 1, 3), res(1, "load", "ready"), messages.StatePostloading, 1, "postload", "", true},
		{"postload ready", live(messages.StatePostloading, 2, 3), res(2, "postload", "ready"), messages.StateReady, 2, "", "", false},
		{"retry with attempts left", live(messages.StatePostloading, 2, 3), res(2, "postload", "retry"), messages.StateLoading, 3, "load", "", false},
		{"retry on the last attempt", live(messages.StateLoading, 3, 3), res(3, "load", "retry"), messages.StateFailed, 3, "", "gave up after 3 attempts", false},
		{"fail", live(messages.StateLoading, 1, 3), res(1, "load", "fail"), messages.StateFailed, 1, "", "will not help", false},
	}
	for _, tc := range cases {
		got := decide(tc.rec, tc.res, now, time.Hour)
		if got.State != tc.state || got.Attempt != tc.attempt || len(got.Steps) != len(tc.rec.Steps)+1 || !strings.Contains(got.Error, tc.errHas) {
			t.Errorf("%s: got %s attempt %d steps %d error %q", tc.name, got.State, got.Attempt, len(got.Steps), got.Error)
		}
		if live := !messages.Terminal(got.State); live != (tc.next != "") || live && currentStep(got) != tc.next {
			t.Errorf("%s: next step %q (state %s), want %q", tc.name, currentStep(got), got.State, tc.next)
		}
		if wantDL := tc.next != ""; wantDL != got.StepDeadline.Equal(now.Add(time.Hour)) {
			t.Errorf("%s: step deadline %v", tc.name, got.StepDeadline)
		}
		if got.Reloaded != tc.reloaded {
			t.Errorf("%s: reloaded %v", tc.name, got.Reloaded)
		}
	}
	r := res(1, "load", "ready")
	r.Reloaded = &no
	if got := decide(live(messages.StateLoading, 1, 3), r, now, time.Hour); got.Reloaded || request(got, "postload").Reloaded {
		t.Error("a skipped load must not mark the postload reloaded")
	}
	orig := live(messages.StateLoading, 1, 3)
	orig.Steps = make([]messages.StepRecord, 0, 4)
	_ = decide(orig, r, now, time.Hour)
	if len(orig.Steps) != 0 {
		t.Error("decide changed its input")
	}
}

func TestAPIErrorCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		code int
	}{
		{badInput(errors.New("x")), 400},
		{errUnknownJob, 404},
		{errBusy, 409},
		{errIDConflict, 409},
		{errors.New("nats: timeout"), 503},
	}
	for _, tc := range cases {
		if got := apiError(tc.err); got.Code != tc.code {
			t.Errorf("%v: code %d, want %d", tc.err, got.Code, tc.code)
		}
	}
}

// FuzzDecodeSubmit: whatever the body, the submit decoder answers a valid
// job id and a spec that validates, or a 400 error; it never panics.
func FuzzDecodeSubmit(f *testing.F) {
	f.Add(messages.Encode(spec("res-1042", "vm-017")))
	f.Add([]byte(`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"i","os_family":"linux","wait_profile":{"poll":"5s"}}}`))
	f.Add([]byte(`{"max_attempts": 1e99}`))
	f.Add([]byte(`nul`))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, s, err := decodeSubmit(data)
		if err != nil {
			if apiError(err).Code != 400 {
				t.Fatalf("decode error is not a 400: %v", err)
			}
			return
		}
		if err := messages.ValidJobID("id", id); err != nil {
			t.Fatal(err)
		}
		if s.ID != "" {
			t.Fatal("the stored spec keeps the id")
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted spec does not validate: %v", err)
		}
	})
}

// A key learned by an earlier attempt of the same job reaches the next
// post-load: with its load skipped, it must expect that key, not the one
// the enrolment had when the job was accepted.
func TestPostloadCarriesTheKeyLearnedByAnEarlierAttempt(t *testing.T) {
	t.Parallel()
	old := &messages.LearnedHostKey{Key: "ssh-ed25519 OLD", JobID: "before", Attempt: 1}
	k2 := &messages.LearnedHostKey{Key: "ssh-ed25519 NEW", JobID: "j", Attempt: 1}
	enrolled := messages.Computer{Name: "c", Provisioner: "vmware", Type: messages.TypeBlade, LearnedHostKey: old}
	rec := messages.JobRecord{ID: "j", State: messages.StatePostloading, Attempt: 2, MaxAttempts: 3, Enrolled: &enrolled,
		Steps: []messages.StepRecord{{Attempt: 1, Step: messages.StepLoad, Outcome: messages.OutcomeReady},
			{Attempt: 1, Step: messages.StepPostload, Outcome: messages.OutcomeRetry, LearnedHostKey: k2},
			{Attempt: 2, Step: messages.StepLoad, Outcome: messages.OutcomeReady}}}
	if got := request(rec, messages.StepPostload).Computer.LearnedHostKey; got == nil || got.Key != k2.Key {
		t.Fatalf("attempt 2's post-load expects %+v, want the key attempt 1 learned", got)
	}
	if got := request(rec, messages.StepLoad).Computer.LearnedHostKey; got != old {
		t.Fatalf("a load request carries %+v, want the enrolment's", got)
	}
	pinned := enrolled
	pinned.HostKey = "ssh-ed25519 PINNED"
	rec.Enrolled = &pinned
	if got := request(rec, messages.StepPostload).Computer; got.HostKey != pinned.HostKey || got.LearnedHostKey != old {
		t.Fatalf("a pinned key stays the check: %+v", got)
	}
}

// A retry loads the image again: attempts after the first say reload
// always whatever the job's reload (the provisioner would otherwise skip a
// computer that runs the image but failed its post-load).
func TestRetryAlwaysReloads(t *testing.T) {
	t.Parallel()
	rec := messages.JobRecord{ID: "j", State: messages.StateLoading, Attempt: 1, MaxAttempts: 3,
		Spec: messages.JobSpec{Computer: messages.Computer{Name: "c", Provisioner: "vmware", Type: messages.TypeBlade}, Reload: messages.ReloadIfNeeded}}
	if r := request(rec, messages.StepLoad); r.Reload != messages.ReloadIfNeeded {
		t.Fatalf("attempt 1: reload %q, want the job's if-needed", r.Reload)
	}
	rec.Attempt = 2
	if r := request(rec, messages.StepLoad); r.Reload != messages.ReloadAlways {
		t.Fatalf("attempt 2: reload %q, want always", r.Reload)
	}
}

// endTransition records a job's end once, never over another job's hold
// (drained too) or a later job's end (a repeated end from a sweep or a
// redelivered result), never from a record of another computer, and
// still over an older job's state (this job's hold was lost).
func TestEndTransition(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	job := func(id, state string, created time.Time) messages.JobRecord {
		return messages.JobRecord{ID: id, State: state, Created: created, Spec: messages.JobSpec{Computer: messages.Computer{Name: "vm"}, Image: messages.Image{Name: "img"}}}
	}
	comp := func(job, state, ended string, since time.Time) messages.Enrollment {
		return messages.Enrollment{Computer: messages.Computer{Name: "vm"}, State: state, Job: job, JobEnded: ended, Since: since}
	}
	other := job("j1", messages.StateReady, t0)
	other.Spec.Computer.Name = "vm-other"
	cases := []struct {
		name   string
		e      messages.Enrollment
		rec    messages.JobRecord
		change bool
		state  string
	}{
		{"held by this job: recorded", comp("j1", messages.ComputerReloading, "", t0.Add(time.Second)), job("j1", messages.StateReady, t0), true, messages.ComputerInUse},
		{"already recorded", comp("j1", messages.ComputerInUse, messages.StateReady, t0.Add(time.Minute)), job("j1", messages.StateReady, t0), false, messages.ComputerInUse},
		{"drained, already recorded", comp("j1", messages.ComputerMaintenance, messages.StateReady, t0.Add(time.Minute)), job("j1", messages.StateReady, t0), false, messages.ComputerMaintenance},
		{"drained while held: recorded, stays drained", comp("j1", messages.ComputerMaintenance, "", t0.Add(time.Second)), job("j1", messages.StateFailed, t0), true, messages.ComputerMaintenance},
		{"a later job holds it", comp("j2", messages.ComputerReloading, "", t0.Add(time.Minute)), job("j1", messages.StateReady, t0), false, messages.ComputerReloading},
		{"a later job ended on it", comp("j2", messages.ComputerInUse, messages.StateReady, t0.Add(time.Minute)), job("j1", messages.StateReady, t0), false, messages.ComputerInUse},
		{"an older job's state (this hold lost)", comp("j0", messages.ComputerAvailable, messages.StateCanceled, t0.Add(-time.Minute)), job("j1", messages.StateReady, t0), true, messages.ComputerInUse},
		{"another job holds it drained, since before this job", comp("j2", messages.ComputerMaintenance, "", t0.Add(-time.Minute)), job("j1", messages.StateReady, t0), false, messages.ComputerMaintenance},
		{"a record of another computer (an id resubmitted for it)", comp("j1", messages.ComputerReloading, "", t0.Add(time.Second)), other, false, messages.ComputerReloading},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, msg, err := endTransition(c.e, c.rec, t0.Add(2*time.Minute))
			if err != nil || (msg != "") != c.change || got.State != c.state {
				t.Errorf("change %q, state %s, err %v; want change %v, state %s", msg, got.State, err, c.change, c.state)
			}
			if c.change && (got.Job != c.rec.ID || got.JobEnded != c.rec.State || !got.Tainted) {
				t.Errorf("recorded %+v; want job %s ended %s, tainted", got, c.rec.ID, c.rec.State)
			}
		})
	}
}
