package windows_test

import (
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/windows"
)

func TestProfileTable(t *testing.T) {
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
		{"windows", "10", messages.TypeBlade, false, "windows/10/baremetal", 15 * time.Second, 10 * time.Minute, 5 * time.Second, messages.OnTimeoutPowerReset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := windows.Profile(tc.version, tc.typ, tc.sysprep)
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

func TestModuleProfileReadsTheRequest(t *testing.T) {
	t.Parallel()
	if p := (windows.Module{}).Profile(messages.Request{Image: messages.Image{OSVersion: "XP"}, Computer: messages.Computer{Type: messages.TypeBlade}}); p.Name != "windows/xp" {
		t.Fatalf("XP row = %s", p.Name)
	}
}
