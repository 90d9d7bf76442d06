package loaderworker

import (
	"context"
	"sync"

	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/messages"
)

var _ Provisioner = (*Fake)(nil)

// Fake is a scripted Provisioner for tests of the runtime and of the
// coordinator: LoadFunc decides each load (nil: ready, reloaded); every
// request is recorded.
type Fake struct {
	LoadFunc  func(ctx context.Context, req messages.Request, p progress.Progress) (LoadReport, error)
	PowerFunc func(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error)

	mu    sync.Mutex
	loads []messages.Request
	power []messages.PowerRequest
}

// Load records req and runs LoadFunc.
func (f *Fake) Load(ctx context.Context, req messages.Request, p progress.Progress) (LoadReport, error) {
	f.mu.Lock()
	f.loads = append(f.loads, req)
	fn := f.LoadFunc
	f.mu.Unlock()
	if fn == nil {
		return LoadReport{Detail: "loaded " + req.Image.Name, Reloaded: true}, nil
	}
	return fn(ctx, req, p)
}

// Power records req and runs PowerFunc (nil: the state the action implies).
func (f *Fake) Power(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error) {
	f.mu.Lock()
	f.power = append(f.power, req)
	fn := f.PowerFunc
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, req)
	}
	state := "on"
	if req.Action == messages.PowerOff {
		state = "off"
	}
	return messages.PowerReply{State: state}, nil
}

// Loads returns the load requests seen so far.
func (f *Fake) Loads() []messages.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]messages.Request(nil), f.loads...)
}

// PowerRequests returns the power requests seen so far.
func (f *Fake) PowerRequests() []messages.PowerRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]messages.PowerRequest(nil), f.power...)
}
