package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kelseyhightower/envconfig"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/loaderworker/libvirt"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/loadpool/loadpool/osworker/control/qga"
)

// newLibvirt makes the libvirt provisioner from LOADPOOL_LIBVIRT_*.
func newLibvirt(ctx context.Context, log *slog.Logger) (loaderworker.Provisioner, int, error) {
	var env libvirt.Env
	if err := envconfig.Process("loadpool", &env); err != nil {
		return nil, 0, fmt.Errorf("configuration: %v", err)
	}
	cfg, err := env.Config(log)
	if err != nil {
		return nil, 0, err
	}
	p, err := libvirt.New(ctx, cfg)
	return p, 0, err
}

// otherControls are the OS workers' control methods besides SSH: the QEMU
// guest agent through libvirtd (LOADPOOL_LIBVIRT_URI). Dialing is lazy: a
// host without libvirtd only fails the computers enrolled with control
// "qga".
func otherControls(log *slog.Logger) map[string]control.Dialer {
	var env qga.Env
	_ = envconfig.Process("loadpool", &env)
	d, err := qga.New(qga.Config{URI: env.URI})
	if err != nil {
		log.Warn("no guest agent control: computers enrolled with control qga will fail", "error", err)
		return nil
	}
	return map[string]control.Dialer{messages.ControlQGA: d}
}
