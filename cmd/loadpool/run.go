package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/loaderworker/xcat"
	"github.com/nats-io/nats.go"
)

// stopper is a started part of the system.
type stopper interface{ Stop() }

// stack is the parts one process runs, stopped in reverse order.
type stack struct{ parts []stopper }

func (s *stack) add(p stopper) { s.parts = append(s.parts, p) }

func (s *stack) Stop() {
	for _, p := range slices.Backward(s.parts) {
		p.Stop()
	}
}

// setup reads the configuration and makes the logger.
func setup() (Config, *slog.Logger, error) {
	cfg, err := loadConfig()
	if err != nil {
		return cfg, nil, err
	}
	log, err := newLogger(cfg)
	if err != nil {
		return cfg, nil, err
	}
	slog.SetDefault(log)
	return cfg, log, nil
}

func startCoordinator(ctx context.Context, cfg Config, log *slog.Logger, nc *nats.Conn) (*coordinator.Coordinator, error) {
	c, err := coordinator.New(nc, coordinator.Config{Subjects: cfg.subjects(), StepCap: cfg.StepCap, JobRetention: cfg.JobRetention, Evidence: cfg.Evidence, Durations: cfg.Durations, Logger: log.With("role", "coordinator"), Settings: cfg.Config,
		PoolMaxAckPending: poolLimits(cfg)})
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// poolLimits are the per-pool limits the coordinator applies: xCAT's
// built-in 10 unless LOADPOOL_MAX_ACK_PENDING sets every pool's, then
// LOADPOOL_POOL_MAX_ACK_PENDING's, which win over both.
func poolLimits(cfg Config) map[string]int {
	m := map[string]int{}
	if cfg.MaxAckPending == 0 {
		m[cfg.subjects().LoaderConsumer(xcat.Name)] = xcat.DefaultMaxAckPending
	}
	maps.Copy(m, cfg.PoolMaxAckPending)
	return m
}

// startLoader starts a loader worker for provisioner name.
func startLoader(ctx context.Context, cfg Config, log *slog.Logger, nc *nats.Conn, name string) (stopper, error) {
	prov, pending, err := newProvisioner(ctx, cfg, log, name)
	if err != nil {
		return nil, err
	}
	settings := cfg.Config
	if settings.MaxAckPending == 0 {
		settings.MaxAckPending = pending // the provisioner's own default
	}
	w, err := loaderworker.New(nc, loaderworker.Config{Subjects: cfg.subjects(), Name: name, Evidence: cfg.Evidence, UpdateConsumer: cfg.MaxAckPending > 0, Logger: log.With("role", "loader"), Settings: settings}, prov)
	if err != nil {
		return nil, err
	}
	if err := w.Start(ctx); err != nil {
		return nil, err
	}
	if c, ok := prov.(closer); ok {
		return stopThenClose{w, c}, nil
	}
	return w, nil
}

// closer is a provisioner that holds a session (vmware logs out).
type closer interface {
	Close(ctx context.Context) error
}

// stopThenClose stops the worker, then ends the provisioner's session.
type stopThenClose struct {
	w stopper
	c closer
}

func (s stopThenClose) Stop() {
	s.w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.c.Close(ctx)
}

// startPools starts the coordinator (when asked), then every loader and OS
// pool named.
func startPools(ctx context.Context, cfg Config, log *slog.Logger, nc *nats.Conn, withCoordinator bool, loaders, families []string) (*stack, error) {
	st := &stack{}
	fail := func(err error) (*stack, error) { st.Stop(); return nil, err }
	if withCoordinator {
		c, err := startCoordinator(ctx, cfg, log, nc)
		if err != nil {
			return fail(fmt.Errorf("coordinator: %w", err))
		}
		st.add(c)
	}
	for _, name := range loaders {
		w, err := startLoader(ctx, cfg, log, nc, name)
		if err != nil {
			return fail(fmt.Errorf("loader %s: %w", name, err))
		}
		st.add(w)
	}
	for _, fam := range families {
		w, err := startOS(ctx, cfg, log, nc, fam)
		if err != nil {
			return fail(fmt.Errorf("os %s: %w", fam, err))
		}
		st.add(w)
	}
	return st, nil
}

// serve runs the given pools until ctx ends.
func serve(ctx context.Context, name string, embed, withCoordinator bool, loaders, families []string) error {
	cfg, log, err := setup()
	if err != nil {
		return err
	}
	cfg.observeDefaults(name)
	cn, err := connect(cfg, log, name, embed)
	if err != nil {
		return err
	}
	defer cn.Close()
	st, err := startPools(ctx, cfg, log, cn.nc, withCoordinator, loaders, families)
	if err != nil {
		return err
	}
	obs, err := startObservers(ctx, cfg, log, cn.nc, withCoordinator)
	if err != nil {
		st.Stop()
		return err
	}
	st.add(obs)
	obs.print(os.Stdout)
	log.Info("serving; stop with Ctrl-C", "nats", cn.url, "loaders", loaders, "os_families", families, "coordinator", withCoordinator)
	<-ctx.Done()
	log.Info("stopping")
	st.Stop()
	return nil
}

func runAll(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "all", "", "Run an embedded NATS server (unless LOADPOOL_NATS_URL is set), a coordinator, and the\nloader and OS pools named by LOADPOOL_LOADERS and LOADPOOL_OS_FAMILIES, in one process.")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return serve(ctx, "all", true, true, cfg.Loaders, cfg.OSFamilies)
}

func runCoordinator(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "coordinator", "", "Run a coordinator. Any number can run side by side against one NATS.")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	return serve(ctx, "coordinator", false, true, nil, nil)
}

func runLoader(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "loader", "--provisioner NAME", "Run a loader worker of one provisioner: lab, vmware, xcat or libvirt.")
	name := fs.String("provisioner", "", "provisioner this worker serves (lab, vmware, xcat, libvirt)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("%w: --provisioner is required (lab, vmware, xcat or libvirt)", errUsage)
	}
	return serve(ctx, "loader", false, false, []string{*name}, nil)
}

func runOS(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "os", "--family NAME", "Run an OS worker of one OS family: linux or windows.")
	fam := fs.String("family", "", "OS family this worker serves (linux, windows)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *fam == "" {
		return fmt.Errorf("%w: --family is required (linux or windows)", errUsage)
	}
	return serve(ctx, "os", false, false, nil, []string{*fam})
}

var errUnknownPool = errors.New("unknown pool")
