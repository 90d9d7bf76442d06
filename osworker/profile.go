package osworker

import (
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
)

// D converts a duration for a profile row.
func D(v time.Duration) messages.Duration { return messages.Duration(v) }

// Budgets that OS modules' rows share (design.md "Wait profiles"). Each
// module owns its rows (linux.Profile, windows.Profile); this package
// keeps the machinery: overrides, the effective profile, the attempt
// factor and the reset rules.
const (
	// ResetInitialDelay and ResetAnswerTimeout are the budget after a power
	// reset.
	ResetInitialDelay  = 15 * time.Second
	ResetAnswerTimeout = 10 * time.Minute
	// DefaultAttemptFactor: attempt 2 waits 1.5x, attempt 3 2.25x.
	DefaultAttemptFactor = 1.5
)

// checkBase is the complete profile an operator's override is laid over
// when the profiles file is parsed, so that a bad field is reported at
// start whatever family it names; at run time it is laid over the
// module's own row.
var checkBase = messages.WaitProfile{
	Name: "check", InitialDelay: D(5 * time.Second), Poll: D(5 * time.Second),
	AnswerTimeout: D(10 * time.Minute), ReadyTimeout: D(10 * time.Minute),
	OnTimeout:         messages.OnTimeoutPowerReset,
	ResetInitialDelay: D(ResetInitialDelay), ResetAnswerTimeout: D(ResetAnswerTimeout),
	AttemptFactor: DefaultAttemptFactor,
}

// CheckModule reports an OS module that has no wait profile of its own (a
// zero or invalid row for a plain request of its family): an error at
// start that names the family, never a silent borrowed budget.
func CheckModule(m Module) error {
	family := m.Family()
	for _, typ := range []string{messages.TypeVirtualMachine, messages.TypeBlade, messages.TypeLab} {
		req := messages.Request{Step: messages.StepPostload,
			Computer: messages.Computer{Name: "check", Type: typ}, Image: messages.Image{Name: "check", OSFamily: family}}
		p := m.Profile(req)
		if p == (messages.WaitProfile{}) {
			return fmt.Errorf("osworker: OS module %q has no wait profile for a %s: give the module its profile rows", family, typ)
		}
		if err := p.Validate(); err != nil {
			return fmt.Errorf("osworker: OS module %q: its wait profile for a %s is invalid: %v", family, typ, err)
		}
	}
	return nil
}
