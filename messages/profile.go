package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration that travels as a Go duration string
// ("30m0s"); decoding also accepts a number of seconds.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "1m30s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"90s\" or \"30m\"", truncate(s, 40))
		}
		if v < 0 {
			return fmt.Errorf("%q is negative", s)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%s is not a duration: write \"90s\" or a number of seconds", truncate(string(b), 40))
	}
	if n < 0 {
		return fmt.Errorf("%v seconds is negative", n)
	}
	*d = Duration(time.Duration(n * float64(time.Second)))
	return nil
}

// What an OS module does when its wait for an answer runs out.
const (
	OnTimeoutPowerReset = "power-reset"
	OnTimeoutRetry      = "retry"
)

// WaitProfile is how an OS module waits for a freshly loaded computer: data,
// not constants in code. It is chosen by OS family, version, computer type
// and Sysprep, may be overridden by an operator's file and by the image, and
// is written into every post-load result so a timeout can be read back.
type WaitProfile struct {
	// Name says where the profile came from, e.g. "windows/7/sysprep".
	Name string `json:"name"`
	// InitialDelay: wait this long before the first probe.
	InitialDelay Duration `json:"initial_delay"`
	// Poll: the interval between probes.
	Poll Duration `json:"poll"`
	// AnswerTimeout: how long the computer may take to answer at all.
	AnswerTimeout Duration `json:"answer_timeout"`
	// ReadyTimeout: once it answers, how long the OS may take to say it is
	// ready (setup finished, boot finished).
	ReadyTimeout Duration `json:"ready_timeout"`
	// StallTimeout: no sign of progress for this long ends the wait early
	// (0: no stall detection).
	StallTimeout Duration `json:"stall_timeout,omitempty"`
	// OnTimeout: "power-reset" (reset through the loader, then wait once
	// more with the Reset* budget) or "retry" (answer retry at once).
	OnTimeout string `json:"on_timeout"`
	// ResetInitialDelay and ResetAnswerTimeout: the second, shorter budget
	// after a power reset.
	ResetInitialDelay  Duration `json:"reset_initial_delay,omitempty"`
	ResetAnswerTimeout Duration `json:"reset_answer_timeout,omitempty"`
	// AttemptFactor multiplies AnswerTimeout and ReadyTimeout for every
	// attempt after the first (1.5: attempt 2 waits 1.5x, attempt 3 2.25x);
	// 0 or 1 leaves them unchanged.
	AttemptFactor float64 `json:"attempt_factor,omitempty"`
	// ResetFirstFromAttempt: from this attempt on, power-reset before the
	// first wait (0: never).
	ResetFirstFromAttempt int `json:"reset_first_from_attempt,omitempty"`
	// Raised says when and why the OS worker raised a timeout above the
	// profile's from past durations (learned timeouts); empty when not.
	Raised string `json:"raised,omitempty"`
}

// Validate checks a complete profile.
func (p *WaitProfile) Validate() error {
	if p.Poll <= 0 {
		return fieldErr("poll", "must be more than 0")
	}
	if p.AnswerTimeout <= 0 {
		return fieldErr("answer_timeout", "must be more than 0")
	}
	if p.ReadyTimeout <= 0 {
		return fieldErr("ready_timeout", "must be more than 0")
	}
	switch p.OnTimeout {
	case OnTimeoutPowerReset:
		if p.ResetAnswerTimeout <= 0 {
			return fieldErr("reset_answer_timeout", "must be more than 0 when on_timeout is %q", OnTimeoutPowerReset)
		}
	case OnTimeoutRetry:
	default:
		return fieldErr("on_timeout", "must be %q or %q, not %q", OnTimeoutPowerReset, OnTimeoutRetry, truncate(p.OnTimeout, 40))
	}
	if p.AttemptFactor < 0 || p.AttemptFactor > 10 {
		return fieldErr("attempt_factor", "must be between 0 and 10, not %v", p.AttemptFactor)
	}
	if p.ResetFirstFromAttempt < 0 {
		return fieldErr("reset_first_from_attempt", "must be 0 (never) or more")
	}
	return nil
}

// ForAttempt returns the profile as it applies to attempt n.
func (p WaitProfile) ForAttempt(n int) WaitProfile {
	if p.AttemptFactor > 0 && p.AttemptFactor != 1 && n > 1 {
		f := 1.0
		for i := 1; i < n; i++ {
			f *= p.AttemptFactor
		}
		p.AnswerTimeout = Duration(float64(p.AnswerTimeout) * f)
		p.ReadyTimeout = Duration(float64(p.ReadyTimeout) * f)
	}
	return p
}

// DecodeProfileOverride lays the fields present in raw over base and checks
// the result. Unknown fields are an error (a typo would be silently ignored
// otherwise). Validation of the merged profile is left to the caller when
// base is the zero profile.
func DecodeProfileOverride(raw []byte, base WaitProfile) (WaitProfile, error) {
	p := base
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return base, fmt.Errorf("not a wait profile: %v", cleanJSONErr(err))
	}
	if base != (WaitProfile{}) {
		if err := p.Validate(); err != nil {
			return base, err
		}
	}
	return p, nil
}
