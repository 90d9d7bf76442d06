package messages_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/loadpool/loadpool/messages"
)

func TestOutcomeDecoding(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body string
		want messages.Outcome
		err  string
	}{
		{`"ready"`, messages.OutcomeReady, ""},
		{`"retry"`, messages.OutcomeRetry, ""},
		{`"fail"`, messages.OutcomeFail, ""},
		{`1`, messages.OutcomeReady, ""},
		{`0`, messages.OutcomeRetry, ""},
		{`null`, messages.OutcomeFail, ""},
		{`"READY"`, "", "must be"},
		{`2`, "", "must be"},
		{`true`, "", "must be"},
	}
	for _, c := range cases {
		var r struct {
			Outcome messages.Outcome `json:"outcome"`
		}
		err := json.Unmarshal([]byte(`{"outcome":`+c.body+`}`), &r)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.body, err, c.err)
			}
			continue
		}
		if err != nil || r.Outcome != c.want {
			t.Errorf("%s: got %q %v, want %q", c.body, r.Outcome, err, c.want)
		}
	}
}

func TestDecodeResult(t *testing.T) {
	t.Parallel()
	r, err := messages.DecodeResult([]byte(`{"job_id":"j-1","attempt":2,"step":"postload","outcome":0,"detail":"no SSH","worker":"w/1"}`))
	if err != nil || r.Outcome != messages.OutcomeRetry || r.Attempt != 2 {
		t.Fatalf("%+v %v", r, err)
	}
	// No outcome: malformed, treated as fail, with a detail and an error that say so.
	r, err = messages.DecodeResult([]byte(`{"job_id":"j-1","attempt":1,"step":"load","worker":"perl/9"}`))
	var fe *messages.FieldError
	if !errors.As(err, &fe) || fe.Field != "outcome" || r.Outcome != messages.OutcomeFail || !strings.Contains(r.Detail, "no outcome") {
		t.Fatalf("missing outcome: %+v %v", r, err)
	}
	for body, want := range map[string]string{
		`{"job_id":"../x","attempt":1,"step":"load","outcome":"ready"}`: "job_id",
		`{"job_id":"j","attempt":0,"step":"load","outcome":"ready"}`:    "attempt",
		`{"job_id":"j","attempt":1,"step":"boot","outcome":"ready"}`:    "step",
		`[1,2]`:                      "not a JSON object",
		``:                           "empty",
		`{"job_id":"j"} {"x":1}`:     "more than one value",
		`{"job_id":5}`:               "field job_id must be a string",
		strings.Repeat(" ", 70*1024): "larger than 65536",
	} {
		if _, err := messages.DecodeResult([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40q: err %v, want it to mention %q", body, err, want)
		}
	}
}

func validSpec() string {
	return `{"id":"res-1042","computer":{"name":"vm-017","provisioner":"vmware","type":"virtualmachine","address":"10.1.0.17"},
	"image":{"name":"win7-sp1-v3","os_family":"windows","os_version":"7","sysprep":true,"reload_minutes":30},"max_attempts":3,"reload":"if-needed"}`
}

func TestDecodeJobSpec(t *testing.T) {
	t.Parallel()
	s, err := messages.DecodeJobSpec([]byte(validSpec()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Computer.SSHAddress() != "10.1.0.17:22" || s.MaxAttempts != 3 {
		t.Fatalf("%+v", s)
	}
	d, err := messages.DecodeJobSpec([]byte(`{"computer":{"name":"n1","provisioner":"xcat","type":"blade"},"image":{"name":"rocky","os_family":"linux"}}`))
	if err != nil || d.MaxAttempts != messages.DefaultMaxAttempts || d.Reload != messages.ReloadIfNeeded || d.Computer.SSHAddress() != "n1:22" {
		t.Fatalf("defaults: %+v %v", d, err)
	}
	bad := map[string]string{
		`{"image":{"name":"x","os_family":"linux"}}`:                                                                                       "computer.name: is required",
		`{"computer":{"name":"a b","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux"}}`:                              "computer.name",
		`{"computer":{"name":"a","provisioner":"v.m","type":"lab"},"image":{"name":"x","os_family":"linux"}}`:                              "computer.provisioner",
		`{"computer":{"name":"a","provisioner":"p","type":"desktop"},"image":{"name":"x","os_family":"linux"}}`:                            "computer.type",
		`{"computer":{"name":"a","provisioner":"p","type":"lab","address":"h:99999"},"image":{"name":"x","os_family":"linux"}}`:            "computer.address",
		`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x"}}`:                                                    "image.os_family: is required",
		`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"lin ux"}}`:                               "image.os_family",
		`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux"},"max_attempts":99}`:              "max_attempts",
		`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux"},"reload":"never"}`:               "reload",
		`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux"},"max_atempts":2}`:                "unknown field",
		`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux","wait_profile":{"poll":"soon"}}}`: "image.wait_profile",
		`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux","wait_profile":{"pol":"5s"}}}`:    "image.wait_profile",
		`{"id":"a/b","computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux"}}`:                     "id",
	}
	for body, want := range bad {
		if _, err := messages.DecodeJobSpec([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n  err %v, want it to mention %q", body, err, want)
		}
	}
}

func TestWaitProfile(t *testing.T) {
	t.Parallel()
	base := messages.WaitProfile{Name: "windows/7/sysprep", InitialDelay: messages.Duration(60e9), Poll: messages.Duration(5e9),
		AnswerTimeout: messages.Duration(1800e9), ReadyTimeout: messages.Duration(1800e9), OnTimeout: messages.OnTimeoutPowerReset,
		ResetInitialDelay: messages.Duration(15e9), ResetAnswerTimeout: messages.Duration(600e9), AttemptFactor: 1.5}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := messages.DecodeProfileOverride([]byte(`{"answer_timeout":"45m","poll":2}`), base)
	if err != nil || p.AnswerTimeout.D().Minutes() != 45 || p.Poll.D().Seconds() != 2 || p.InitialDelay != base.InitialDelay {
		t.Fatalf("override: %+v %v", p, err)
	}
	if a3 := base.ForAttempt(3); a3.AnswerTimeout.D().Minutes() != 67.5 || a3.InitialDelay != base.InitialDelay {
		t.Fatalf("attempt 3: %+v", a3)
	}
	for body, want := range map[string]string{
		`{"on_timeout":"pray"}`: "on_timeout", `{"poll":"-5s"}`: "negative", `{"poll":0}`: "poll", `{"answer_timeout":"x"}`: "duration",
	} {
		if _, err := messages.DecodeProfileOverride([]byte(body), base); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
	b, _ := json.Marshal(base)
	if !strings.Contains(string(b), `"answer_timeout":"30m0s"`) {
		t.Fatalf("durations travel as Go duration strings: %s", b)
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	s, err := messages.NewSubjects("")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{s.JobSubmit(), s.LoadRequest("vmware"), s.PostloadRequest("windows"), s.LoadResult(), s.Event("res-1"),
		s.Power("xcat"), s.Abort("res-1"), s.LoadStream(), s.ResultStream(), s.LoaderConsumer("vmware"), s.OSConsumer("linux"), s.JobsBucket()}
	want := []string{"vcl.job.submit", "vcl.load.request.vmware", "vcl.postload.request.windows", "vcl.load.result", "vcl.event.res-1",
		"vcl.power.xcat", "vcl.abort.res-1", "VCL_LOAD", "VCL_RESULTS", "loader-vmware", "os-linux", "vcl_jobs"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %q, want %q", got[i], want[i])
		}
	}
	if _, err := messages.NewSubjects("a.b"); err == nil {
		t.Error("a prefix with a dot must be refused")
	}
	p, _ := messages.NewSubjects("lab2")
	if p.LoadStream() != "LAB2_LOAD" || p.Event("x") != "lab2.event.x" {
		t.Errorf("prefix not applied: %s %s", p.LoadStream(), p.Event("x"))
	}
}

func TestSplitAddress(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"10.1.0.17": "10.1.0.17:22", "host:2222": "host:2222", "[::1]:22": "[::1]:22", "fe80::1": "[fe80::1]:22"} {
		c := messages.Computer{Name: "n", Address: in}
		if got := c.SSHAddress(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"h:0", "h:x", "a b", "h:1:2:"} {
		if _, _, err := messages.SplitAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzDecodeJobSpec(f *testing.F) {
	f.Add([]byte(validSpec()))
	f.Add([]byte(`{"computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux","wait_profile":{"poll":"1s"}}}`))
	f.Add([]byte(`{"max_attempts":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := messages.DecodeJobSpec(b)
		if err != nil {
			return
		}
		// An accepted spec is valid and survives a round trip.
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted spec does not validate: %v", err)
		}
		if _, err := messages.DecodeJobSpec(messages.Encode(s)); err != nil {
			t.Fatalf("accepted spec does not round-trip: %v\n%s", err, messages.Encode(s))
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"job_id":"j","attempt":1,"step":"load","outcome":"ready"}`))
	f.Add([]byte(`{"job_id":"j","attempt":1,"step":"postload","outcome":null,"profile":{"poll":"5s"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := messages.DecodeResult(b)
		if err == nil && !r.Outcome.Valid() {
			t.Fatalf("accepted result with outcome %q", r.Outcome)
		}
		if r.JobID != "" && !r.Outcome.Valid() {
			t.Fatalf("a result that names its job must carry a valid outcome, got %q", r.Outcome)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"job_id":"j","attempt":1,"step":"load","computer":{"name":"a","provisioner":"p","type":"lab"},"image":{"name":"x","os_family":"linux"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := messages.DecodeRequest(b)
		if err == nil && r.Validate() != nil {
			t.Fatal("accepted an invalid request")
		}
	})
}
