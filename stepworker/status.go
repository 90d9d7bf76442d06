package stepworker

import (
	"github.com/loadpool/loadpool/internal/service"
	"github.com/loadpool/loadpool/messages"
)

// Status says what this worker process is doing.
func (r *Runtime) Status() messages.WorkerStatus {
	return messages.WorkerStatus{Worker: r.cfg.Settings.WorkerID, Step: r.cfg.Step, Pool: r.cfg.Pool,
		Running: r.Running(), Concurrency: r.cfg.Settings.Concurrency}
}

// AddStatusEndpoint adds the endpoint "status" (Subjects.Status) to svc:
// any one worker of the pool answers with its Status, and `nats micro
// info` lists every worker of the pool. It answers inline: busy slots do
// not hold it up.
func (r *Runtime) AddStatusEndpoint(svc *service.Service) error {
	return svc.AddEndpoint("status", r.cfg.Subjects.Status(r.cfg.Step, r.cfg.Pool), func(req *service.Request) {
		_ = req.Respond(messages.Encode(r.Status()))
	}, service.Inline())
}
