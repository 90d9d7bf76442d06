package service_test

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/internal/service"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats-server's own background goroutines end shortly after Shutdown.
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
	)
}

func connect(t *testing.T) *nats.Conn {
	t.Helper()
	return natstest.Connect(t, natstest.New(t).URL())
}

func start(t *testing.T, nc *nats.Conn, cfg service.Config) *service.Service {
	t.Helper()
	if cfg.Version == "" {
		cfg.Version = "1.2.3"
	}
	s, err := service.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func add(t *testing.T, s *service.Service, name, subject string, h service.Handler, opts ...service.Option) {
	t.Helper()
	if err := s.AddEndpoint(name, subject, h, opts...); err != nil {
		t.Fatal(err)
	}
}

func ok(r *service.Request) { _ = r.Respond([]byte("ok")) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func request(t *testing.T, nc *nats.Conn, subject string) *nats.Msg {
	t.Helper()
	m, err := nc.RequestWithContext(ctx(t), subject, nil)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return m
}

// asyncRequest sends a request and hands its answer over later.
func asyncRequest(t *testing.T, nc *nats.Conn, subject string) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 1)
	c := ctx(t)
	go func() {
		m, err := nc.RequestWithContext(c, subject, nil)
		if err != nil {
			t.Errorf("request %s: %v", subject, err)
		}
		ch <- m
	}()
	return ch
}

func decode[T any](t *testing.T, m *nats.Msg) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("%s: %v", m.Data, err)
	}
	return v
}

func stats(t *testing.T, nc *nats.Conn, s *service.Service, name string) *micro.EndpointStats {
	t.Helper()
	st := decode[micro.Stats](t, request(t, nc, "$SRV.STATS.svc."+s.ID()))
	if st.Type != micro.StatsResponseType {
		t.Fatalf("stats type %q", st.Type)
	}
	for _, ep := range st.Endpoints {
		if ep.Name == name {
			return ep
		}
	}
	t.Fatalf("no endpoint %s in %+v", name, st)
	return nil
}

// within fails the test unless ch delivers within 10 s (a hang, not a
// timing bound).
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		var zero T
		return zero
	}
}

// TestStatsCountProcessingTime: an endpoint whose handler takes 50 ms
// averages at least that in $SRV.STATS, while another endpoint is answered
// during it; the hand-off to the handler's goroutine is not what is timed.
func TestStatsCountProcessingTime(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	s := start(t, nc, service.Config{Name: "svc"})
	const hold = 50 * time.Millisecond
	entered, release := make(chan struct{}), make(chan struct{})
	add(t, s, "slow", "t.slow", func(r *service.Request) {
		close(entered)
		<-release
		time.Sleep(hold) // the handler's known processing time
		ok(r)
	})
	add(t, s, "fast", "t.fast", ok)
	slow := asyncRequest(t, nc, "t.slow")
	within(t, entered, "slow handler")
	request(t, nc, "t.fast") // answered while slow runs
	close(release)
	within(t, slow, "slow reply")

	st := stats(t, nc, s, "slow")
	if st.NumRequests != 1 || st.NumErrors != 0 || st.AverageProcessingTime < hold || st.ProcessingTime < hold {
		t.Errorf("slow: %+v; want 1 request, no error, processing at least %s", st, hold)
	}
	if st := stats(t, nc, s, "fast"); st.NumRequests != 1 {
		t.Errorf("fast: %+v; want 1 request", st)
	}
}

// TestMicroTimesTheHandOff is the defect this package fixes: micro times
// the hand-off, not the handler that answers from its own goroutine.
func TestMicroTimesTheHandOff(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	svc, err := micro.AddService(nc, micro.Config{Name: "svc", Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	const hold = 50 * time.Millisecond
	done := make(chan struct{})
	err = svc.AddEndpoint("slow", micro.HandlerFunc(func(r micro.Request) {
		reply := r.Reply()
		go func() { // as the coordinator had to, to answer concurrently
			defer close(done)
			time.Sleep(hold)
			_ = nc.Publish(reply, []byte("ok"))
		}()
	}), micro.WithEndpointSubject("t.slow"))
	if err != nil {
		t.Fatal(err)
	}
	request(t, nc, "t.slow")
	<-done
	if st := svc.Stats().Endpoints[0]; st.AverageProcessingTime >= hold {
		t.Errorf("micro now times %s for a %s handler: package service may no longer be needed", st.AverageProcessingTime, hold)
	}
}

// TestConcurrentHandlers: two requests to one endpoint are in its handler
// at once.
func TestConcurrentHandlers(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	s := start(t, nc, service.Config{Name: "svc"})
	in, release := make(chan struct{}), make(chan struct{})
	add(t, s, "wait", "t.wait", func(r *service.Request) {
		in <- struct{}{}
		<-release
		ok(r)
	})
	a, b := asyncRequest(t, nc, "t.wait"), asyncRequest(t, nc, "t.wait")
	within(t, in, "first handler")
	within(t, in, "second handler while the first runs")
	close(release)
	within(t, a, "first reply")
	within(t, b, "second reply")
	if st := stats(t, nc, s, "wait"); st.NumRequests != 2 {
		t.Errorf("wait: %+v; want 2 requests", st)
	}
}

// TestErrors: an error reply carries micro's headers and counts as the
// endpoint's error, last_error "code:description" as micro writes it.
func TestErrors(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	s := start(t, nc, service.Config{Name: "svc"})
	add(t, s, "maybe", "t.maybe", func(r *service.Request) {
		if string(r.Data()) == "bad" {
			_ = r.Error("404", "no such thing: check the id", []byte(`{"error":"no such thing"}`))
			return
		}
		ok(r)
	})
	request(t, nc, "t.maybe")
	m, err := nc.RequestWithContext(ctx(t), "t.maybe", []byte("bad"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(micro.ErrorCodeHeader) != "404" || m.Header.Get(micro.ErrorHeader) != "no such thing: check the id" || string(m.Data) != `{"error":"no such thing"}` {
		t.Errorf("error reply: headers %v, body %s", m.Header, m.Data)
	}
	st := stats(t, nc, s, "maybe")
	if st.NumRequests != 2 || st.NumErrors != 1 || st.LastError != "404:no such thing: check the id" {
		t.Errorf("maybe: %+v; want 2 requests, 1 error, last_error 404:...", st)
	}
}

// TestSlotsBound: with one slot taken, Full answers the next request at
// once; an Inline endpoint is still answered.
func TestSlotsBound(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	s := start(t, nc, service.Config{Name: "svc", Slots: make(chan struct{}, 1),
		Full: func(r *service.Request) { _ = r.Error("503", "busy", nil) }})
	entered, release := make(chan struct{}), make(chan struct{})
	add(t, s, "wait", "t.wait", func(r *service.Request) {
		close(entered)
		<-release
		ok(r)
	})
	add(t, s, "status", "t.status", ok, service.Inline())
	first := asyncRequest(t, nc, "t.wait")
	within(t, entered, "first handler")
	if m := request(t, nc, "t.wait"); m.Header.Get(micro.ErrorCodeHeader) != "503" {
		t.Errorf("a request with no free slot: %v %s, want a 503", m.Header, m.Data)
	}
	if m := request(t, nc, "t.status"); string(m.Data) != "ok" {
		t.Errorf("inline endpoint while busy: %v %s", m.Header, m.Data)
	}
	close(release)
	within(t, first, "first reply")
	if st := stats(t, nc, s, "wait"); st.NumRequests != 2 || st.NumErrors != 1 || st.LastError != "503:busy" {
		t.Errorf("wait: %+v", st)
	}
}

// TestStopDrains: Stop returns only once the handler in flight has
// answered; then the service is gone.
func TestStopDrains(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	s, err := service.New(nc, service.Config{Name: "svc", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	add(t, s, "wait", "t.wait", func(r *service.Request) {
		close(entered)
		<-release
		ok(r)
		finished.Store(true)
	})
	reply := asyncRequest(t, nc, "t.wait")
	within(t, entered, "handler")
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	close(release)
	within(t, stopped, "Stop")
	if !finished.Load() {
		t.Error("Stop returned before the handler in flight")
	}
	if m := within(t, reply, "reply"); m == nil || string(m.Data) != "ok" {
		t.Errorf("the request in flight got %v", m)
	}
	if _, err := nc.RequestWithContext(ctx(t), "$SRV.PING.svc", nil); err != nats.ErrNoResponders {
		t.Errorf("PING after Stop: %v, want no responders", err)
	}
	if err := s.AddEndpoint("late", "t.late", ok); err == nil {
		t.Error("AddEndpoint after Stop succeeded")
	}
	s.Stop() // idempotent
}

// TestDiscovery: PING, INFO and STATS answer on $SRV.<VERB>,
// $SRV.<VERB>.<name> and $SRV.<VERB>.<name>.<id>; two instances share an
// endpoint's requests (queue group q) and both answer $SRV.PING.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	cfg := service.Config{Name: "svc", Description: "a test", Metadata: map[string]string{"k": "v"}}
	a, b := start(t, nc, cfg), start(t, nc, cfg)
	for _, s := range []*service.Service{a, b} {
		add(t, s, "echo", "t.echo", ok)
	}
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		for _, subject := range []string{"$SRV." + verb, "$SRV." + verb + ".svc", "$SRV." + verb + ".svc." + a.ID()} {
			got := answers(t, nc, subject)
			want := map[string]bool{a.ID(): true}
			if !strings.HasSuffix(subject, a.ID()) {
				want[b.ID()] = true
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s: answered by %v, want %v", subject, got, want)
			}
		}
	}
	info := decode[micro.Info](t, request(t, nc, "$SRV.INFO.svc."+a.ID()))
	if info.Type != micro.InfoResponseType || info.Name != "svc" || info.Version != "1.2.3" || info.Description != "a test" ||
		info.Metadata["k"] != "v" || len(info.Endpoints) != 1 || info.Endpoints[0].Name != "echo" || info.Endpoints[0].Subject != "t.echo" || info.Endpoints[0].QueueGroup != "q" {
		t.Errorf("info: %+v", info)
	}
	const n = 20
	for range n {
		request(t, nc, "t.echo")
	}
	if got := stats(t, nc, a, "echo").NumRequests + stats(t, nc, b, "echo").NumRequests; got != n {
		t.Errorf("the two instances counted %d requests, want %d (each once)", got, n)
	}
}

// answers collects the ids of the instances that answer subject.
func answers(t *testing.T, nc *nats.Conn, subject string) map[string]bool {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for {
		m, err := sub.NextMsg(300 * time.Millisecond) // the end of the answers
		if err != nil {
			return got
		}
		got[decode[micro.ServiceIdentity](t, m).ID] = true
	}
}

// TestSameJSONAsMicro: PING, INFO and STATS answer what a micro service
// with the same configuration answers, key for key (but the id and the
// start time), so `nats micro ls/info/stats` read it alike.
func TestSameJSONAsMicro(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	desc, md := "a test", map[string]string{"k": "v"}
	ours := start(t, nc, service.Config{Name: "svc", Description: desc, Metadata: md})
	add(t, ours, "echo", "t.echo", ok)
	theirs, err := micro.AddService(nc, micro.Config{Name: "svc", Version: "1.2.3", Description: desc, Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = theirs.Stop() }()
	if err := theirs.AddEndpoint("echo", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte("ok")) }), micro.WithEndpointSubject("t.echo")); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		o := generic(t, request(t, nc, "$SRV."+verb+".svc."+ours.ID()))
		m := generic(t, request(t, nc, "$SRV."+verb+".svc."+theirs.Info().ID))
		if !equalJSON(o, m) {
			t.Errorf("$SRV.%s: ours %v, micro's %v", verb, o, m)
		}
	}
}

func generic(t *testing.T, m *nats.Msg) map[string]any {
	t.Helper()
	v := decode[map[string]any](t, m)
	delete(v, "id")
	delete(v, "started")
	return v
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a) // sorted keys
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
