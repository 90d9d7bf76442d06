package steptest_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine"))
}

var subj = steptest.Subjects

func request(step string) messages.Request {
	return messages.Request{JobID: "job-1", Attempt: 1, Step: step, Reload: messages.ReloadIfNeeded,
		Computer: messages.Computer{Name: "vm-1", Provisioner: "vmware", Type: messages.TypeVirtualMachine},
		Image:    messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"}}
}

// Publish routes a request to its pool's stream: load by provisioner,
// post-load by OS family.
func TestPublishRoutesByStep(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ step, stream, other string }{
		{messages.StepLoad, subj.LoadStream(), subj.PostloadStream()},
		{messages.StepPostload, subj.PostloadStream(), subj.LoadStream()},
	} {
		t.Run(c.step, func(t *testing.T) {
			t.Parallel()
			w := steptest.New(t)
			w.Publish(request(c.step))
			if n, o := w.Pending(c.stream), w.Pending(c.other); n != 1 || o != 0 {
				t.Fatalf("%s holds %d, %s holds %d; want 1 and 0", c.stream, n, c.other, o)
			}
		})
	}
}

// Result returns the next result decoded and acks it (the work-queue
// stream is then empty); NoResult passes when none follows.
func TestResultReadsAndAcks(t *testing.T) {
	t.Parallel()
	w := steptest.New(t)
	want := messages.Result{JobID: "job-1", Attempt: 2, Step: messages.StepLoad, Outcome: messages.OutcomeReady,
		Detail: "loaded", Worker: "test/1", Started: time.Now().UTC(), Finished: time.Now().UTC()}
	w.PublishRaw(subj.LoadResult(), messages.Encode(want))
	got := w.Result(10 * time.Second)
	if got.JobID != want.JobID || got.Attempt != want.Attempt || got.Outcome != want.Outcome {
		t.Fatalf("result %+v, want %+v", got, want)
	}
	w.NoResult(100 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for w.Pending(subj.ResultStream()) != 0 { // the ack reaches the server asynchronously
		if time.Now().After(deadline) {
			t.Fatal("the result was not acked")
		}
		runtime.Gosched()
	}
}

// fatalTB records a fatal failure and ends the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func failsWith(t *testing.T, do func(tb testing.TB)) string {
	t.Helper()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		do(f)
	}()
	<-done
	return f.msg
}

// Result fails the test when nothing arrives or the body is not a result;
// NoResult fails it when a result arrives.
func TestFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(w *steptest.Wire)
	}{
		{"no result in time", func(w *steptest.Wire) { w.Result(50 * time.Millisecond) }},
		{"bad result", func(w *steptest.Wire) {
			w.PublishRaw(subj.PostloadResult(), []byte(`{"job_id": 7}`))
			w.Result(10 * time.Second)
		}},
		{"unexpected result", func(w *steptest.Wire) {
			w.PublishRaw(subj.LoadResult(), []byte(`{}`))
			w.NoResult(10 * time.Second)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if msg := failsWith(t, func(tb testing.TB) { c.run(steptest.New(tb)) }); msg == "" {
				t.Fatal("the wire did not fail the test")
			}
		})
	}
}
