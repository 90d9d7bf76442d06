package linux

import (
	"context"
	"fmt"
	"strings"

	"github.com/loadpool/loadpool/messages"
)

// configure sets the hostname and records the image, each only when it
// differs (idempotent: a redelivered step changes nothing twice).
func (s *session) configure(ctx context.Context, req messages.Request) error {
	if err := s.setHostname(ctx, req.Computer.Name); err != nil {
		return err
	}
	return s.recordImage(ctx, req.Image.Name)
}

func (s *session) setHostname(ctx context.Context, name string) error {
	if s.hostnameIs(ctx, name) {
		s.env.Event("hostname already %s", name)
		return nil
	}
	out, err := s.Run(ctx, "hostnamectl set-hostname "+Quote(name))
	if err != nil {
		return err
	}
	if !out.OK() {
		if err := s.hostnameFallback(ctx, name); err != nil {
			return err
		}
	}
	s.env.Event("hostname set to %s", name)
	return nil
}

// hostnameIs reports whether both the running and the persistent
// hostname are name.
func (s *session) hostnameIs(ctx context.Context, name string) bool {
	for _, cmd := range []string{"hostname", "cat /etc/hostname"} {
		out, err := s.Run(ctx, cmd)
		if err != nil || !out.OK() || strings.TrimSpace(string(out.Stdout)) != name {
			return false
		}
	}
	return true
}

// hostnameFallback is for images without hostnamectl.
func (s *session) hostnameFallback(ctx context.Context, name string) error {
	for _, cmd := range []string{
		"hostname " + Quote(name),
		"printf '%s\\n' " + Quote(name) + " > /etc/hostname",
	} {
		out, err := s.Run(ctx, cmd)
		if err != nil {
			return err
		}
		if !out.OK() {
			return fmt.Errorf("set hostname: %q exited %d: %s", cmd, out.Exit, strings.TrimSpace(string(out.Stderr)))
		}
	}
	return nil
}

func (s *session) recordImage(ctx context.Context, image string) error {
	out, err := s.Run(ctx, "cat "+ImageFile)
	if err != nil {
		return err
	}
	if out.OK() && strings.TrimSpace(string(out.Stdout)) == image {
		s.env.Event("image %s already recorded in %s", image, ImageFile)
		return nil
	}
	cmd := "printf '%s\\n' " + Quote(image) + " > " + ImageFile
	if out, err = s.Run(ctx, cmd); err != nil {
		return err
	}
	if !out.OK() {
		return fmt.Errorf("record the image: %q exited %d: %s", cmd, out.Exit, strings.TrimSpace(string(out.Stderr)))
	}
	s.env.Event("image %s recorded in %s", image, ImageFile)
	return nil
}
