package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go/jetstream"
)

// A thousand jobs (100 computers, ten jobs each, one after another)
// through two coordinators that are killed while they work (their
// connection cut, no goodbye), replaced each time, on a NATS server that
// restarts twice. Every job ends ready with each of its steps applied
// exactly once, and every computer ends in use by its last job, that
// job's end recorded, its lock free.
func TestThousandJobsThroughKillsAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand jobs through crashes: not with -short")
	}
	const computers, perComputer = 100, 10
	port, err := embednats.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var srvMu sync.Mutex
	start := func() *embednats.Server {
		s, err := embednats.Start(embednats.Config{Port: port, StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	srv := start()
	t.Cleanup(func() { srvMu.Lock(); srv.Shutdown(); srvMu.Unlock() })
	e := &env{t: t, srv: srv, url: srv.URL()}
	e.nc = e.connect()
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	e.cl = NewClient(e.nc, subj)

	var coMu sync.Mutex
	cos := []*Coordinator{e.coordinator(Config{Name: "c-0"}), e.coordinator(Config{Name: "c-1"})}
	chaosWorker(e, messages.StepLoad, "vmware")
	chaosWorker(e, messages.StepPostload, "windows")
	comps := make([]messages.Computer, computers)
	for i := range comps {
		comps[i] = spec("", fmt.Sprintf("ch-%03d", i)).Computer
	}
	if _, err := e.cl.ImportComputers(ctx(t), comps); err != nil {
		t.Fatal(err)
	}

	var ready atomic.Int64
	progress := make(chan int64, computers*perComputer)
	var wg sync.WaitGroup
	for i := range computers {
		wg.Go(func() {
			for k := range perComputer {
				id := fmt.Sprintf("ch-%03d-%d", i, k)
				if !submitUntilReady(e, spec(id, comps[i].Name)) {
					return
				}
				progress <- ready.Add(1)
			}
		})
	}

	// The chaos, at points of progress: kill one coordinator (its
	// in-flight work is cut; its unacknowledged results come again to the
	// other), start a new one; restart the server twice.
	kills, restarts := 0, 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for n := int64(0); ; {
		select {
		case n = <-progress:
		case <-done:
			n = -1
		}
		if n < 0 {
			break
		}
		switch {
		case n%150 == 0 && n < 1000:
			coMu.Lock()
			victim := cos[kills%2]
			victim.nc.Close()
			victim.Stop()
			cos[kills%2] = e.coordinator(Config{Name: fmt.Sprintf("c-%d", kills+2)})
			kills++
			coMu.Unlock()
		case n == 333 || n == 666:
			srvMu.Lock()
			srv.Shutdown()
			srv.WaitForShutdown()
			srv = start()
			srvMu.Unlock()
			restarts++
		}
	}
	if t.Failed() {
		return
	}
	if got := ready.Load(); got != computers*perComputer {
		t.Fatalf("%d of %d jobs ready", got, computers*perComputer)
	}
	t.Logf("%d jobs ready through %d coordinator kills and %d server restarts", ready.Load(), kills, restarts)
	for i := range computers {
		for k := range perComputer {
			rec, err := e.cl.Get(ctx(t), fmt.Sprintf("ch-%03d-%d", i, k))
			if err != nil {
				t.Fatal(err)
			}
			if got := steps(rec); rec.State != messages.StateReady || !slices.Equal(got, []string{"1/load/ready", "1/postload/ready"}) {
				t.Errorf("job %s: %s, history %v; want ready, each step once", rec.ID, rec.State, got)
			}
		}
		last := fmt.Sprintf("ch-%03d-%d", i, perComputer-1)
		var c messages.Enrollment
		// (a repair by redelivery takes the result consumer's ack wait, 30 s)
		poll.Within(t, time.Minute, comps[i].Name+" to record its last job's end", func() bool {
			c = e.computer(comps[i].Name)
			return c.Job == last && c.JobEnded == messages.StateReady
		})
		if c.State != messages.ComputerInUse || !c.Tainted {
			t.Errorf("computer %s: %+v; want inuse, tainted, by %s", c.Name, c, last)
		}
		poll.Within(t, time.Minute, comps[i].Name+"'s lock to be free", func() bool { return e.lockHolder(comps[i].Name) == "" })
	}
}

// submitUntilReady submits s (again, same id, while the system answers
// 503 or not at all: submit is idempotent) and waits until the job is
// ready; false (with the test failed) when that does not come.
func submitUntilReady(e *env, s messages.JobSpec) bool {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rec, err := e.cl.Submit(c, s)
		cancel()
		var api *APIError
		if err != nil && errors.As(err, &api) && api.Code < 500 && api.Code != 409 {
			e.t.Errorf("submit %s: %v", s.ID, err)
			return false
		}
		if err != nil { // 503, 409 (the last job's lock on its way out), no answer: again
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for rec.State != messages.StateReady && time.Now().Before(deadline) {
			if messages.Terminal(rec.State) {
				e.t.Errorf("job %s ended %s: %s", s.ID, rec.State, rec.Error)
				return false
			}
			time.Sleep(20 * time.Millisecond)
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if got, err := e.cl.Get(c, s.ID); err == nil {
				rec = got
			}
			cancel()
		}
		if rec.State == messages.StateReady {
			return true
		}
	}
	e.t.Errorf("job %s not ready within 3 minutes", s.ID)
	return false
}

// chaosWorker answers every request ready, publishing the result before
// it acknowledges the request (a result lost to a restart is a
// redelivered request, answered again: the coordinator drops the
// duplicate). Its connection reconnects across server restarts.
func chaosWorker(e *env, step, name string) {
	nc := e.connect()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	cons, err := pool.Consumer{Subjects: subj, Step: step, Pool: name}.Ensure(ctx(e.t), js, false)
	if err != nil {
		e.t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		req, err := messages.DecodeRequest(m.Data())
		if err != nil {
			_ = m.Term()
			return
		}
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.Publish(c, subj.Result(req.Step), messages.Encode(resultFor(req, messages.OutcomeReady, "ok"))); err != nil {
			_ = m.Nak()
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cc.Stop(); <-cc.Closed() })
}
