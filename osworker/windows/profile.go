package windows

import (
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
)

// Profile implements osworker.Module: the row for the image's version, the
// computer's type and Sysprep.
func (Module) Profile(req messages.Request) messages.WaitProfile {
	return Profile(req.Image.OSVersion, req.Computer.Type, req.Image.Sysprep)
}

// Profile is the built-in Windows wait profile (design.md "Wait profiles",
// VCL's values):
//
//	XP / 2003                       15s / 15m / 8s, then retry
//	6.x+ virtual machine            5s / 5m / 5s   (checked first, as VCL does)
//	6.x+ Sysprep image              60s / 30m / 5s
//	6.x+ bare metal (blade, lab)    15s / 10m / 5s
//	after a power reset (6.x+)      15s / 10m      (Reset* fields)
func Profile(version, computerType string, sysprep bool) messages.WaitProfile {
	d := osworker.D
	v := strings.ToLower(version)
	if v == "" {
		v = "any"
	}
	if Legacy(version) {
		return messages.WaitProfile{
			Name: Family + "/" + v, InitialDelay: d(15 * time.Second), Poll: d(8 * time.Second),
			AnswerTimeout: d(15 * time.Minute), ReadyTimeout: d(15 * time.Minute),
			StallTimeout: d(10 * time.Minute), OnTimeout: messages.OnTimeoutRetry,
			AttemptFactor: osworker.DefaultAttemptFactor,
		}
	}
	p := messages.WaitProfile{
		Poll: d(5 * time.Second), OnTimeout: messages.OnTimeoutPowerReset,
		ResetInitialDelay: d(osworker.ResetInitialDelay), ResetAnswerTimeout: d(osworker.ResetAnswerTimeout),
		AttemptFactor: osworker.DefaultAttemptFactor,
	}
	switch {
	case computerType == messages.TypeVirtualMachine:
		p.Name = Family + "/" + v + "/virtualmachine"
		p.InitialDelay, p.AnswerTimeout = d(5*time.Second), d(5*time.Minute)
		p.ReadyTimeout, p.StallTimeout = d(30*time.Minute), d(15*time.Minute)
	case sysprep:
		p.Name = Family + "/" + v + "/sysprep"
		p.InitialDelay, p.AnswerTimeout = d(60*time.Second), d(30*time.Minute)
		p.ReadyTimeout, p.StallTimeout = d(30*time.Minute), d(15*time.Minute)
	default:
		p.Name = Family + "/" + v + "/baremetal"
		p.InitialDelay, p.AnswerTimeout = d(15*time.Second), d(10*time.Minute)
		p.ReadyTimeout, p.StallTimeout = d(15*time.Minute), d(10*time.Minute)
	}
	return p
}

// Legacy reports whether a Windows os_version is XP or 2003 (NT 5.x).
func Legacy(version string) bool {
	switch strings.ToLower(strings.TrimSpace(version)) {
	case "xp", "2003", "2003r2", "2003-r2", "5", "5.0", "5.1", "5.2", "2000":
		return true
	}
	return false
}
