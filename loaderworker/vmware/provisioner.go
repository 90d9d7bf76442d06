package vmware

import (
	"context"
	"log/slog"
	"sync"

	"github.com/vmware/govmomi"

	"github.com/loadpool/loadpool/loaderworker"
)

// Provisioner loads images onto vSphere virtual machines through one
// vCenter session shared by every job of the process.
type Provisioner struct {
	cfg    Config
	log    *slog.Logger
	client *govmomi.Client
	rt     *relogin

	mu  sync.Mutex
	inv *inventory // resolved once; dropped when an object in it vanished
}

var _ loaderworker.Provisioner = (*Provisioner)(nil)

// New checks cfg, logs in to vCenter and resolves the configured
// datacenter, folder, resource pool and datastore. Its error is wrapped
// with outcome.Permanent when starting again will not help (bad
// credentials, a setting that names nothing), and says which setting to
// fix.
func New(ctx context.Context, cfg Config) (*Provisioner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	gc, rt, err := connect(ctx, cfg)
	if err != nil {
		return nil, classify(err, cfg.User)
	}
	p := &Provisioner{cfg: cfg, log: cfg.Logger, client: gc, rt: rt}
	if _, err := p.inventory(ctx); err != nil {
		p.Close(ctx)
		return nil, classify(err, cfg.User)
	}
	p.log.Info("connected to vSphere", "url", redactURL(cfg.URL), "user", cfg.User, "strategy", cfg.Strategy)
	return p, nil
}

// Close logs the session out. The Provisioner must not be used after.
func (p *Provisioner) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	return p.client.Logout(ctx)
}

// Relogins reports how many times the session had to be renewed because
// vCenter dropped it.
func (p *Provisioner) Relogins() int { return p.rt.Logins() }
