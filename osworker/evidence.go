package osworker

import (
	"context"
	"strings"
	"sync"

	"github.com/loadpool/loadpool/messages"
)

// evidence collects the evidence objects the loader saved during a step's
// power actions (PowerReply.Evidence: comma-separated names in the
// evidence bucket, <job>/<attempt>/<name>), for the step's result.
type evidence struct {
	mu  sync.Mutex
	got []string
}

// collect wraps f so that the names in its replies are kept; names not
// under the job (a provisioner's own location, e.g. a datastore path)
// are left to the reply's event.
func (e *evidence) collect(job string, f PowerFunc) PowerFunc {
	return func(ctx context.Context, action string, want bool) (messages.PowerReply, error) {
		rep, err := f(ctx, action, want)
		if err == nil && rep.Evidence != "" {
			e.mu.Lock()
			for _, n := range strings.Split(rep.Evidence, ",") {
				if strings.HasPrefix(n, job+"/") {
					e.got = append(e.got, n)
				}
			}
			e.mu.Unlock()
		}
		return rep, err
	}
}

func (e *evidence) names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got
}
