package osworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/internal/service"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/loadpool/loadpool/stepworker"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/ssh"
)

// Config configures a Worker; cmd/loadpool fills it from LOADPOOL_*.
type Config struct {
	Subjects messages.Subjects
	// Settings are the pool's (package pool).
	Settings pool.Config
	// SSHUser, Signer and DialTimeout build the SSH dialer when New is
	// given a nil Dialer.
	SSHUser     string
	Signer      ssh.Signer
	DialTimeout time.Duration
	// Profiles is the content of the operator's profiles file
	// (LOADPOOL_PROFILES); empty changes nothing.
	Profiles []byte
	// PowerTimeout bounds a power request (default
	// messages.DefaultPowerTimeout).
	PowerTimeout time.Duration
	// Dialers are control methods besides SSH, by name (e.g. "qga"); a
	// computer's enrolment picks one (control.Methods). Used when New is
	// given a nil Dialer.
	Dialers map[string]control.Dialer
	// Learn turns learned timeouts on (learned.go).
	Learn Learn
	// Clock is the wait helpers' time source (nil: real time).
	Clock  Clock
	Logger *slog.Logger
}

// Worker is an OS worker process for one module (one family).
type Worker struct {
	nc     *nats.Conn
	cfg    Config
	m      Module
	dialer control.Dialer
	ov     Overrides
	log    *slog.Logger
	rt     *stepworker.Runtime
	svc    *service.Service
}

// New checks cfg and builds a worker. A nil dialer means SSH with
// cfg.SSHUser and cfg.Signer.
func New(nc *nats.Conn, cfg Config, m Module, dialer control.Dialer) (*Worker, error) {
	if nc == nil || m == nil {
		return nil, errors.New("osworker: a NATS connection and a module are required")
	}
	if err := messages.ValidToken("family", m.Family()); err != nil {
		return nil, fmt.Errorf("osworker: module: %w", err)
	}
	if err := CheckModule(m); err != nil {
		return nil, err
	}
	ov, err := ParseOverrides(cfg.Profiles)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PowerTimeout <= 0 {
		cfg.PowerTimeout = messages.DefaultPowerTimeout
	}
	w := &Worker{nc: nc, cfg: cfg, m: m, dialer: dialer, ov: ov,
		log: cfg.Logger.With("family", m.Family())}
	rt, err := stepworker.New(nc, stepworker.Config{Subjects: cfg.Subjects, Step: messages.StepPostload, Pool: m.Family(), Logger: cfg.Logger, Settings: cfg.Settings}, w.Handle)
	if err != nil {
		return nil, err
	}
	w.rt = rt
	return w, nil
}

// Start builds the SSH dialer (when none was given) and starts taking
// requests. Host keys come with each request (the enrolment): the worker
// keeps no store of its own.
func (w *Worker) Start(ctx context.Context) error {
	if err := w.ensureDialer(); err != nil {
		return err
	}
	svc, err := service.New(w.nc, service.Config{
		Name: "loadpool-os-" + w.m.Family(), Version: "0.1.0",
		Description: "loadpool OS workers of family " + w.m.Family() + " (status endpoint)",
	})
	if err != nil {
		return fmt.Errorf("osworker: status service: %w", err)
	}
	if err := w.rt.AddStatusEndpoint(svc); err != nil {
		svc.Stop()
		return fmt.Errorf("osworker: status endpoint: %w", err)
	}
	if err := w.rt.Start(ctx); err != nil {
		svc.Stop()
		return err
	}
	w.svc = svc
	return nil
}

func (w *Worker) ensureDialer() error {
	if w.dialer != nil {
		return nil
	}
	if w.cfg.Signer == nil {
		return errors.New("osworker: no SSH private key: set LOADPOOL_SSH_KEY")
	}
	d, err := control.NewSSHDialer(control.SSHConfig{User: w.cfg.SSHUser, Signers: []ssh.Signer{w.cfg.Signer},
		Timeout: w.cfg.DialTimeout, Logger: w.cfg.Logger})
	methods := control.Methods{control.MethodSSH: d}
	for name, extra := range w.cfg.Dialers {
		methods[name] = extra
	}
	w.dialer = methods
	return err
}

// Running is the number of steps running in this process.
func (w *Worker) Running() int { return w.rt.Running() }

// Stop stops taking requests and lets running steps finish (see
// stepworker.Runtime.Stop). It is idempotent.
func (w *Worker) Stop() {
	if w.svc != nil {
		w.svc.Stop()
	}
	w.rt.Stop()
}

// Handle is the step handler: effective profile, Env, module.PostLoad.
// The profile goes into the result (Report.Profile), and so does the host
// key the step learned in a reload window (Report.LearnedHostKey), whatever
// the outcome: the coordinator decides what to keep. Handle stays on the
// stack while the module waits, so the step's state is built by newStep.
func (w *Worker) Handle(ctx context.Context, req messages.Request, p progress.Progress) (stepworker.Report, error) {
	st, err := w.newStep(req, p)
	if err != nil {
		return stepworker.Report{Reason: "bad-profile"}, err
	}
	detail, err := w.m.PostLoad(ctx, req, &st.env)
	return st.report(ctx, detail, err), err
}

// step is one post-load step's Env, effective profile and evidence, in one
// allocation.
type step struct {
	env  Env
	prof messages.WaitProfile
	ev   evidence
}

func (w *Worker) newStep(req messages.Request, p progress.Progress) (*step, error) {
	prof, err := EffectiveProfile(w.m, w.ov, req)
	if err != nil {
		return nil, err
	}
	if prof = w.cfg.Learn.raise(prof, req, time.Now()); prof.Raised != "" {
		p.Event("wait profile " + prof.Name + " " + prof.Raised)
	}
	st := &step{prof: prof}
	st.env = Env{Profile: prof, Progress: p, Dialer: w.dialer, Target: TargetOf(req),
		Clock: w.cfg.Clock, Logger: w.log.With("job", req.JobID, "attempt", req.Attempt)}
	st.env.PowerFn = st.ev.collect(req.JobID, NATSPower(w.nc, w.cfg.Subjects, req, w.cfg.PowerTimeout))
	return st, nil
}

func (st *step) report(ctx context.Context, detail string, err error) stepworker.Report {
	rep := stepworker.Report{Detail: detail, Profile: &st.prof, LearnedHostKey: LearnedKey(ctx, st.env.Target), Evidence: st.ev.names()}
	if err != nil {
		rep.Detail = err.Error() // the reason comes from err (outcome.Reason)
	}
	return rep
}
