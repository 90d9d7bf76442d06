//go:build !dev

package main

import (
	"context"
	"fmt"
	"io"
)

// runDev in the product build: the demo and its simulators (devlab, the
// vCenter simulator, the xCAT emulator) are linked only with -tags dev, so
// the binary operators deploy carries none of them.
func runDev(context.Context, []string, io.Writer) error {
	return fmt.Errorf("%w: this loadpool was built without the demo; run it with `make run` (go run -tags dev ./cmd/loadpool dev)", errUsage)
}
