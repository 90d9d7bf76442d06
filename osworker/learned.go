package osworker

import (
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
)

// Defaults of Learn.
const (
	DefaultLearnMargin = 1.5
	DefaultLearnCap    = 2 * time.Hour
)

// Learn is the operator's switch for learned timeouts: with On, a
// post-load whose request carries the coordinator's learned durations
// (messages.Request.Learned) waits for the answer at least their P99 ×
// Margin, never more than Cap; the effective profile's Raised says when
// and why. Off (the zero value), profiles are used as they are.
type Learn struct {
	On bool
	// Margin multiplies the P99 (default 1.5); Cap bounds the raised wait
	// (default 2h).
	Margin float64
	Cap    time.Duration
}

// raise returns p with its answer wait (initial delay + answer timeout)
// raised to the learned P99 × margin, when that is longer.
func (l Learn) raise(p messages.WaitProfile, req messages.Request, now time.Time) messages.WaitProfile {
	s := req.Learned
	if !l.On || s == nil || s.P99 <= 0 {
		return p
	}
	margin, limit := l.Margin, l.Cap
	if margin < 1 {
		margin = DefaultLearnMargin
	}
	if limit <= 0 {
		limit = DefaultLearnCap
	}
	want := min(time.Duration(float64(s.P99.D())*margin), limit)
	if want <= p.InitialDelay.D()+p.AnswerTimeout.D() {
		return p
	}
	old := p.AnswerTimeout
	p.AnswerTimeout = messages.Duration(want - p.InitialDelay.D())
	p.Raised = fmt.Sprintf("%s: answer_timeout raised from %s to %s: the p99 of %d past post-loads of %s on a %s is %s, × margin %g (cap %s)",
		now.UTC().Format(time.RFC3339), old, p.AnswerTimeout, s.Samples, req.Image.Name, req.Computer.Type, s.P99, margin, limit)
	return p
}
