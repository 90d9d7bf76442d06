package messages

import (
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds of what a job may ask for (invariant 6: bad input never turns
// into unbounded work or records).
const (
	// MaxDetailBytes bounds a result's detail (a human sentence; stderr of a
	// failed command is cut to it): TruncateDetail.
	MaxDetailBytes = 4096
	// MinPoll is the shortest poll interval an image's wait_profile may set
	// (shorter is a busy loop against the computer).
	MinPoll = time.Second
	// MaxWait is the longest delay or timeout an image's wait_profile may
	// set.
	MaxWait = 24 * time.Hour
	// maxAddress is a DNS name (253) and a port.
	maxAddress = 253 + len(":65535")
)

// truncatedMark ends a detail that TruncateDetail cut.
const truncatedMark = " … [truncated: %d bytes in all]"

// TruncateDetail returns s cut to at most MaxDetailBytes bytes (on a rune
// boundary), marked as truncated with its full length, or s unchanged.
func TruncateDetail(s string) string {
	if len(s) <= MaxDetailBytes {
		return s
	}
	mark := fmt.Sprintf(truncatedMark, len(s))
	cut := MaxDetailBytes - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Problems is every problem of a body, each a *FieldError (or another
// error), in the order of the body's fields: a 400 names them all at once.
type Problems []error

func (p Problems) Error() string {
	parts := make([]string, len(p))
	for i, e := range p {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.As find each problem (the first *FieldError first).
func (p Problems) Unwrap() []error { return p }

// add appends err when it is not nil, flattening Problems.
func (p *Problems) add(err error) {
	if ps, ok := err.(Problems); ok {
		*p = append(*p, ps...)
	} else if err != nil {
		*p = append(*p, err)
	}
}

// err is nil without problems.
func (p Problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// validName checks a free-form name (an image's): not empty, at most max
// bytes, no control characters, not starting with '-' (it could pass for
// an option where a command names it).
func validName(field, v string, max int) error {
	switch {
	case v == "":
		return fieldErr(field, "is required")
	case len(v) > max || strings.ContainsFunc(v, unicode.IsControl):
		return fieldErr(field, "must be at most %d characters without control characters", max)
	case strings.HasPrefix(v, "-"):
		return fieldErr(field, "must not start with '-', not %q", truncate(v, 40))
	}
	return nil
}

// validAddressHost checks the host of an address: a DNS name or an IP.
func validAddressHost(a, host string) error {
	if len(a) > maxAddress {
		return fmt.Errorf("must be a host name or IP address and a port (at most %d characters), not %d characters", maxAddress, len(a))
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return nil
	}
	if !isName(host) || strings.HasPrefix(host, ".") || strings.HasPrefix(host, "-") {
		return fmt.Errorf("must be a host name (letters, digits, '.', '-') or an IP address, then an optional :port, not %q", truncate(a, 80))
	}
	return nil
}

// CheckPollFloor refuses an image whose wait_profile sets a poll shorter
// than min (the coordinator's intake: MinPoll unless a test scales time
// down). prefix names the image in the error.
func (i *Image) CheckPollFloor(prefix string, min time.Duration) error {
	if len(i.WaitProfile) == 0 || string(i.WaitProfile) == "null" {
		return nil
	}
	p, err := DecodeProfileOverride(i.WaitProfile, WaitProfile{})
	if err != nil {
		return fieldErr(prefix+".wait_profile", "%v", err)
	}
	if p.Poll != 0 && p.Poll.D() < min {
		return fieldErr(prefix+".wait_profile.poll", "must be at least %s, not %s (a shorter poll is a busy loop against the computer)", min, p.Poll)
	}
	return nil
}

// checkOverrideBounds checks the fields an image's wait_profile sets:
// delays and timeouts at most MaxWait.
func checkOverrideBounds(prefix string, p WaitProfile) error {
	var ps Problems
	for _, f := range []struct {
		name string
		d    Duration
	}{{"initial_delay", p.InitialDelay}, {"poll", p.Poll}, {"answer_timeout", p.AnswerTimeout}, {"ready_timeout", p.ReadyTimeout},
		{"stall_timeout", p.StallTimeout}, {"reset_initial_delay", p.ResetInitialDelay}, {"reset_answer_timeout", p.ResetAnswerTimeout}} {
		if f.d.D() > MaxWait {
			ps.add(fieldErr(prefix+"."+f.name, "must be at most %s, not %s", MaxWait, f.d))
		}
	}
	return ps.err()
}
