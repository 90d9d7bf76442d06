package linux

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/control"
)

// Family is the OS family this module serves.
const Family = "linux"

// ImageFile is where the loaded image's name is recorded.
const ImageFile = "/etc/loadpool-image"

// Module is the Linux OS module.
type Module struct{}

var _ osworker.Module = Module{}

// Family implements osworker.Module.
func (Module) Family() string { return Family }

// Profile implements osworker.Module: the built-in Linux row.
func (Module) Profile(req messages.Request) messages.WaitProfile {
	return osworker.DefaultProfile(Family, req.Image.OSVersion, req.Computer.Type, req.Image.Sysprep)
}

// PostLoad implements osworker.Module.
func (Module) PostLoad(ctx context.Context, req messages.Request, env *osworker.Env) (string, error) {
	conn, err := osworker.WaitForAnswer(ctx, env, req)
	if err != nil {
		return "", err
	}
	s := &session{env: env, conn: conn}
	defer func() { s.conn.Close() }()
	boot, err := s.waitBoot(ctx)
	if err != nil {
		return "", err
	}
	ci, err := s.waitCloudInit(ctx)
	if err != nil {
		return "", err
	}
	if err := s.configure(ctx, req); err != nil {
		return "", err
	}
	parts := []string{"ready: " + boot}
	if ci != "" {
		parts = append(parts, ci)
	}
	parts = append(parts, fmt.Sprintf("hostname %s, image %s recorded", req.Computer.Name, req.Image.Name))
	return strings.Join(parts, "; "), nil
}

// session holds the connection and redials it when the computer drops it
// (a reboot during boot).
type session struct {
	env  *osworker.Env
	conn control.Conn
}

// run runs cmd; a broken connection is redialled once.
func (s *session) run(ctx context.Context, cmd string) (control.Output, error) {
	out, err := s.conn.Run(ctx, cmd)
	if err == nil || !errors.Is(err, control.ErrNotAnswering) || ctx.Err() != nil {
		return out, err
	}
	c, derr := s.env.Dial(ctx)
	if derr != nil {
		return out, derr
	}
	s.conn.Close()
	s.conn = c
	return s.conn.Run(ctx, cmd)
}

// Quote single-quotes v for a POSIX shell.
func Quote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// waitSeconds is the `timeout` bound of one blocking check: one poll
// interval, at least a tenth of a second.
func waitSeconds(p messages.WaitProfile) string {
	d := max(p.Poll.D(), 100*time.Millisecond)
	return fmt.Sprintf("%.1f", d.Seconds())
}
