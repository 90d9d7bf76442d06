package linux_test

import (
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/linux"
)

// Linux has one row (design.md: 5 s / 10 min / 5 s, power reset, then
// 15 s / 10 min), whatever the version or computer type.
func TestProfileRow(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{messages.TypeVirtualMachine, messages.TypeBlade, messages.TypeLab} {
		p := linux.Module{}.Profile(messages.Request{Computer: messages.Computer{Type: typ}, Image: messages.Image{OSVersion: "12"}})
		if p.Name != "linux" || p.InitialDelay.D() != 5*time.Second || p.AnswerTimeout.D() != 10*time.Minute ||
			p.Poll.D() != 5*time.Second || p.OnTimeout != messages.OnTimeoutPowerReset ||
			p.ResetInitialDelay.D() != 15*time.Second || p.ResetAnswerTimeout.D() != 10*time.Minute {
			t.Fatalf("%s: got %+v", typ, p)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("built-in profile invalid: %v", err)
		}
	}
}
