package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/metrics"
	"github.com/loadpool/loadpool/outcome"
	"github.com/loadpool/loadpool/pool"
	"github.com/loadpool/loadpool/progress"
	"github.com/loadpool/loadpool/stepworker"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var subj = messages.Subjects{Prefix: "vcl"}

// A running pipeline (embedded NATS, coordinator, a loader pool and an OS
// pool) is scraped while a load holds its lease and after every job has
// ended; the parsed numbers are what ran.
func TestScrapeRunningPipeline(t *testing.T) {
	srv := natstest.New(t)
	quiet := slog.New(slog.DiscardHandler)
	settings := pool.Config{Concurrency: 8, AckWait: 300 * time.Millisecond, Grace: time.Second, WorkerID: "w-test"}
	co, err := coordinator.New(natstest.Connect(t, srv.URL()), coordinator.Config{Subjects: subj, Logger: quiet, Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)

	release := make(chan struct{})
	retried := false
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, _ progress.Progress) (loaderworker.LoadReport, error) {
		switch {
		case req.JobID == "m-slow":
			select {
			case <-release:
			case <-ctx.Done():
				return loaderworker.LoadReport{}, ctx.Err()
			}
		case req.JobID == "m-retry" && req.Attempt == 1 && !retried:
			retried = true // one load at a time for this job: no race
			return loaderworker.LoadReport{}, outcome.WithReason(errors.New("datastore busy"), "datastore-busy")
		case req.JobID == "m-fail":
			return loaderworker.LoadReport{}, outcome.Permanent(errors.New("no such image"))
		}
		return loaderworker.LoadReport{Detail: "loaded", Reloaded: true}, nil
	}}
	lw, err := loaderworker.New(natstest.Connect(t, srv.URL()), loaderworker.Config{Subjects: subj, Name: "fake", Logger: quiet, Settings: settings}, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	ow, err := stepworker.New(natstest.Connect(t, srv.URL()), stepworker.Config{Subjects: subj, Step: messages.StepPostload, Pool: "linux", Logger: quiet, Settings: settings},
		func(context.Context, messages.Request, progress.Progress) (stepworker.Report, error) {
			return stepworker.Report{Detail: "configured"}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := ow.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ow.Stop)
	ms, err := metrics.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Stop)

	base := scrape(t, ms.URL()) // counters are the process's: -count=N adds up
	cl := coordinator.NewClient(natstest.Connect(t, srv.URL()), subj)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := []string{"m-slow", "m-ok", "m-retry", "m-fail"}
	for i, id := range ids {
		c := messages.Computer{Name: fmt.Sprintf("vm-%d", i), Provisioner: "fake", Type: messages.TypeVirtualMachine}
		if _, err := cl.AddComputer(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Submit(ctx, messages.JobSpec{ID: id, Computer: messages.Computer{Name: c.Name},
			Image: messages.Image{Name: "img-metrics", OSFamily: "linux"}}); err != nil {
			t.Fatal(err)
		}
	}

	// While m-slow's load holds its lease.
	var mf map[string]*dto.MetricFamily
	poll.Until(t, "the slow load in flight, its lease renewed twice, the other jobs ended", func() bool {
		mf = scrape(t, ms.URL())
		return value(mf, "loadpool_steps_in_flight", "step", "load", "pool", "fake", "worker", "w-test") == 1 &&
			value(mf, "loadpool_lease_renewals_total", "step", "load", "pool", "fake")-value(base, "loadpool_lease_renewals_total", "step", "load", "pool", "fake") >= 2 &&
			value(mf, "loadpool_jobs_ended_total", "state", "ready")-value(base, "loadpool_jobs_ended_total", "state", "ready") == 2 &&
			value(mf, "loadpool_jobs_ended_total", "state", "failed")-value(base, "loadpool_jobs_ended_total", "state", "failed") == 1 &&
			value(mf, "loadpool_computers", "state", "inuse") == 2
	})
	// The job gauge counts the live jobs only.
	want(t, mf, 1, "loadpool_jobs", "state", "loading")
	if find(mf, "loadpool_jobs", "state", "ready") != nil || find(mf, "loadpool_jobs", "state", "failed") != nil {
		t.Error("loadpool_jobs counts ended jobs")
	}
	want(t, mf, 0, "loadpool_jobs", "state", "postloading")
	want(t, mf, 0, "loadpool_jobs", "state", "queued")
	want(t, mf, 1, "loadpool_computers", "state", "reloading")
	want(t, mf, 2, "loadpool_computers", "state", "inuse")

	close(release)
	poll.Until(t, "every job ended", func() bool {
		mf = scrape(t, ms.URL())
		return value(mf, "loadpool_jobs_ended_total", "state", "ready")-value(base, "loadpool_jobs_ended_total", "state", "ready") == 3 &&
			value(mf, "loadpool_computers", "state", "inuse") == 3 &&
			value(mf, "loadpool_steps_in_flight", "step", "postload", "pool", "linux", "worker", "w-test") == 0
	})
	want(t, mf, 0, "loadpool_steps_in_flight", "step", "load", "pool", "fake", "worker", "w-test")
	want(t, mf, 0, "loadpool_jobs", "state", "loading")
	mf = minus(mf, base)
	want(t, mf, 3, "loadpool_computers", "state", "inuse")
	want(t, mf, 1, "loadpool_computers", "state", "failed")
	want(t, mf, 1, "loadpool_retries_total", "reason", "datastore-busy")
	want(t, mf, 3, "loadpool_jobs_ended_total", "state", "ready")
	want(t, mf, 1, "loadpool_jobs_ended_total", "state", "failed")
	want(t, mf, 0, "loadpool_lease_losses_total", "step", "load", "pool", "fake")
	// Loads: 3 ready (one on attempt 2), 1 retry, 1 fail; post-loads: 3 ready.
	for _, c := range []struct {
		step, pool, outcome string
		n                   uint64
	}{{"load", "fake", "ready", 3}, {"load", "fake", "retry", 1}, {"load", "fake", "fail", 1}, {"postload", "linux", "ready", 3}} {
		h := find(mf, "loadpool_step_duration_seconds", "step", c.step, "pool", c.pool, "image", "img-metrics", "outcome", c.outcome)
		if h == nil || h.GetHistogram().GetSampleCount() != c.n {
			t.Errorf("step_duration_seconds{%s %s %s}: %v, want %d samples", c.step, c.pool, c.outcome, h, c.n)
			continue
		}
		// The slow load outlasted two lease renewals (a third of 300ms apart).
		if c.step == "load" && c.outcome == "ready" && h.GetHistogram().GetSampleSum() < 0.1 {
			t.Errorf("load durations sum to %gs, want at least the slow load's 0.1s", h.GetHistogram().GetSampleSum())
		}
	}
}

// minus subtracts base's counters and histogram counts from mf's.
func minus(mf, base map[string]*dto.MetricFamily) map[string]*dto.MetricFamily {
	for name, f := range mf {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName(), l.GetValue())
			}
			b := find(base, name, labels...)
			switch {
			case b == nil:
			case m.Counter != nil:
				m.Counter.Value = new(m.GetCounter().GetValue() - b.GetCounter().GetValue())
			case m.Histogram != nil:
				m.Histogram.SampleCount = new(m.GetHistogram().GetSampleCount() - b.GetHistogram().GetSampleCount())
				m.Histogram.SampleSum = new(m.GetHistogram().GetSampleSum() - b.GetHistogram().GetSampleSum())
			}
		}
	}
	return mf
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q, want the text format", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return mf
}

// find returns the metric of family name with exactly these label pairs.
func find(mf map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := mf[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a gauge's or counter's value (0 when absent).
func value(mf map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	m := find(mf, name, labels...)
	switch {
	case m == nil:
		return 0
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

func want(t *testing.T, mf map[string]*dto.MetricFamily, n float64, name string, labels ...string) {
	t.Helper()
	if got := value(mf, name, labels...); got != n {
		t.Errorf("%s%v = %g, want %g", name, labels, got, n)
	}
}
