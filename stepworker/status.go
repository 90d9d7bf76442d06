package stepworker

import (
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/micro"
)

// Status says what this worker process is doing.
func (r *Runtime) Status() messages.WorkerStatus {
	return messages.WorkerStatus{Worker: r.cfg.Settings.WorkerID, Step: r.cfg.Step, Pool: r.cfg.Pool,
		Running: r.Running(), Concurrency: r.cfg.Settings.Concurrency}
}

// AddStatusEndpoint adds the endpoint "status" (Subjects.Status) to svc:
// any one worker of the pool answers with its Status, and `nats micro
// info` lists every worker of the pool.
func (r *Runtime) AddStatusEndpoint(svc micro.Service) error {
	return svc.AddEndpoint("status", micro.HandlerFunc(func(req micro.Request) {
		_ = req.RespondJSON(r.Status())
	}), micro.WithEndpointSubject(r.cfg.Subjects.Status(r.cfg.Step, r.cfg.Pool)))
}
