//go:build dev

package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The demo through the binary's own wiring: submit -> load -> post-load ->
// ready (and the retry and fail samples end as they should).
func TestDevDemo(t *testing.T) {
	t.Setenv("LOADPOOL_LOG_FORMAT", "json")
	t.Setenv("LOADPOOL_LOG_LEVEL", "warn")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, out, errOut := runCmd(t, ctx, "dev", "--exit-after-samples", "--nats-port", "0", "--boot-delay", "50ms", "--computers", "3")
	if code != 0 {
		t.Fatalf("dev exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"sample demo-linux ended ready after 1 attempt(s): as expected",
		"sample demo-retry ended ready after 2 attempt(s): as expected",
		"sample demo-fail ended failed after 1 attempt(s): as expected",
		"sample demo-lab ended ready after 1 attempt(s): as expected",
		"sample demo-vmware ended ready after 1 attempt(s): as expected",
		"sample demo-xcat ended ready after 1 attempt(s): as expected",
		"sample demo-snapshot ended ready after 1 attempt(s): as expected",
		"reverted vmsnap-01",
		"sample demo-win7 ended ready after 1 attempt(s): as expected",
		"IMAGE_STATE_COMPLETE",
		"cloned ubuntu-24.04 to vmvc-01",
		`status "booted"`,
		"profile linux",
		"sample demo-hung ended ready after 1 attempt(s): as expected",
		"screen saved at demo-hung/1/screenshot.png,demo-hung/1/serial.log",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
}
