package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
)

// etaWidth is the progress bar's width in cells.
const etaWidth = 24

// printETA draws, under an event that carries one, how far the running
// step is against the past ones: a bar filled to elapsed / p50, and the
// p50 and p90 of the past steps of the same image, computer type and step.
func printETA(w io.Writer, ev messages.Event) {
	if ev.ETA == nil || ev.ETA.P50 <= 0 {
		return
	}
	fmt.Fprintln(w, etaLine(ev.Time.Sub(ev.ETA.Started), *ev.ETA, currentStepOf(ev)))
}

func etaLine(elapsed time.Duration, s messages.StepStats, step string) string {
	elapsed = max(elapsed, 0)
	frac := min(float64(elapsed)/float64(s.P50.D()), 1)
	full := int(frac * etaWidth)
	left := s.P50.D() - elapsed
	when := fmt.Sprintf("about %s left", left.Round(time.Second))
	if left <= 0 {
		when = fmt.Sprintf("past the usual %s", s.P50.D().Round(time.Second))
	}
	return fmt.Sprintf("          %-8s [%s%s] %s (%s so far; past %d: p50 %s, p90 %s)", step,
		strings.Repeat("#", full), strings.Repeat(".", etaWidth-full), when, elapsed.Round(time.Second), s.Samples,
		s.P50.D().Round(time.Second), s.P90.D().Round(time.Second))
}

// currentStepOf is the step running once ev happened.
func currentStepOf(ev messages.Event) string {
	if ev.State == messages.StatePostloading {
		return messages.StepPostload
	}
	return messages.StepLoad
}
