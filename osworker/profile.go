package osworker

import (
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
)

func d(v time.Duration) messages.Duration { return messages.Duration(v) }

// Built-in budgets after a power reset (design.md "Wait profiles").
const (
	resetInitialDelay  = 15 * time.Second
	resetAnswerTimeout = 10 * time.Minute
	// defaultAttemptFactor: attempt 2 waits 1.5x, attempt 3 2.25x.
	defaultAttemptFactor = 1.5
)

// DefaultProfile is the built-in wait profile of design.md's table, shared
// by every OS module. family and version are the image's os_family and
// os_version, computerType a messages.Type*. A family without a row gets
// the Linux budget under its own name.
//
//	Windows XP / 2003                       15s / 15m / 8s, then retry
//	Windows 6.x+ virtual machine            5s / 5m / 5s   (checked first, as VCL does)
//	Windows 6.x+ Sysprep image              60s / 30m / 5s
//	Windows 6.x+ bare metal (blade, lab)    15s / 10m / 5s
//	after a power reset (Windows 6.x+)      15s / 10m      (Reset* fields)
//	Linux                                   5s / 10m / 5s, reset 15s / 10m
func DefaultProfile(family, version, computerType string, sysprep bool) messages.WaitProfile {
	switch strings.ToLower(family) {
	case "windows":
		return windowsProfile(strings.ToLower(version), computerType, sysprep)
	case "linux":
		return linuxProfile("linux")
	default:
		return linuxProfile(strings.ToLower(family))
	}
}

func linuxProfile(name string) messages.WaitProfile {
	return messages.WaitProfile{
		Name: name, InitialDelay: d(5 * time.Second), Poll: d(5 * time.Second),
		AnswerTimeout: d(10 * time.Minute), ReadyTimeout: d(10 * time.Minute),
		StallTimeout: 0, OnTimeout: messages.OnTimeoutPowerReset,
		ResetInitialDelay: d(resetInitialDelay), ResetAnswerTimeout: d(resetAnswerTimeout),
		AttemptFactor: defaultAttemptFactor,
	}
}

// WindowsLegacy reports whether a Windows os_version is XP or 2003 (NT 5.x).
func WindowsLegacy(version string) bool {
	switch strings.ToLower(strings.TrimSpace(version)) {
	case "xp", "2003", "2003r2", "2003-r2", "5", "5.0", "5.1", "5.2", "2000":
		return true
	}
	return false
}

func windowsProfile(version, computerType string, sysprep bool) messages.WaitProfile {
	v := version
	if v == "" {
		v = "any"
	}
	if WindowsLegacy(version) {
		return messages.WaitProfile{
			Name: "windows/" + v, InitialDelay: d(15 * time.Second), Poll: d(8 * time.Second),
			AnswerTimeout: d(15 * time.Minute), ReadyTimeout: d(15 * time.Minute),
			StallTimeout: d(10 * time.Minute), OnTimeout: messages.OnTimeoutRetry,
			AttemptFactor: defaultAttemptFactor,
		}
	}
	p := messages.WaitProfile{
		Poll: d(5 * time.Second), OnTimeout: messages.OnTimeoutPowerReset,
		ResetInitialDelay: d(resetInitialDelay), ResetAnswerTimeout: d(resetAnswerTimeout),
		AttemptFactor: defaultAttemptFactor,
	}
	switch {
	case computerType == messages.TypeVirtualMachine:
		p.Name = "windows/" + v + "/virtualmachine"
		p.InitialDelay, p.AnswerTimeout = d(5*time.Second), d(5*time.Minute)
		p.ReadyTimeout, p.StallTimeout = d(30*time.Minute), d(15*time.Minute)
	case sysprep:
		p.Name = "windows/" + v + "/sysprep"
		p.InitialDelay, p.AnswerTimeout = d(60*time.Second), d(30*time.Minute)
		p.ReadyTimeout, p.StallTimeout = d(30*time.Minute), d(15*time.Minute)
	default:
		p.Name = "windows/" + v + "/baremetal"
		p.InitialDelay, p.AnswerTimeout = d(15*time.Second), d(10*time.Minute)
		p.ReadyTimeout, p.StallTimeout = d(15*time.Minute), d(10*time.Minute)
	}
	return p
}
