// Package labtest holds devlab's helpers for tests: they fail the test
// instead of returning an error. The demo and the product never import it.
package labtest

import (
	"testing"

	"github.com/loadpool/loadpool/devlab"
	"golang.org/x/crypto/ssh"
)

// Signer is devlab.NewSigner for a test: it fails the test on error.
func Signer(tb testing.TB) ssh.Signer {
	tb.Helper()
	s, err := devlab.NewSigner()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
