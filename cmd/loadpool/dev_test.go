//go:build dev

package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The demo through the binary's own wiring: enrol the computers, submit ->
// load -> post-load -> ready (and the retry and fail samples end as they
// should), then the inventory: a drained computer refuses jobs with the
// reason, one released unused is not reloaded by its next job.
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
		// Every computer enrolled through the endpoint; the commands printed.
		"loadpool computer add vm-01 --provisioner sim --type virtualmachine --address 127.0.0.1:",
		"loadpool computer add vmvc-01 --provisioner vmware --type virtualmachine --address 127.0.0.1:",
		"loadpool computer add win7-01 --provisioner vmware --type virtualmachine --address 127.0.0.1:",
		"loadpool computer add lab-01 --provisioner lab --type lab --address 127.0.0.1:",
		" --host-key 'ssh-ed25519 AAAA",
		"enrolled 9 computers through vcl.computer.add: 9 added, 0 unchanged",
		// The inventory story: drained is refused, released unused skips the reload.
		"$ loadpool computers\n",
		"$ loadpool computer drain vm-03 --reason \"disk replaced: waiting for the new one\"\n",
		"computer vm-03 drained: maintenance (new jobs refused: disk replaced: waiting for the new one)",
		"refused, as expected: the coordinator answered 409: ",
		"$ loadpool computer release vm-01 --used=false\n",
		"computer vm-01 released (used: false): available, not tainted: a job for ubuntu-24.04 may skip the reload\n",
		"$ loadpool computer show vm-01\ncomputer vm-01: available, not tainted: a job for ubuntu-24.04 may skip the reload\n",
		"  host key     ssh-ed25519 AAAA", "(learned after job demo-linux attempt 1 reloaded it, ",
		"sample demo-reuse ended ready after 1 attempt(s): as expected",
		"load step: skipped: vm-01 already runs ubuntu-24.04 (reloaded false)",
		// What to paste.
		"  loadpool computers\n",
		"  loadpool computer drain vm-02 --reason \"bad NIC\"\n",
		"  nats req vcl.computer.list '{}'\n",
		"  nats req vcl.computer.get '{\"name\":\"vm-01\"}'\n",
		"  nats kv ls vcl_inventory\n",
		"  nats sub 'vcl.event.computer.>'\n",
		"sample demo-hung ended ready after 1 attempt(s): as expected",
		"screen saved at demo-hung/1/screenshot.png,demo-hung/1/serial.log",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
	for _, re := range []string{
		`loadpool computer add blade-01 --provisioner xcat --type blade --address 127\.0\.0\.1:\d+ --attr node=blade-01\n`,
		`NAME +PROVISIONER +STATE +IMAGE +TAINTED +JOB +SINCE\n`,
		`\nvm-01 +sim +inuse +ubuntu-24\.04 +yes +demo-linux +\d{4}-`,
		`\nvm-03 +sim +failed +`,
		`refused, as expected: the coordinator answered 409: .*disk replaced: waiting for the new one`,
		`computer vm-03 +maintenance,tainted +drained: disk replaced`,
		`computer vm-01 +available +released unused`,
		`job demo-reuse: ready, attempt 1 of 3\n  computer vm-01 \(sim, virtualmachine, 127\.0\.0\.1:\d+\)  image ubuntu-24\.04`,
		`job demo-linux: ready, attempt 1 of 3\n  computer vm-01 \(sim, virtualmachine, 127\.0\.0\.1:\d+\), reload always \(tainted, or not known to run the image\)  image`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s\n%s", re, out)
		}
	}
	if strings.Contains(out, "UNEXPECTED") {
		t.Errorf("something went otherwise than expected:\n%s", out)
	}
}
