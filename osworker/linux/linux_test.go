package linux_test

import (
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/osworker/modtest"
)

func fixture(sh func() devlab.Shell) modtest.Fixture {
	return modtest.Fixture{
		Module:       linux.Module{},
		NewShell:     sh,
		Image:        messages.Image{Name: "ubuntu-24.04-v2", OSFamily: "linux", OSVersion: "24.04"},
		ComputerType: messages.TypeVirtualMachine,
		Ready:        checkConfigured,
	}
}

func defaultShell() devlab.Shell {
	return &devlab.Linux{Starting: 200 * time.Millisecond, CloudInit: true, CloudInitFor: 300 * time.Millisecond}
}

func checkConfigured(t *testing.T, c *devlab.Computer, req messages.Request, res messages.Result) {
	t.Helper()
	st := c.Snapshot()
	if st.Hostname != req.Computer.Name {
		t.Errorf("hostname %q, want %q", st.Hostname, req.Computer.Name)
	}
	if got := st.Files[linux.ImageFile]; got != req.Image.Name+"\n" {
		t.Errorf("%s = %q, want %q", linux.ImageFile, got, req.Image.Name+"\n")
	}
}

func TestConformance(t *testing.T) {
	modtest.Run(t, fixture(defaultShell))
}

// The same module, unchanged, over the QEMU guest agent control.
func TestConformanceOverQGA(t *testing.T) {
	modtest.RunOver(t, fixture(defaultShell), modtest.MethodQGA)
}

func TestLinuxCases(t *testing.T) {
	tests := []struct {
		name    string
		shell   *devlab.Linux
		outcome messages.Outcome
		detail  []string
		cmds    []string
		noCmds  []string
	}{
		{name: "degraded is accepted", outcome: messages.OutcomeReady,
			shell:  &devlab.Linux{Starting: 100 * time.Millisecond, Failed: []string{"rsyslog.service", "nfs.mount"}},
			detail: []string{"degraded", "rsyslog.service", "nfs.mount"}, noCmds: []string{"cloud-init status"}},
		{name: "cloud-init waited for", outcome: messages.OutcomeReady,
			shell:  &devlab.Linux{CloudInit: true, CloudInitFor: 400 * time.Millisecond},
			detail: []string{"cloud-init done"}, cmds: []string{"cloud-init status --wait --format json"}},
		{name: "cloud-init error is retry", outcome: messages.OutcomeRetry,
			shell:  &devlab.Linux{CloudInit: true, CloudInitStatus: "error"},
			detail: []string{"cloud-init ended with an error"}},
		{name: "no hostnamectl: fallback", outcome: messages.OutcomeReady,
			shell: &devlab.Linux{NoHostnamectl: true},
			cmds:  []string{"hostname 'plain-01'", "printf '%s\\n' 'plain-01' > /etc/hostname"}},
		{name: "boot never finishes: retry after ready timeout", outcome: messages.OutcomeRetry,
			shell:  &devlab.Linux{Starting: time.Hour},
			detail: []string{"boot: not done within 3s", `last state "starting"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := modtest.NewHarness(t, fixture(nil), "")
			c := h.Computer("plain-01", devlab.Config{Shell: tc.shell, BootDelay: 20 * time.Millisecond})
			if err := c.Boot(h.F.Image.Name); err != nil {
				t.Fatal(err)
			}
			req := h.Request(c, "job-1", 1)
			res := h.PostLoad(req)
			h.Want(res, tc.outcome)
			for _, d := range tc.detail {
				if !strings.Contains(res.Detail, d) {
					t.Errorf("detail %q does not contain %q", res.Detail, d)
				}
			}
			cmds := commands(c)
			for _, w := range tc.cmds {
				if !strings.Contains(cmds, w+"\n") {
					t.Errorf("command %q not run; ran:\n%s", w, cmds)
				}
			}
			for _, w := range tc.noCmds {
				if strings.Contains(cmds, w) {
					t.Errorf("command %q run, should not be; ran:\n%s", w, cmds)
				}
			}
			if tc.outcome == messages.OutcomeReady {
				checkConfigured(t, c, req, res)
			}
		})
	}
}

func commands(c *devlab.Computer) string {
	var b strings.Builder
	for _, cmd := range c.Commands() {
		b.WriteString(cmd.Cmd + "\n")
	}
	return b.String()
}

func TestQuote(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"plain":     "'plain'",
		"it's":      `'it'\''s'`,
		"$(reboot)": "'$(reboot)'",
		"":          "''",
	}
	for in, want := range tests {
		if got := linux.Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConfigureIsIdempotent(t *testing.T) {
	t.Parallel()
	h := modtest.NewHarness(t, fixture(nil), "")
	c := h.Computer("again-01", devlab.Config{Shell: &devlab.Linux{}, BootDelay: 10 * time.Millisecond})
	if err := c.Boot(h.F.Image.Name); err != nil {
		t.Fatal(err)
	}
	h.Want(h.PostLoad(h.Request(c, "job-1", 1)), messages.OutcomeReady)
	req := h.Request(c, "job-1", 2)
	req.Reloaded = false
	h.Want(h.PostLoad(req), messages.OutcomeReady)
	cmds := commands(c)
	for _, w := range []string{"hostnamectl set-hostname", "> " + linux.ImageFile} {
		if n := strings.Count(cmds, w); n != 1 {
			t.Errorf("%q ran %d times over two post-loads, want once; ran:\n%s", w, n, cmds)
		}
	}
}
