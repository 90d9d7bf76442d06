package vcsim

import (
	"context"
	"testing"
)

// Test starts a Sim for one test and closes it when the test ends.
func Test(tb testing.TB, opts Options) *Sim {
	tb.Helper()
	s, err := Start(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}
