package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats-server's own background goroutines end shortly after Shutdown.
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
	)
}

var subj = messages.Subjects{Prefix: "vcl"}

// testLogger shows warnings (and everything with LOADPOOL_TEST_DEBUG=1).
func testLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("LOADPOOL_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// env is one test's NATS server, client connection and coordinator client.
type env struct {
	t   *testing.T
	srv *embednats.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	cl  *Client
	url string
	// replicas of the coordinators' streams and buckets (0: 1).
	replicas int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.New(t)
	nc := natstest.Connect(t, srv.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, nc: nc, js: js, cl: NewClient(nc, subj)}
}

// connect opens another connection to the test's server (or cluster).
func (e *env) connect() *nats.Conn {
	if e.url == "" {
		e.url = e.srv.URL()
	}
	return natstest.Connect(e.t, e.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
}

// coordinator starts a coordinator on its own connection; it is stopped
// when the test ends (Stop is idempotent).
func (e *env) coordinator(cfg Config) *Coordinator {
	e.t.Helper()
	return e.coordinatorWith(cfg, nil)
}

// coordinatorWith lets the test change the coordinator before it starts.
func (e *env) coordinatorWith(cfg Config, prepare func(*Coordinator)) *Coordinator {
	e.t.Helper()
	cfg.Subjects = subj
	if cfg.Settings.Replicas == 0 {
		cfg.Settings.Replicas = e.replicas
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	c, err := New(e.connect(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if prepare != nil {
		prepare(c)
	}
	if err := c.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Stop)
	return c
}

func spec(id, computer string) messages.JobSpec {
	return messages.JobSpec{ID: id,
		Computer: messages.Computer{Name: computer, Provisioner: "vmware", Type: messages.TypeVirtualMachine},
		Image:    messages.Image{Name: "win7-sp1-v3", OSFamily: "windows", OSVersion: "7", Sysprep: true}}
}

// enroll enrols the computer of s as its spec describes it (a no-op when
// it already is).
func (e *env) enroll(c messages.Computer) {
	e.t.Helper()
	if _, err := e.cl.AddComputer(ctx(e.t), c); err != nil {
		e.t.Fatalf("enrol %s: %v", c.Name, err)
	}
}

// submit enrols the spec's computer, then submits the job.
func (e *env) submit(s messages.JobSpec) messages.JobRecord {
	e.t.Helper()
	if s.Computer.Provisioner != "" {
		e.enroll(s.Computer)
	}
	rec, err := e.cl.Submit(ctx(e.t), s)
	if err != nil {
		e.t.Fatalf("submit %s: %v", s.ID, err)
	}
	return rec
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitState waits until job id is in state and returns its record.
func (e *env) waitState(id, state string) messages.JobRecord {
	e.t.Helper()
	var rec messages.JobRecord
	var err error
	defer func() {
		if e.t.Failed() {
			e.t.Logf("job %s: last record %+v, last error %v", id, rec, err)
		}
	}()
	poll.Until(e.t, fmt.Sprintf("job %s in state %s", id, state), func() bool {
		rec, err = e.cl.Get(ctx(e.t), id)
		return err == nil && rec.State == state
	})
	return rec
}

// revision reads the KV revision of a job record.
func (e *env) revision(id string) uint64 {
	e.t.Helper()
	kv, err := e.js.KeyValue(ctx(e.t), subj.JobsBucket())
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := kv.Get(ctx(e.t), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return en.Revision()
}

// lockHolder returns the job holding a computer ("" when free), as its
// enrolment says.
func (e *env) lockHolder(computer string) string {
	e.t.Helper()
	return heldJob(e.computerEnrollment(computer))
}

// computerEnrollment reads a computer's enrolment from KV.
func (e *env) computerEnrollment(computer string) messages.Enrollment {
	e.t.Helper()
	kv, err := e.js.KeyValue(ctx(e.t), subj.InventoryBucket())
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := kv.Get(ctx(e.t), computer)
	if err != nil {
		e.t.Fatalf("enrolment of %s: %v", computer, err)
	}
	var got messages.Enrollment
	if err := json.Unmarshal(en.Value(), &got); err != nil {
		e.t.Fatal(err)
	}
	return got
}

// drained waits until the coordinators hold no unprocessed result.
func (e *env) drained() {
	e.t.Helper()
	poll.Until(e.t, "the result consumer to be drained", func() bool {
		c, err := e.js.Consumer(ctx(e.t), subj.ResultStream(), subj.ResultConsumer())
		if err != nil {
			return false
		}
		info, err := c.Info(ctx(e.t))
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// reply is what the fake worker does with one request.
type reply struct {
	outcome messages.Outcome // "" : take the request and never answer
	detail  string
	nak     bool          // give the request back (counts a delivery)
	wait    chan struct{} // answer only once this is closed
}

// fakeWorker is a test double of a worker pool: it pulls requests from
// the pool's durable consumer with jetstream and publishes scripted
// results. It does not model leases (no InProgress) or aborts.
type fakeWorker struct {
	t      *testing.T
	step   string
	answer func(messages.Request) reply
	mu     sync.Mutex
	reqs   []messages.Request
	got    chan messages.Request
	wg     sync.WaitGroup
	cc     jetstream.ConsumeContext
	js     jetstream.JetStream
}

func (e *env) worker(step, name string, answer func(messages.Request) reply) *fakeWorker {
	e.t.Helper()
	nc := e.connect()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	// The streams are the coordinator's (started first): updating them here
	// while it creates a pool consumer trips a data race inside
	// nats-server 2.15.2 (fileStore.UpdateConfig vs ConsumerStore).
	cons, err := pool.Consumer{Subjects: subj, Step: step, Pool: name}.Ensure(ctx(e.t), js, false)
	if err != nil {
		e.t.Fatal(err)
	}
	w := &fakeWorker{t: e.t, step: step, answer: answer, got: make(chan messages.Request, 1000), js: js}
	w.cc, err = cons.Consume(func(m jetstream.Msg) {
		w.wg.Add(1)
		go w.handle(m)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.stop)
	return w
}

func (w *fakeWorker) stop() {
	w.cc.Stop()
	<-w.cc.Closed()
	w.wg.Wait()
}

func (w *fakeWorker) handle(m jetstream.Msg) {
	defer w.wg.Done()
	req, err := messages.DecodeRequest(m.Data())
	if err != nil {
		w.t.Errorf("worker got a bad request: %v", err)
		_ = m.Term()
		return
	}
	r := w.answer(req)
	if r.nak {
		_ = m.Nak()
		return
	}
	w.mu.Lock()
	w.reqs = append(w.reqs, req)
	w.mu.Unlock()
	select {
	case w.got <- req:
	default:
	}
	_ = m.Ack()
	if r.wait != nil {
		<-r.wait
	}
	if r.outcome != "" {
		w.publish(resultFor(req, r.outcome, r.detail))
	}
}

// publish sends a result as a worker does: again while JetStream cannot
// take it (a cluster electing a leader), for up to clusterPatience. A
// repeat of one that was stored is a duplicate the coordinator ignores.
func (w *fakeWorker) publish(res messages.Result) {
	deadline := time.Now().Add(clusterPatience)
	for {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := w.js.Publish(c, subj.Result(res.Step), messages.Encode(res))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			w.t.Errorf("publish to %s: %v", subj.Result(res.Step), err)
			return
		}
	}
}

func resultFor(req messages.Request, o messages.Outcome, detail string) messages.Result {
	now := time.Now().UTC()
	res := messages.Result{JobID: req.JobID, Attempt: req.Attempt, Step: req.Step, Outcome: o,
		Detail: detail, Worker: "fake/1", Started: now, Finished: now}
	if req.Step == messages.StepLoad {
		t := true
		res.Reloaded = &t
	}
	return res
}

func publishResult(t *testing.T, js jetstream.JetStream, res messages.Result) {
	publishRaw(t, js, subj.Result(res.Step), messages.Encode(res))
}

func publishRaw(t *testing.T, js jetstream.JetStream, subject string, data []byte) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(c, subject, data); err != nil {
		t.Errorf("publish to %s: %v", subject, err)
	}
}

// requests returns the requests the worker took, in order.
func (w *fakeWorker) requests() []messages.Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]messages.Request(nil), w.reqs...)
}

// attempts lists the attempt numbers of the requests taken for job id.
func (w *fakeWorker) attempts(id string) []int {
	var out []int
	for _, r := range w.requests() {
		if r.JobID == id {
			out = append(out, r.Attempt)
		}
	}
	return out
}

// always answers every request the same way.
func always(o messages.Outcome) func(messages.Request) reply {
	return func(r messages.Request) reply { return reply{outcome: o, detail: fmt.Sprintf("%s %s", r.Step, o)} }
}

// steps summarises a history as "1/load/retry 2/load/ready ...".
func steps(rec messages.JobRecord) []string {
	var out []string
	for _, s := range rec.Steps {
		out = append(out, fmt.Sprintf("%d/%s/%s", s.Attempt, s.Step, s.Outcome))
	}
	return out
}

// next returns the next request the worker took (30s at most).
func (w *fakeWorker) next() messages.Request {
	w.t.Helper()
	select {
	case r := <-w.got:
		return r
	case <-time.After(30 * time.Second):
		w.t.Fatal("the worker got no request within 30s")
	}
	return messages.Request{}
}

// watchEvents subscribes to a job's events; the returned function waits
// for the event that ends the job and returns every message so far.
func (e *env) watchEvents(id string) func() []messages.Event {
	e.t.Helper()
	sub, err := e.nc.SubscribeSync(subj.Event(id))
	if err != nil {
		e.t.Fatal(err)
	}
	return func() []messages.Event {
		e.t.Helper()
		defer sub.Unsubscribe()
		var out []messages.Event
		for {
			m, err := sub.NextMsg(30 * time.Second)
			if err != nil {
				e.t.Fatalf("events of %s so far %+v: %v", id, out, err)
			}
			var ev messages.Event
			if err := messages.Decode(m.Data, &ev, false); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, ev)
			if messages.Terminal(ev.State) {
				return out
			}
		}
	}
}
