package coordinator

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkJobs runs b.N jobs (submitted by 32 clients at once) through
// two coordinators and instant fake workers to the ready state: the
// coordinator's throughput of whole jobs (submit, 2 dispatches, 2 results,
// 3 events, lock and release) on one embedded NATS node.
func BenchmarkJobs(b *testing.B) {
	srv := natstest.New(b)
	nc := natstest.Connect(b, srv.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		benchCoordinator(b, srv.URL(), Config{Name: name})
	}
	stop := benchWorkers(b, js)
	defer stop()

	var ready atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	sub, err := nc.Subscribe(subj.Events(), func(m *nats.Msg) {
		var ev messages.Event
		if messages.Decode(m.Data, &ev, false) == nil && ev.State == messages.StateReady && ready.Add(1) == target {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	cl := NewClient(nc, subj)
	comps := make([]messages.Computer, b.N)
	for i := range b.N {
		comps[i] = spec("", fmt.Sprintf("vm-%d", i)).Computer
	}
	if _, err := cl.ImportComputers(b.Context(), comps); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	ids := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range ids {
				if _, err := cl.Submit(b.Context(), spec(fmt.Sprintf("b-%d", i), fmt.Sprintf("vm-%d", i))); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range b.N {
		ids <- i
	}
	close(ids)
	wg.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d jobs ready", ready.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// benchWorkers answers every request ready at once.
func benchWorkers(b *testing.B, js jetstream.JetStream) func() {
	var ccs []jetstream.ConsumeContext
	for _, p := range []struct{ step, pool string }{{messages.StepLoad, "vmware"}, {messages.StepPostload, "windows"}} {
		cons, err := js.CreateOrUpdateConsumer(b.Context(), subj.RequestStream(p.step), jetstream.ConsumerConfig{
			Durable: subj.Consumer(p.step, p.pool), FilterSubject: subj.Request(p.step, p.pool),
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1000})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			req, err := messages.DecodeRequest(m.Data())
			if err != nil {
				b.Error(err)
				return
			}
			_ = m.Ack()
			res := resultFor(req, messages.OutcomeReady, "ok")
			if _, err := js.PublishAsync(subj.Result(req.Step), messages.Encode(res)); err != nil {
				b.Error(err)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		ccs = append(ccs, cc)
	}
	return func() {
		for _, cc := range ccs {
			cc.Stop()
			<-cc.Closed()
		}
	}
}

// BenchmarkInventory10k enrols 10,000 computers (bulk, in bodies under
// 64 KiB), then measures a full listing of the inventory page by page (one
// iteration) and, once, 1,000 submits to enrolled computers: the figures
// are reported as metrics.
//
//	go test -run '^$' -bench Inventory10k -benchtime 20x ./coordinator
func BenchmarkInventory10k(b *testing.B) {
	const n = 10000
	srv := natstest.New(b)
	nc := natstest.Connect(b, srv.URL())
	c := benchCoordinator(b, srv.URL(), Config{Name: "inv"})
	cl := NewClient(nc, subj)
	comps := make([]messages.Computer, n)
	for i := range comps {
		comps[i] = messages.Computer{Name: fmt.Sprintf("lab-%05d", i), Provisioner: "vmware", Type: messages.TypeVirtualMachine,
			Address: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), Attributes: map[string]string{"vm_path": fmt.Sprintf("/DC0/vm/lab/lab-%05d", i)}}
	}
	start := time.Now()
	if r, err := cl.ImportComputers(b.Context(), comps); err != nil || r.Added != n {
		b.Fatalf("import: %+v %v", r, err)
	}
	enrol := float64(time.Since(start).Microseconds()) / n
	for c.inv.len() < n {
		time.Sleep(time.Millisecond) // the index catches up with the watcher (benchmark set-up, not a test)
	}

	// 1,000 submits to enrolled computers (no workers: the load requests wait).
	start = time.Now()
	for i := range 1000 {
		if _, err := cl.Submit(b.Context(), messages.JobSpec{ID: fmt.Sprintf("inv-%d", i), Computer: messages.Computer{Name: comps[i*7].Name},
			Image: messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"}}); err != nil {
			b.Fatal(err)
		}
	}
	submit := float64(time.Since(start).Microseconds()) / 1000

	b.ResetTimer()
	pages := 0
	for b.Loop() {
		got, after := 0, ""
		for {
			r, err := cl.ListComputers(b.Context(), messages.ComputerListRequest{Limit: 1000, After: after})
			if err != nil {
				b.Fatal(err)
			}
			got += len(r.Computers)
			pages++
			if r.Next == "" {
				break
			}
			after = r.Next
		}
		if got != n {
			b.Fatalf("listed %d of %d", got, n)
		}
	}
	b.ReportMetric(float64(pages)/float64(b.N), "pages/list")
	b.ReportMetric(enrol, "enrol-µs/computer")
	b.ReportMetric(submit, "submit-µs")
}

// benchCoordinator starts a coordinator on its own connection to url,
// stopped when the benchmark ends.
func benchCoordinator(b *testing.B, url string, cfg Config) *Coordinator {
	b.Helper()
	cfg.Subjects, cfg.Logger = subj, testLogger()
	c, err := New(natstest.Connect(b, url), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Stop)
	return c
}
