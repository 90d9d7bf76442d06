package osworker_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
)

func TestDefaultProfileTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		family, version, typ string
		sysprep              bool
		name                 string
		delay, answer, poll  time.Duration
		onTimeout            string
	}{
		{"windows", "xp", messages.TypeBlade, true, "windows/xp", 15 * time.Second, 15 * time.Minute, 8 * time.Second, messages.OnTimeoutRetry},
		{"windows", "2003", messages.TypeVirtualMachine, false, "windows/2003", 15 * time.Second, 15 * time.Minute, 8 * time.Second, messages.OnTimeoutRetry},
		{"windows", "7", messages.TypeVirtualMachine, true, "windows/7/virtualmachine", 5 * time.Second, 5 * time.Minute, 5 * time.Second, messages.OnTimeoutPowerReset},
		{"windows", "7", messages.TypeBlade, true, "windows/7/sysprep", 60 * time.Second, 30 * time.Minute, 5 * time.Second, messages.OnTimeoutPowerReset},
		{"windows", "2008", messages.TypeLab, false, "windows/2008/baremetal", 15 * time.Second, 10 * time.Minute, 5 * time.Second, messages.OnTimeoutPowerReset},
		{"Windows", "10", messages.TypeBlade, false, "windows/10/baremetal", 15 * time.Second, 10 * time.Minute, 5 * time.Second, messages.OnTimeoutPowerReset},
		{"linux", "12", messages.TypeVirtualMachine, false, "linux", 5 * time.Second, 10 * time.Minute, 5 * time.Second, messages.OnTimeoutPowerReset},
		{"bsd", "", messages.TypeBlade, false, "bsd", 5 * time.Second, 10 * time.Minute, 5 * time.Second, messages.OnTimeoutPowerReset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := osworker.DefaultProfile(tc.family, tc.version, tc.typ, tc.sysprep)
			if p.Name != tc.name || p.InitialDelay.D() != tc.delay || p.AnswerTimeout.D() != tc.answer ||
				p.Poll.D() != tc.poll || p.OnTimeout != tc.onTimeout {
				t.Fatalf("got %+v", p)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("built-in profile invalid: %v", err)
			}
			if p.OnTimeout == messages.OnTimeoutPowerReset &&
				(p.ResetInitialDelay.D() != 15*time.Second || p.ResetAnswerTimeout.D() != 10*time.Minute) {
				t.Fatalf("after-reset budget = %s/%s, want 15s/10m", p.ResetInitialDelay, p.ResetAnswerTimeout)
			}
		})
	}
}

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
	return osworker.DefaultProfile("linux", req.Image.OSVersion, req.Computer.Type, req.Image.Sysprep)
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
			p, err := ov.Apply(osworker.DefaultProfile(fam, "7", messages.TypeBlade, true), img, messages.TypeBlade)
			if err == nil {
				if verr := p.Validate(); verr != nil {
					t.Fatalf("accepted overrides give an invalid profile: %v", verr)
				}
			}
		}
	})
}
