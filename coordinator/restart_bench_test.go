package coordinator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Environment of BenchmarkRestartOverRetained.
const (
	// benchRetainedEnv sets how many ended job records the bucket holds
	// (default benchRetained; the figure is 1000000).
	benchRetainedEnv = "LOADPOOL_BENCH_RETAINED"
	// benchChildEnv makes TestRestartChild the coordinator process of the
	// benchmark: the NATS URL to connect to.
	benchChildEnv = "LOADPOOL_BENCH_CHILD_URL"
	benchRetained = 20000
	// benchLab computers are enrolled; benchLive of them run a job (no
	// workers: their loads wait) while the coordinator restarts.
	benchLab, benchLive = 1000, 50
	benchSweeps         = 5
)

// BenchmarkRestartOverRetained fills vcl_jobs with ended job records
// (realistic ones: two to six steps, the enrolled computer, details), runs
// benchLive live jobs on a lab of benchLab computers, then starts a
// coordinator in a process of its own (this test binary again, as
// TestRestartChild, connected to the benchmark's server on 127.0.0.1) and
// reports: the time from starting that process until its first job.submit
// succeeds (s-to-submit), its resident memory then and its peak (from
// /proc/<pid>/status VmRSS and VmHWM: the coordinator's own, not the NATS
// server's) and the cost of one sweep. The sub-benchmark retained=0 is
// the same without ended records.
//
//	LOADPOOL_BENCH_RETAINED=1000000 go test -run '^$' -bench RestartOverRetained -benchtime 1x -timeout 1h ./coordinator
func BenchmarkRestartOverRetained(b *testing.B) {
	n := benchRetained
	if s := os.Getenv(benchRetainedEnv); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			b.Fatalf("%s=%q: want a number of records", benchRetainedEnv, s)
		}
	}
	for _, retained := range []int{0, n} {
		b.Run(fmt.Sprintf("retained=%d", retained), func(b *testing.B) { benchRestart(b, retained) })
	}
}

func benchRestart(b *testing.B, retained int) {
	srv := natstest.New(b)
	nc := natstest.Connect(b, srv.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()

	// A coordinator enrols the lab and starts the live jobs, then stops:
	// the buckets are as a running system leaves them.
	first, err := New(natstest.Connect(b, srv.URL()), Config{Subjects: subj, Name: "first", Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	if err := first.Start(ctx); err != nil {
		b.Fatal(err)
	}
	cl := NewClient(nc, subj)
	comps := make([]messages.Computer, benchLab)
	for i := range comps {
		comps[i] = messages.Computer{Name: fmt.Sprintf("lab-%05d", i), Provisioner: "vmware", Type: messages.TypeVirtualMachine,
			Address: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}
	}
	if _, err := cl.ImportComputers(ctx, comps); err != nil {
		b.Fatal(err)
	}
	for i := range benchLive {
		if _, err := cl.Submit(ctx, labJob(fmt.Sprintf("live-%d", i), comps[i].Name)); err != nil {
			b.Fatal(err)
		}
	}
	first.Stop()
	start := time.Now()
	fillEnded(b, js, retained, comps)
	b.Logf("%d ended records written in %s", retained, time.Since(start).Round(time.Millisecond))

	free := comps[benchLive:]
	if b.N > len(free) {
		b.Fatalf("at most %d iterations (one free computer each)", len(free))
	}
	var toSubmit, rss, hwm, sweep float64
	b.ResetTimer()
	for i := range b.N {
		r := restartOnce(b, srv.URL(), cl, labJob(fmt.Sprintf("after-restart-%d", i), free[i].Name))
		toSubmit += r.toSubmit.Seconds()
		rss += float64(r.rss) / (1 << 20)
		hwm += float64(r.hwm) / (1 << 20)
		sweep += float64(r.sweep.Microseconds()) / 1000
	}
	n := float64(b.N)
	b.ReportMetric(toSubmit/n, "s-to-submit")
	b.ReportMetric(rss/n, "MB-rss")
	b.ReportMetric(hwm/n, "MB-hwm")
	b.ReportMetric(sweep/n, "ms/sweep")
}

func labJob(id, computer string) messages.JobSpec {
	return messages.JobSpec{ID: id, Computer: messages.Computer{Name: computer},
		Image: messages.Image{Name: "win7-sp1-v3", OSFamily: "windows", OSVersion: "7", Sysprep: true}}
}

// fillEnded writes n ended job records straight into the bucket's stream
// with asynchronous publishes (what many coordinators wrote over weeks).
func fillEnded(b *testing.B, js jetstream.JetStream, n int, comps []messages.Computer) {
	b.Helper()
	ajs, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now().UTC().Add(-20 * 24 * time.Hour)
	size := 0
	for i := range n {
		rec := endedRecord(fmt.Sprintf("old-%07d", i), comps[i%len(comps)], t0.Add(time.Duration(i)*time.Second), i)
		data := messages.Encode(rec)
		size += len(data)
		if _, err := ajs.PublishAsync("$KV."+subj.JobsBucket()+"."+rec.ID, data, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	if n > 0 {
		b.Logf("ended records: %d bytes each on average", size/n)
	}
	select {
	case <-ajs.PublishAsyncComplete():
	case <-time.After(10 * time.Minute):
		b.Fatal("the ended records were not all stored within 10 minutes")
	}
}

// endedRecord is a job as it ends: ready after one or two attempts,
// failed after three, or canceled.
func endedRecord(id string, comp messages.Computer, created time.Time, i int) messages.JobRecord {
	spec := labJob("", comp.Name)
	spec.MaxAttempts, spec.Reload = 3, messages.ReloadIfNeeded
	rec := messages.JobRecord{ID: id, MaxAttempts: 3, Spec: spec, Enrolled: &comp, Created: created, Steps: []messages.StepRecord{}}
	at := created
	step := func(attempt int, name string, o messages.Outcome, detail string) {
		took := time.Duration(30+i%90) * time.Second
		rec.Steps = append(rec.Steps, messages.StepRecord{Attempt: attempt, Step: name, Outcome: o, Detail: detail,
			Worker: fmt.Sprintf("ldr-%d/%d", i%4, 800+i%50), Started: at, Finished: at.Add(took)})
		at = at.Add(took)
	}
	attempts := 1 + i%2
	switch i % 10 {
	case 7, 8:
		attempts = 3
	case 9:
		attempts = 0
	}
	for a := 1; a <= attempts; a++ {
		step(a, messages.StepLoad, messages.OutcomeReady, "cloned win7-sp1-v3 from the template on datastore ds-2 in 41s")
		o, d := messages.OutcomeReady, "ssh answers; sysprep mini-setup finished; hostname and image recorded"
		if a < attempts || i%10 >= 7 {
			o, d = messages.OutcomeRetry, "no SSH answer within 30m0s (profile windows/7/sysprep), power reset did not help"
		}
		step(a, messages.StepPostload, o, d)
	}
	rec.Attempt = max(attempts, 1)
	switch {
	case attempts == 0:
		rec.State, rec.Error = messages.StateCanceled, "canceled: the reservation was withdrawn"
	case i%10 >= 7:
		rec.State, rec.Error = messages.StateFailed, "attempt 3 of 3: postload: no SSH answer within 30m0s"
	default:
		rec.State = messages.StateReady
	}
	rec.Updated = at
	return rec
}

type restartFigures struct {
	toSubmit   time.Duration
	rss, hwm   int64 // bytes
	sweep      time.Duration
	sweepCount int
}

// restartOnce starts the coordinator process, submits s until it is
// accepted, asks the process for its sweep timings, reads its memory and
// ends it.
func restartOnce(b *testing.B, url string, cl *Client, s messages.JobSpec) restartFigures {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestRestartChild$", "-test.bench=^$", "-test.count=1", "-test.timeout=1h")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+url)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sweeps := make(chan time.Duration, benchSweeps)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "sweep-ns "); ok {
				ns, _ := strconv.ParseInt(v, 10, 64)
				sweeps <- time.Duration(ns)
			} else {
				fmt.Fprintln(os.Stderr, "coordinator process:", sc.Text())
			}
		}
		close(sweeps)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()
	var f restartFigures
	var sampled time.Time
	for {
		if time.Since(sampled) > 100*time.Millisecond {
			if rss, hwm, ok := procMemory(cmd.Process.Pid); ok {
				f.rss, f.hwm, sampled = rss, hwm, time.Now()
			}
		}
		select {
		case err := <-exited:
			exited <- err
			b.Fatalf("the coordinator process ended %s after its start, before it accepted a submit (%v); its memory then: VmRSS %d MB, VmHWM %d MB",
				time.Since(start).Round(time.Millisecond), err, f.rss>>20, f.hwm>>20)
		default:
		}
		sctx, cancel := context.WithTimeout(b.Context(), 2*time.Second)
		_, err := cl.Submit(sctx, s)
		cancel()
		if err == nil {
			f.toSubmit = time.Since(start)
			break
		}
		var api *APIError
		if errors.As(err, &api) && api.Code != 503 {
			b.Fatalf("submit after the restart: %v", err)
		}
		if time.Since(start) > 30*time.Minute {
			b.Fatalf("no coordinator accepted a submit within 30 minutes: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The process's memory once it serves (and its peak so far), then its
	// sweeps.
	var ok bool
	if f.rss, f.hwm, ok = procMemory(cmd.Process.Pid); !ok {
		b.Fatal("no /proc/<pid>/status of the coordinator process")
	}
	if _, err := fmt.Fprintln(stdin, "sweep"); err != nil {
		b.Fatal(err)
	}
	for d := range sweeps {
		f.sweep += d
		f.sweepCount++
		if f.sweepCount == benchSweeps {
			f.sweep /= benchSweeps
			return f
		}
	}
	b.Fatal("the coordinator process ended before it reported its sweeps")
	return f
}

// procMemory reads VmRSS and VmHWM of process pid (false when it cannot).
func procMemory(pid int) (rss, hwm int64, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, rss > 0
}

// TestRestartChild is the coordinator process of
// BenchmarkRestartOverRetained (skipped otherwise): it serves until its
// standard input ends; on a line "sweep" it sweeps once, then times
// benchSweeps sweeps and prints each as "sweep-ns <ns>".
func TestRestartChild(t *testing.T) {
	url := os.Getenv(benchChildEnv)
	if url == "" {
		t.Skip("only as the coordinator process of BenchmarkRestartOverRetained")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := New(nc, Config{Subjects: subj, Name: "restarted", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() != "sweep" {
			continue
		}
		// Untimed: the first sweep makes sure the live jobs' first loads
		// went out (once per job and process); the timed ones are the
		// steady cost.
		c.sweep(context.Background())
		for range benchSweeps {
			start := time.Now()
			c.sweep(context.Background())
			fmt.Printf("sweep-ns %d\n", time.Since(start).Nanoseconds())
		}
	}
}
