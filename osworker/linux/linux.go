package linux

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
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

// PostLoad implements osworker.Module. It stays on the stack while the
// computer boots (in each of the thousands of waits a worker may hold), so
// what comes after the answer is in ready.
func (Module) PostLoad(ctx context.Context, req messages.Request, env *osworker.Env) (string, error) {
	sess, err := osworker.Open(ctx, env, req)
	if err != nil {
		return "", err
	}
	s := &session{Session: sess, env: env}
	defer s.Close()
	return s.ready(ctx, &req)
}

// ready waits until Linux has booted (and cloud-init is done), then
// configures it.
func (s *session) ready(ctx context.Context, req *messages.Request) (string, error) {
	boot, err := s.waitBoot(ctx)
	if err != nil {
		return "", err
	}
	ci, err := s.waitCloudInit(ctx)
	if err != nil {
		return "", err
	}
	if err := s.configure(ctx, *req); err != nil {
		return "", err
	}
	parts := []string{"ready: " + boot}
	if ci != "" {
		parts = append(parts, ci)
	}
	parts = append(parts, fmt.Sprintf("hostname %s, image %s recorded", req.Computer.Name, req.Image.Name))
	return strings.Join(parts, "; "), nil
}

// session is the step's connection (redialled when the computer drops
// it during boot) and its Env.
type session struct {
	*osworker.Session
	env *osworker.Env
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
