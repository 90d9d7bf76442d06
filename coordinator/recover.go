package coordinator

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errPanicked is what a request gets when its handler panicked (500).
type errPanicked struct{ v any }

func (e errPanicked) Error() string {
	return fmt.Sprintf("the coordinator failed on this request (%v); it is logged: try again, and report it if it persists", e.v)
}

// guarded runs an endpoint's handler; a panic becomes a logged error and
// a 500 reply instead of taking the process down (as the workers do with a
// panicking step).
func (c *Coordinator) guarded(name string, h func(context.Context, []byte) (any, error)) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, b []byte) (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("request handler panicked", "endpoint", name, "panic", p)
				v, err = nil, errPanicked{p}
			}
		}()
		return h(ctx, b)
	}
}

// resultGuarded applies one result; a panic is logged and the result
// comes again in a second (after maxResultDeliveries it is dropped).
func (c *Coordinator) resultGuarded(msg jetstream.Msg) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("result handler panicked; the result comes again", "subject", msg.Subject(), "panic", p)
			_ = msg.NakWithDelay(time.Second)
		}
	}()
	c.onResult(msg)
}

// advisoryGuarded handles one max-deliveries advisory; a panic is logged
// (the sweeper's step cap still ends the step).
func (c *Coordinator) advisoryGuarded(m *nats.Msg) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("advisory handler panicked", "subject", m.Subject, "panic", p)
		}
	}()
	c.onAdvisory(m)
}
