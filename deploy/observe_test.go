package deploy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/webui"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pageReads: the web page, on the coordinator's connection and user,
// reads a job, its past events and its evidence (the hung boot's
// SIMULATED screenshot the loader saved), and the durations bucket the
// coordinator learns in exists.
func pageReads(t *testing.T, ctx context.Context, nc *nats.Conn, job string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rec, err := coordinator.NewClient(nc, subj).Get(ctx, job)
	if err != nil || len(rec.Steps) == 0 || len(rec.Steps[len(rec.Steps)-1].Evidence) == 0 {
		t.Fatalf("no evidence named in the post-load of %s (%v): %+v", job, err, rec.Steps)
	}
	ui, err := webui.New(nc, webui.Config{Subjects: subj, Logger: quiet, Evidence: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ui.Serve("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ui.Stop)
	for path, want := range map[string]string{
		"api/job/" + job:     `"evidence":["` + job + `/`,
		"api/history/" + job: "power reset of",
		"evidence/" + rec.Steps[len(rec.Steps)-1].Evidence[0]: "PNG",
	} {
		resp, err := http.Get(ui.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET /%s as the coordinator: %s, %.200q; want %q", path, resp.Status, body, want)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the durations bucket", func() bool {
		_, err := js.KeyValue(ctx, subj.DurationsBucket())
		return err == nil
	})
}
