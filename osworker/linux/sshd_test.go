package linux_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab/sshd"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/loadpool/loadpool/osworker/linux"
	"golang.org/x/crypto/ssh"
)

type progress struct{ events []string }

func (p *progress) Event(m string) { p.events = append(p.events, m) }

// The module against Debian's real sshd and a real shell (hostname in a
// private UTS namespace, /etc a private copy); systemd's answer is the
// stand-in's "degraded" (no systemd runs here).
func TestRealSSHD(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t, sshd.Options{SystemState: "degraded"})
	d, err := control.NewSSHDialer(control.SSHConfig{Signers: []ssh.Signer{srv.Client()}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	req := messages.Request{JobID: "real-job", Attempt: 1, Step: messages.StepPostload,
		Computer: messages.Computer{Name: "real-vm-01", Provisioner: "lab", Type: messages.TypeLab, Address: srv.Addr()},
		Image:    messages.Image{Name: "debian 12 it's", OSFamily: "linux"}, Reloaded: true}
	p, err := osworker.EffectiveProfile(linux.Module{}, osworker.Overrides{}, req)
	if err != nil {
		t.Fatal(err)
	}
	p.InitialDelay, p.Poll = 0, messages.Duration(100*time.Millisecond)
	pr := &progress{}
	env := &osworker.Env{Profile: p, Progress: pr, Dialer: d, Target: osworker.TargetOf(req)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	detail, err := linux.Module{}.PostLoad(ctx, req, env)
	if err != nil {
		t.Fatalf("PostLoad: %v; events:\n%s", err, strings.Join(pr.events, "\n"))
	}
	if !strings.Contains(detail, "degraded") {
		t.Errorf("detail %q does not say degraded", detail)
	}
	if h, err := srv.Hostname(ctx); err != nil || h != "real-vm-01" {
		t.Errorf("hostname %q, %v", h, err)
	}
	if b, err := srv.ReadFile(linux.ImageFile); err != nil || string(b) != "debian 12 it's\n" {
		t.Errorf("%s = %q, %v", linux.ImageFile, b, err)
	}
	if b, err := srv.ReadFile("/etc/hostname"); err != nil || strings.TrimSpace(string(b)) != "real-vm-01" {
		t.Errorf("/etc/hostname = %q, %v", b, err)
	}
}
