package loaderworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/loadpool/loadpool/internal/service"
	"github.com/loadpool/loadpool/outcome"
	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/stepworker"
	"github.com/nats-io/nats.go"
)

// Config configures a loader worker process for one provisioner.
type Config struct {
	Subjects messages.Subjects
	// Name is the provisioner's token: the pool this worker serves.
	Name string
	// Settings are the pool's (package pool; Settings.MaxAckPending is the
	// pool-wide limit, xCAT's throttle). UpdateConsumer applies them to an
	// existing consumer.
	Settings       pool.Config
	UpdateConsumer bool
	// PowerTimeout bounds one power action (default
	// messages.DefaultPowerTimeout).
	PowerTimeout time.Duration
	// PowerConcurrency bounds power actions at once (default 16).
	PowerConcurrency int
	// Evidence saves what an EvidenceReader provisioner holds of a power
	// action's evidence into the evidence bucket (evidence.go).
	Evidence bool
	Logger   *slog.Logger
}

// Worker is a running loader process.
type Worker struct {
	cfg  Config
	nc   *nats.Conn
	prov Provisioner
	rt   *stepworker.Runtime
	svc  *service.Service
	sem  chan struct{}
	jobs *jobs
	log  *slog.Logger
}

// New checks the configuration.
func New(nc *nats.Conn, cfg Config, prov Provisioner) (*Worker, error) {
	if prov == nil {
		return nil, errors.New("loaderworker: a provisioner is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PowerTimeout <= 0 {
		cfg.PowerTimeout = messages.DefaultPowerTimeout
	}
	if cfg.PowerConcurrency <= 0 {
		cfg.PowerConcurrency = 16
	}
	w := &Worker{cfg: cfg, nc: nc, prov: prov, log: cfg.Logger.With("provisioner", cfg.Name),
		jobs: &jobs{nc: nc, bucket: cfg.Subjects.JobsBucket()}}
	rt, err := stepworker.New(nc, stepworker.Config{Subjects: cfg.Subjects, Step: messages.StepLoad, Pool: cfg.Name, UpdateConsumer: cfg.UpdateConsumer, Logger: cfg.Logger, Settings: cfg.Settings}, w.load)
	if err != nil {
		return nil, fmt.Errorf("loaderworker: %w", err)
	}
	w.rt = rt
	w.cfg.Settings = rt.Config().Settings
	w.sem = make(chan struct{}, cfg.PowerConcurrency)
	return w, nil
}

// Start binds the pool and serves the power endpoint.
func (w *Worker) Start(ctx context.Context) error {
	svc, err := service.New(w.nc, service.Config{
		Name: "loadpool-loader-" + w.cfg.Name, Version: "0.1.0",
		Description: "loadpool loader workers of provisioner " + w.cfg.Name + " (power and status endpoints)",
		Slots:       w.sem, Full: w.powerBusy,
	})
	if err != nil {
		return fmt.Errorf("loaderworker: power service: %w", err)
	}
	err = svc.AddEndpoint("power", w.cfg.Subjects.Power(w.cfg.Name), w.onPower)
	if err == nil {
		err = w.rt.AddStatusEndpoint(svc)
	}
	if err != nil {
		svc.Stop()
		return fmt.Errorf("loaderworker: power and status endpoints: %w", err)
	}
	w.svc = svc
	if err := w.rt.Start(ctx); err != nil {
		svc.Stop()
		return err
	}
	return nil
}

// Stop stops the power endpoint and the runtime; idempotent.
func (w *Worker) Stop() {
	if w.svc != nil {
		w.svc.Stop() // the power actions running finish first
	}
	w.rt.Stop()
}

// WorkerID is the id this worker reports in results.
func (w *Worker) WorkerID() string { return w.cfg.Settings.WorkerID }

func (w *Worker) load(ctx context.Context, req messages.Request, p progress.Progress) (stepworker.Report, error) {
	rep, err := w.prov.Load(ctx, req, p)
	out := stepworker.Report{Detail: rep.Detail}
	if err == nil {
		reloaded := rep.Reloaded
		out.Reloaded = &reloaded
	} else {
		out.Detail = ""
	}
	return out, err
}

// powerRequest decodes and checks a power request for this provisioner.
func (w *Worker) powerRequest(r *service.Request) (messages.PowerRequest, error) {
	var req messages.PowerRequest
	err := messages.Decode(r.Data(), &req, true)
	if err == nil {
		err = req.Validate()
	}
	if err == nil && req.Computer.Provisioner != w.cfg.Name {
		err = fmt.Errorf("computer.provisioner is %q but this endpoint serves %q", req.Computer.Provisioner, w.cfg.Name)
	}
	return req, err
}

// powerBusy answers a request that finds PowerConcurrency actions
// running: 400 if it is bad anyway, else 503 (try again shortly).
func (w *Worker) powerBusy(r *service.Request) {
	if _, err := w.powerRequest(r); err != nil {
		respondError(r, 400, err.Error())
		return
	}
	respondError(r, 503, fmt.Sprintf("%d power actions are already running here; try again shortly", cap(w.sem)))
}

// onPower answers vcl.power.<provisioner>. Power actions can take a while,
// so each runs in its own goroutine (package internal/service), at most
// PowerConcurrency at once. Power is owned: only the job that holds the
// computer, at its current attempt, in its post-load step, gets it
// (holder), and the provisioner acts on the computer as the job's record
// has it.
func (w *Worker) onPower(r *service.Request) {
	req, err := w.powerRequest(r)
	if err != nil {
		respondError(r, 400, err.Error())
		return
	}
	w.power1(r, req)
}

// power1 runs one power action and answers r.
func (w *Worker) power1(to *service.Request, req messages.PowerRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.PowerTimeout)
	defer cancel()
	log := w.log.With("computer", req.Computer.Name, "action", req.Action, "job", req.JobID, "attempt", req.Attempt)
	held, err := w.holder(ctx, req)
	if err != nil {
		code := 503
		if ref := (*refusal)(nil); errors.As(err, &ref) {
			code = ref.code
		}
		log.Warn("power request refused", "code", code, "why", err)
		respondError(to, code, err.Error())
		return
	}
	req.Computer = held
	rep, err := w.prov.Power(ctx, req)
	if err != nil {
		code := 503
		if outcome.IsPermanent(err) {
			code = 400
		}
		log.Warn("power action failed", "err", err)
		respondError(to, code, err.Error())
		return
	}
	if w.cfg.Evidence {
		rep = saveEvidence(ctx, w.nc, w.cfg.Subjects, w.prov, req, rep, log)
	}
	rep.Worker = w.cfg.Settings.WorkerID
	if rep.Computer == "" {
		rep.Computer = req.Computer.Name
	}
	if rep.Action == "" {
		rep.Action = req.Action
	}
	log.Info("power action done", "state", rep.State, "evidence", rep.Evidence)
	w.event(req, fmt.Sprintf("power %s of %s: now %s. %s", req.Action, req.Computer.Name, rep.State, rep.Detail))
	_ = to.Respond(messages.Encode(rep))
}

func (w *Worker) event(req messages.PowerRequest, msg string) {
	ev := messages.Event{JobID: req.JobID, Time: time.Now().UTC(), Attempt: req.Attempt,
		Step: messages.StepPostload, Source: w.cfg.Settings.WorkerID, Message: msg, State: messages.StatePostloading}
	_ = w.nc.Publish(w.cfg.Subjects.Event(req.JobID), messages.Encode(ev))
}

func respondError(to *service.Request, code int, msg string) {
	_ = to.Error(fmt.Sprint(code), msg, messages.Encode(messages.ErrorBody{Error: msg}))
}
