package main

import (
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
)

func TestETALine(t *testing.T) {
	s := messages.StepStats{Samples: 12, P50: messages.Duration(80 * time.Second), P90: messages.Duration(2 * time.Minute)}
	for _, c := range []struct {
		elapsed time.Duration
		bar     string
		when    string
	}{
		{20 * time.Second, "[######..................]", "about 1m0s left"},
		{2 * time.Minute, "[########################]", "past the usual 1m20s"},
	} {
		got := etaLine(c.elapsed, s, "postload")
		if !strings.Contains(got, c.bar) || !strings.Contains(got, c.when) || !strings.Contains(got, "past 12: p50 1m20s, p90 2m0s") {
			t.Errorf("after %s: %q", c.elapsed, got)
		}
	}
}
