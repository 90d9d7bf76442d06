package libvirt

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/loadpool/loadpool/libvirtd"
	"github.com/loadpool/loadpool/loaderworker"
)

// Provisioner loads images onto libvirt domains on this host.
type Provisioner struct {
	cfg Config
	lv  *libvirtd.Client
	log *slog.Logger
}

var _ loaderworker.Provisioner = (*Provisioner)(nil)

// New checks cfg and the images directory. It does not need libvirtd to
// be up yet (a load while it is down answers retry); it logs a warning
// when it is not.
func New(ctx context.Context, cfg Config) (*Provisioner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(cfg.Images); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("libvirt: LOADPOOL_LIBVIRT_IMAGES=%s is not a directory: create it with one subdirectory per image (make guest-image builds one)", cfg.Images)
	}
	lv, err := libvirtd.New(cfg.URI)
	if err != nil {
		return nil, fmt.Errorf("libvirt: LOADPOOL_LIBVIRT_URI: %v", err)
	}
	p := &Provisioner{cfg: cfg, lv: lv, log: cfg.Logger}
	var version uint64
	cctx, cancel := context.WithTimeout(ctx, libvirtd.DefaultConnectTimeout)
	defer cancel()
	err = lv.Do(cctx, func(l *golibvirt.Libvirt) (err error) { version, err = l.ConnectGetLibVersion(); return err })
	if err != nil {
		p.log.Warn("libvirtd is not answering yet: loads answer retry until it does", "uri", lv.URI(), "error", err)
	} else {
		p.log.Info("connected to libvirtd", "uri", lv.URI(), "libvirt", fmt.Sprintf("%d.%d.%d", version/1000000, version/1000%1000, version%1000),
			"domain_type", cfg.DomainType, "images", cfg.Images)
	}
	return p, nil
}

// call runs fn on a fresh connection, bounded by CallTimeout under ctx.
func (p *Provisioner) call(ctx context.Context, fn func(l *golibvirt.Libvirt) error) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	return p.lv.Do(ctx, fn)
}
