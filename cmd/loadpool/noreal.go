//go:build !dev

package main

import (
	"context"
	"fmt"
	"io"
)

// runReal in the product build: the real lab (devlab/guest, its image
// build) is linked only with -tags dev, like the demo.
func runReal(context.Context, []string, io.Writer) error {
	return fmt.Errorf("%w: this loadpool was built without the real lab; run it with `make run-real` (go run -tags dev ./cmd/loadpool real)", errUsage)
}
