package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/stepworker/steptest"
)

func runCmd(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut steptest.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"loader"}, 2, "--provisioner is required"},
		{[]string{"os", "--family"}, 2, "flag needs an argument"},
		{[]string{"submit", "--computer", "vm 1"}, 2, "computer.name"},
		{[]string{"submit", "--file", "/nonexistent.json"}, 1, "no such file"},
		{[]string{"status", "a", "b"}, 2, "unexpected argument"},
		{[]string{"watch"}, 2, "give the job id"},
		{[]string{"watch", "../etc"}, 2, "letters, digits"},
		{[]string{"submit", "--help"}, 0, "--wait"},
	}
	for _, c := range cases {
		code, out, errOut := runCmd(t, ctx, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d mentioning %q", c.args, code, out+errOut, c.code, c.want)
		}
	}
	for _, c := range []struct{ value, want string }{
		{"linux:100", `"linux" is not a pool`},
		{"os-linux:0", "os-linux must be 1 to 1000000"},
		{"os-linux", "LOADPOOL_POOL_MAX_ACK_PENDING"},
	} {
		t.Setenv("LOADPOOL_POOL_MAX_ACK_PENDING", c.value)
		if code, _, errOut := runCmd(t, ctx, "coordinator"); code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("LOADPOOL_POOL_MAX_ACK_PENDING=%s: exit %d %q, want %q", c.value, code, errOut, c.want)
		}
	}
	t.Setenv("LOADPOOL_POOL_MAX_ACK_PENDING", "")
	t.Setenv("LOADPOOL_REPLICAS", "9")
	if code, _, errOut := runCmd(t, ctx, "coordinator"); code != 1 || !strings.Contains(errOut, "LOADPOOL_REPLICAS") {
		t.Errorf("bad LOADPOOL_REPLICAS: exit %d %q", code, errOut)
	}
}

// The per-pool limits: xCAT's 10 built in, lost to a global limit, and
// LOADPOOL_POOL_MAX_ACK_PENDING's winning over both.
func TestPoolLimits(t *testing.T) {
	cfg := Config{Prefix: "vcl"}
	if got := poolLimits(cfg); got["loader-xcat"] != 10 || len(got) != 1 {
		t.Errorf("defaults: %v", got)
	}
	cfg.MaxAckPending = 5000
	cfg.PoolMaxAckPending = map[string]int{"os-linux": 10000}
	if got := poolLimits(cfg); len(got) != 1 || got["os-linux"] != 10000 {
		t.Errorf("global 5000 + os-linux: %v", got)
	}
	cfg.PoolMaxAckPending = map[string]int{"loader-xcat": 20}
	if got := poolLimits(cfg); got["loader-xcat"] != 20 {
		t.Errorf("loader-xcat set: %v", got)
	}
}

// `loadpool all` on the embedded server, then the client commands against
// it: enrol the computer, submit --wait, status, watch, a failing job, and
// the inventory's commands (computer_e2e_test.go).
func TestAllWithClientCommands(t *testing.T) {
	dir := t.TempDir()
	port, err := embednats.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key")
	signer, err := devlab.WriteKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := devlab.NewComputer(devlab.Config{Name: "lab-07", Shell: &devlab.Linux{}, Authorized: signer.PublicKey(), BootDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(comp.Close)
	if err := comp.Boot("ubuntu-24.04"); err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(dir, "lab.json")
	write(t, inv, `{"computers":[{"name":"lab-07","images":["ubuntu-24.04"]}]}`)
	profiles := filepath.Join(dir, "profiles.json")
	write(t, profiles, `[{"family":"linux","set":{"initial_delay":"0s","poll":"50ms","answer_timeout":"20s"}}]`)
	for k, v := range map[string]string{
		"NATS_PORT": fmt.Sprint(port), "DATA_DIR": dir, "LOADERS": "lab", "OS_FAMILIES": "linux",
		"LAB_INVENTORY": inv, "SSH_KEY": keyFile, "PROFILES": profiles, "LOG_FORMAT": "json", "LOG_LEVEL": "warn",
	} {
		t.Setenv("LOADPOOL_"+k, v)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var allErr steptest.Buffer
	go func() { done <- run(ctx, []string{"all"}, &steptest.Buffer{}, &allErr) }()
	t.Cleanup(func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("all exited %d: %s", code, allErr.String())
		}
	})
	tctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitServing(t, tctx, done, &allErr)

	enrolLab07(t, tctx, dir, comp)
	job := []string{"submit", "--id", "res-7", "--computer", "lab-07", "--image", "ubuntu-24.04", "--os-family", "linux"}
	code, out, errOut := runCmd(t, tctx, append(job, "--wait")...)
	if code != 0 || !strings.Contains(out, "job ready") {
		t.Fatalf("submit --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := comp.Snapshot().Files["/etc/loadpool-image"]; !strings.Contains(got, "ubuntu-24.04") {
		t.Fatalf("the OS worker did not record the image on the computer: %q", got)
	}
	code, out, _ = runCmd(t, tctx, "status", "res-7")
	if code != 0 || !strings.Contains(out, "job res-7: ready") || !strings.Contains(out, "computer lab-07 (lab, lab, "+comp.Addr()+")") || !strings.Contains(out, "profile linux") || !strings.Contains(out, "answer 20s") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if code, out, _ = runCmd(t, tctx, "watch", "res-7"); code != 0 || !strings.Contains(out, "ready") {
		t.Fatalf("watch: exit %d\n%s", code, out)
	}
	// Idempotent: the same id again returns the same job.
	if code, out, _ = runCmd(t, tctx, job...); code != 0 || !strings.Contains(out, "job res-7 ready") {
		t.Fatalf("resubmit: exit %d\n%s", code, out)
	}
	releaseUnused(t, tctx, "lab-07")
	// An image the lab computer does not have: failed, exit 1.
	bad := []string{"submit", "--id", "res-8", "--computer", "lab-07", "--image", "win7", "--os-family", "linux", "--wait"}
	if code, out, _ = runCmd(t, tctx, bad...); code != 1 || !strings.Contains(out, "does not have image win7") {
		t.Fatalf("failing job: exit %d\n%s", code, out)
	}
	if code, out, _ = runCmd(t, tctx, "status", "--state", "failed"); code != 0 || !strings.Contains(out, "res-8") || strings.Contains(out, "res-7") {
		t.Fatalf("status --state failed: exit %d\n%s", code, out)
	}
	if code, _, errOut = runCmd(t, tctx, "status", "--state", "sideways"); code != 1 || !strings.Contains(errOut, "400") {
		t.Fatalf("unknown state filter: exit %d %s", code, errOut)
	}
	if code, _, errOut = runCmd(t, tctx, "status", "nope"); code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("unknown job: exit %d %s", code, errOut)
	}
	drainAndBack(t, tctx, "lab-07")
	importMany(t, tctx, dir)
	setAndRemove(t, tctx)
}

func waitServing(t *testing.T, ctx context.Context, done chan int, errOut *steptest.Buffer) {
	t.Helper()
	for {
		select {
		case code := <-done:
			t.Fatalf("all exited %d before serving: %s", code, errOut.String())
		default:
		}
		if code, _, _ := runCmd(t, ctx, "status"); code == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("all never served: %s", errOut.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
