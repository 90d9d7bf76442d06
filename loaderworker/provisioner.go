package loaderworker

import (
	"context"

	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/messages"
)

// Provisioner puts images on computers of one kind and starts them. It
// never waits for the OS and never speaks SSH.
//
// Load returns a plain error for a transient failure (the step answers
// retry), an error wrapped with outcome.Permanent when loading again
// will not help (fail), or nil (ready). It reports progress (cloning,
// powering on) through p, which also keeps the request's lease alive.
// Every remote call it makes has its own deadline under ctx.
type Provisioner interface {
	Load(ctx context.Context, req messages.Request, p progress.Progress) (LoadReport, error)
	// Power performs req.Action on req.Computer and reports the power
	// state afterwards; with req.Evidence it also saves what it can of the
	// screen and says where in the reply's Evidence.
	Power(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error)
}

// LoadReport is what a successful load says.
type LoadReport struct {
	// Detail is a human sentence ("cloned win7-sp1-v3 to vm-017").
	Detail string
	// Reloaded is false when the load was skipped because the computer
	// already runs the image (reload: if-needed).
	Reloaded bool
}
