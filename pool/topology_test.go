package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go/jetstream"
)

// Ensure creates the four streams, leaves matching ones alone (no update
// that could race a consumer's creation), and brings a changed one back to
// the configuration.
func TestTopologyEnsure(t *testing.T) {
	t.Parallel()
	srv := natstest.New(t)
	js, err := jetstream.New(natstest.Connect(t, srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topo := pool.Topology{Subjects: messages.Subjects{Prefix: "lab2"}}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	created := map[string]time.Time{}
	for _, cfg := range topo.Streams() {
		s, err := js.Stream(ctx, cfg.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", cfg.Name, err)
		}
		created[cfg.Name] = s.CachedInfo().Created
		if got := s.CachedInfo().Config; got.MaxMsgSize != messages.MaxBodyBytes || got.Subjects[0] != cfg.Subjects[0] {
			t.Fatalf("stream %s config %+v", cfg.Name, got)
		}
	}
	if _, ok := created["LAB2_LOAD"]; !ok {
		t.Fatalf("prefix not applied: %v", created)
	}
	// Someone changed a stream by hand: Ensure puts it back.
	ev := topo.Streams()[3]
	ev.MaxAge = time.Hour
	if _, err := js.UpdateStream(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, ev.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != pool.EventMaxAge {
		t.Fatalf("max age %s after Ensure, want %s", got, pool.EventMaxAge)
	}
}

func TestConsumer(t *testing.T) {
	t.Parallel()
	srv := natstest.New(t)
	js, err := jetstream.New(natstest.Connect(t, srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	subj := messages.Subjects{}
	if err := (pool.Topology{Subjects: subj}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	pc := pool.Consumer{Subjects: subj, Step: messages.StepLoad, Pool: "xcat", MaxAckPending: 10}
	c, err := pc.Ensure(ctx, js, false)
	if err != nil {
		t.Fatal(err)
	}
	info := c.CachedInfo()
	if info.Name != "loader-xcat" || info.Config.FilterSubject != "vcl.load.request.xcat" || info.Config.MaxAckPending != 10 ||
		info.Config.AckWait != pool.DefaultAckWait || info.Config.MaxDeliver != pool.DefaultMaxDeliver {
		t.Fatalf("consumer %+v", info.Config)
	}
	// A worker with other settings binds to the pool's consumer as it is...
	other := pc
	other.MaxAckPending = 3
	if c, err = other.Ensure(ctx, js, false); err != nil || c.CachedInfo().Config.MaxAckPending != 10 {
		t.Fatalf("bind: %v %+v", err, c)
	}
	// ...unless told to update it (an operator changing the throttle).
	if c, err = other.Ensure(ctx, js, true); err != nil || c.CachedInfo().Config.MaxAckPending != 3 {
		t.Fatalf("update: %v", err)
	}
	if _, err := (pool.Consumer{Subjects: subj, Step: messages.StepLoad, Pool: "a.b"}).Ensure(ctx, js, false); err == nil {
		t.Fatal("a pool name that is not a subject token must be refused")
	}
}
