package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// `loadpool evidence JOB` saves the job's objects of the evidence bucket
// (made by the coordinator, written as a loader writes them) and only
// those.
func TestEvidenceCommand(t *testing.T) {
	srv := natstest.New(t)
	nc := natstest.Connect(t, srv.URL())
	co, err := coordinator.New(nc, coordinator.Config{Evidence: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var store jetstream.ObjectStore
	poll.Until(t, "the coordinator's evidence bucket", func() bool {
		store, err = js.ObjectStore(ctx, messages.Subjects{Prefix: "vcl"}.EvidenceBucket())
		return err == nil
	})
	for name, body := range map[string]string{"res-1/2/screenshot.png": "\x89PNG...", "res-1/2/serial.log": "boot hung\n", "res-10/1/serial.log": "other job\n"} {
		if _, err := store.PutString(ctx, name, body); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("LOADPOOL_NATS_URL", srv.URL())
	dir := t.TempDir()
	code, out, errOut := runCmd(t, ctx, "evidence", "res-1", "--dir", dir)
	if code != 0 {
		t.Fatalf("evidence exited %d: %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "res-1/2/screenshot.png") || !strings.Contains(out, "res-1/2/serial.log") || strings.Contains(out, "res-10") {
		t.Errorf("listing:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "2", "serial.log")); err != nil || string(b) != "boot hung\n" {
		t.Errorf("saved serial.log: %q, %v", b, err)
	}
	if code, _, errOut := runCmd(t, ctx, "evidence", "res-2", "--dir", dir); code != 1 || !strings.Contains(errOut, "no evidence of job res-2") {
		t.Errorf("a job without evidence: exit %d, %s", code, errOut)
	}
}
