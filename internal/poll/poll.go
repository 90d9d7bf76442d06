// Package poll is the one poll-until helper of loadpool's tests: it checks
// a condition every few milliseconds until it holds, and fails the test
// with what was awaited when a deadline passes first. Tests wait on
// conditions, never on a fixed sleep.
package poll

import (
	"testing"
	"time"
)

// Default is how long Until waits.
const Default = 30 * time.Second

// Until polls cond until it holds; the test fails naming what after
// Default.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	Within(tb, Default, what, cond)
}

// Within polls cond until it holds; the test fails naming what after d.
func Within(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		<-tick.C
	}
}
