package linux

import (
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
)

// Profile implements osworker.Module: Linux has one row, whatever the
// version or computer type (design.md: 5 s / 10 min / 5 s, then a power
// reset and 15 s / 10 min).
func (Module) Profile(messages.Request) messages.WaitProfile { return Profile() }

// Profile is the built-in Linux wait profile.
func Profile() messages.WaitProfile {
	return messages.WaitProfile{
		Name: Family, InitialDelay: osworker.D(5 * time.Second), Poll: osworker.D(5 * time.Second),
		AnswerTimeout: osworker.D(10 * time.Minute), ReadyTimeout: osworker.D(10 * time.Minute),
		OnTimeout:         messages.OnTimeoutPowerReset,
		ResetInitialDelay: osworker.D(osworker.ResetInitialDelay), ResetAnswerTimeout: osworker.D(osworker.ResetAnswerTimeout),
		AttemptFactor: osworker.DefaultAttemptFactor,
	}
}
