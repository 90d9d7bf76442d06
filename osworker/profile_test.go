package osworker_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/osworker/windows"
)

// A module without profile rows is refused at start, naming its family
// (it used to borrow the Linux budget silently).
func TestModuleWithoutProfileRefused(t *testing.T) {
	t.Parallel()
	err := osworker.CheckModule(rowless{})
	if err == nil || !strings.Contains(err.Error(), `"bsd"`) || !strings.Contains(err.Error(), "no wait profile") {
		t.Fatalf("CheckModule = %v, want an error naming family bsd", err)
	}
	if err := osworker.CheckModule(linux.Module{}); err != nil {
		t.Fatalf("linux: %v", err)
	}
	if err := osworker.CheckModule(windows.Module{}); err != nil {
		t.Fatalf("windows: %v", err)
	}
}

type rowless struct{ osworker.Module }

func (rowless) Family() string                                { return "bsd" }
func (rowless) Profile(messages.Request) messages.WaitProfile { return messages.WaitProfile{} }

func TestParseOverridesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		want       []string
	}{
		{"not an array", `{"family": "linux"}`, []string{"JSON array"}},
		{"missing family", "[\n {\"set\": {\"poll\": \"1s\"}}\n]", []string{"entry 0", "line 2", "family"}},
		{"unknown entry field", "[\n {\"family\": \"linux\", \"set\": {}},\n {\"family\": \"linux\",\n  \"sysprp\": true, \"set\": {}}\n]",
			[]string{"entry 1", "line 3", "sysprp"}},
		{"unknown profile field", `[{"family": "linux", "set": {"answer_timout": "1m"}}]`, []string{"entry 0", "line 1", "set", "answer_timout"}},
		{"bad duration", `[{"family": "linux", "set": {"poll": "soon"}}]`, []string{"entry 0", "set", "soon"}},
		{"bad on_timeout", `[{"family": "windows", "version": "7", "set": {"on_timeout": "pray"}}]`, []string{"entry 0", "set.on_timeout", "pray"}},
		{"zero poll", `[{"family": "linux", "set": {"poll": "0s"}}]`, []string{"set.poll", "more than 0"}},
		{"bad type", `[{"family": "linux", "type": "vm", "set": {"poll": "1s"}}]`, []string{"entry 0", "type", "virtualmachine"}},
		{"no set", `[{"family": "linux"}]`, []string{"entry 0", "set", "required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := osworker.ParseOverrides([]byte(tc.file))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

type fixedModule struct{ osworker.Module }

func (fixedModule) Family() string { return "linux" }
func (fixedModule) Profile(req messages.Request) messages.WaitProfile {
	return linux.Module{}.Profile(req)
}

func request(attempt int, img messages.Image) messages.Request {
	return messages.Request{JobID: "j", Attempt: attempt, Step: messages.StepPostload,
		Computer: messages.Computer{Name: "c", Provisioner: "lab", Type: messages.TypeBlade}, Image: img}
}

func TestEffectiveProfile(t *testing.T) {
	t.Parallel()
	ov, err := osworker.ParseOverrides([]byte(`[
		{"family": "linux", "set": {"answer_timeout": "20m", "attempt_factor": 2}},
		{"family": "linux", "type": "virtualmachine", "set": {"answer_timeout": "1m"}},
		{"family": "linux", "version": "12", "set": {"poll": "7s"}}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		attempt       int
		img           messages.Image
		answer, ready time.Duration
		poll          time.Duration
		errField      string
	}{
		{"operator file", 1, messages.Image{OSFamily: "linux"}, 20 * time.Minute, 10 * time.Minute, 5 * time.Second, ""},
		{"version match", 1, messages.Image{OSFamily: "linux", OSVersion: "12"}, 20 * time.Minute, 10 * time.Minute, 7 * time.Second, ""},
		{"attempt factor", 3, messages.Image{OSFamily: "linux"}, 80 * time.Minute, 40 * time.Minute, 5 * time.Second, ""},
		{"image override wins", 2, messages.Image{OSFamily: "linux", WaitProfile: json.RawMessage(`{"answer_timeout": "3m", "attempt_factor": 1}`)},
			3 * time.Minute, 10 * time.Minute, 5 * time.Second, ""},
		{"bad image override", 1, messages.Image{OSFamily: "linux", WaitProfile: json.RawMessage(`{"on_timeout": "x"}`)}, 0, 0, 0, "on_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := osworker.EffectiveProfile(fixedModule{}, ov, request(tc.attempt, tc.img))
			if tc.errField != "" {
				if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), tc.errField) || !strings.Contains(err.Error(), "image.wait_profile") {
					t.Fatalf("err = %v, want a permanent error naming image.wait_profile %s", err, tc.errField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.AnswerTimeout.D() != tc.answer || p.ReadyTimeout.D() != tc.ready || p.Poll.D() != tc.poll {
				t.Fatalf("got answer %s ready %s poll %s", p.AnswerTimeout, p.ReadyTimeout, p.Poll)
			}
		})
	}
}

func FuzzParseOverrides(f *testing.F) {
	for _, s := range []string{`[]`, `[{"family": "linux", "set": {"poll": "1s"}}]`, `[{"family": "windows", "version": "7", "sysprep": true, "set": {"on_timeout": "retry"}}]`, `[{`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ov, err := osworker.ParseOverrides(data)
		if err != nil {
			return
		}
		for _, fam := range []string{"linux", "windows"} {
			img := messages.Image{Name: "i", OSFamily: fam, OSVersion: "7", Sysprep: true}
			base := linux.Profile()
			if fam == windows.Family {
				base = windows.Profile("7", messages.TypeBlade, true)
			}
			p, err := ov.Apply(base, img, messages.TypeBlade)
			if err == nil {
				if verr := p.Validate(); verr != nil {
					t.Fatalf("accepted overrides give an invalid profile: %v", verr)
				}
			}
		}
	})
}
