package osworker

import (
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
)

func TestLearnRaise(t *testing.T) {
	base := messages.WaitProfile{Name: "windows/7/sysprep", InitialDelay: messages.Duration(time.Minute), AnswerTimeout: messages.Duration(30 * time.Minute)}
	stats := func(p99 time.Duration) *messages.StepStats {
		return &messages.StepStats{Samples: 40, P50: messages.Duration(p99 / 2), P90: messages.Duration(p99 * 9 / 10), P99: messages.Duration(p99)}
	}
	now := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		learn   Learn
		learned *messages.StepStats
		answer  time.Duration // the raised answer_timeout; 0: unchanged
	}{
		{"off", Learn{}, stats(time.Hour), 0},
		{"no samples", Learn{On: true}, nil, 0},
		{"past loads within the profile", Learn{On: true}, stats(20 * time.Minute), 0},
		{"raised to p99 × 1.5 minus the initial delay", Learn{On: true}, stats(40 * time.Minute), 59 * time.Minute},
		{"capped", Learn{On: true, Margin: 2, Cap: 90 * time.Minute}, stats(time.Hour), 89 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := messages.Request{Learned: c.learned, Image: messages.Image{Name: "win7-sp1-v3"}, Computer: messages.Computer{Type: "virtualmachine"}}
			p := c.learn.raise(base, req, now)
			if c.answer == 0 {
				if p.AnswerTimeout != base.AnswerTimeout || p.Raised != "" {
					t.Errorf("changed: %s, %q", p.AnswerTimeout, p.Raised)
				}
				return
			}
			if p.AnswerTimeout.D() != c.answer || !strings.Contains(p.Raised, "2026-12-01T20:00:00Z") || !strings.Contains(p.Raised, "p99 of 40 past post-loads of win7-sp1-v3") {
				t.Errorf("answer %s, raised %q; want %s", p.AnswerTimeout, p.Raised, c.answer)
			}
		})
	}
}
