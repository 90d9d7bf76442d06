// Package vcsimtest starts govmomi's vCenter simulator for one test.
package vcsimtest

import (
	"context"
	"testing"

	"github.com/loadpool/loadpool/devlab/vcsim"
)

// Start starts a Sim for one test and closes it when the test ends.
func Start(tb testing.TB, opts vcsim.Options) *vcsim.Sim {
	tb.Helper()
	s, err := vcsim.Start(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}
