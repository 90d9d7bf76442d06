package coordinator

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkInFlight holds n jobs in flight on one coordinator at once:
// n submits whose load requests workers hold unanswered until all n are
// out, then answer all; likewise the n post-loads; then all n end ready.
// Per n it reports the coordinator's cost per job (wall time and CPU of
// the process, which also runs the embedded NATS server) and the heap in
// use per job while n are held, after a GC (coordinator and server).
// The cost per job should stay flat from 100 to 10,000.
//
//	go test -run '^$' -bench InFlight -benchtime 1x ./coordinator
func BenchmarkInFlight(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) { benchInFlight(b, n) })
	}
}

func benchInFlight(b *testing.B, n int) {
	srv := natstest.New(b)
	nc := natstest.Connect(b, srv.URL())
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(n+1000))
	if err != nil {
		b.Fatal(err)
	}
	c := benchCoordinator(b, srv.URL(), Config{Name: "inflight", Handlers: 256})
	cl := NewClient(nc, subj)
	comps := make([]messages.Computer, n)
	for i := range comps {
		comps[i] = spec("", fmt.Sprintf("if-%05d", i)).Computer
	}
	if _, err := cl.ImportComputers(b.Context(), comps); err != nil {
		b.Fatal(err)
	}
	held := map[string]chan jetstream.Msg{}
	for _, p := range []struct{ step, pool string }{{messages.StepLoad, "vmware"}, {messages.StepPostload, "windows"}} {
		cons, err := js.CreateOrUpdateConsumer(b.Context(), subj.RequestStream(p.step), jetstream.ConsumerConfig{
			Durable: subj.Consumer(p.step, p.pool), FilterSubject: subj.Request(p.step, p.pool),
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: n + 100, AckWait: 10 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		ch := make(chan jetstream.Msg, n)
		held[p.step] = ch
		cc, err := cons.Consume(func(m jetstream.Msg) { ch <- m }, jetstream.PullMaxMessages(1000))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cc.Stop(); <-cc.Closed() })
	}
	var ready atomic.Int64
	allReady := make(chan struct{}, 1)
	var target atomic.Int64
	sub, err := nc.Subscribe(subj.Events(), func(m *nats.Msg) {
		var ev messages.Event
		if messages.Decode(m.Data, &ev, false) == nil && ev.State == messages.StateReady && ready.Add(1) == target.Load() {
			allReady <- struct{}{}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })

	var base runtime.MemStats
	var heapPerJob float64
	// round runs k jobs on the first k computers: all submitted, all
	// loads held then answered, all post-loads held then answered, all
	// ready, every lock free again (the next round reuses the computers).
	round := func(tag string, k int, measure bool) {
		target.Add(int64(k))
		sem := make(chan struct{}, 64)
		errs := make(chan error, k)
		for i := range k {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				_, err := cl.Submit(b.Context(), spec(fmt.Sprintf("if-%s-%d", tag, i), comps[i].Name))
				errs <- err
			}()
		}
		for range k {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		answerAll := func(step string) {
			ms := make([]jetstream.Msg, 0, k)
			for range k {
				select {
				case m := <-held[step]:
					ms = append(ms, m)
				case <-time.After(2 * time.Minute):
					b.Fatalf("%s: only %d of %d requests held", step, len(ms), k)
				}
			}
			if step == messages.StepLoad && measure {
				b.StopTimer()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heapPerJob = (float64(ms.HeapInuse) - float64(base.HeapInuse)) / float64(k)
				b.StartTimer()
			}
			for _, m := range ms {
				req, err := messages.DecodeRequest(m.Data())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := js.PublishAsync(subj.Result(req.Step), messages.Encode(resultFor(req, messages.OutcomeReady, "ok"))); err != nil {
					b.Fatal(err)
				}
				_ = m.Ack()
			}
		}
		answerAll(messages.StepLoad)
		answerAll(messages.StepPostload)
		select {
		case <-allReady:
		case <-time.After(5 * time.Minute):
			b.Fatalf("only %d of %d jobs ready", ready.Load(), target.Load())
		}
		for len(c.inv.held()) > 0 {
			time.Sleep(time.Millisecond) // benchmark set-up: the last ends are on their way
		}
	}
	round("warm", min(n, 50), false) // pool consumers made, first writes done: not measured
	runtime.GC()
	runtime.ReadMemStats(&base)
	r := 0
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		round(fmt.Sprint(r), n, r == 0)
		r++
	}
	b.StopTimer()
	jobs := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/jobs, "ns/job")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/jobs, "cpu-µs/job")
	b.ReportMetric(heapPerJob, "heap-B/held-job")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
