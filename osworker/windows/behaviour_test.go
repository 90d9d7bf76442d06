package windows_test

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/modtest"
	"github.com/loadpool/loadpool/osworker/windows"
)

// run boots a computer with shell w, posts one post-load and returns the
// harness, computer and result.
func run(t *testing.T, w *devlab.Windows, img messages.Image) (*modtest.Harness, *devlab.Computer, messages.Request, messages.Result) {
	t.Helper()
	h := modtest.NewHarness(t, fixture(func() *devlab.Windows { return w }, img), "")
	c := h.Computer("win-01", devlab.Config{Shell: w, Banner: devlab.WindowsBanner, BootDelay: 50 * time.Millisecond})
	if err := c.Boot(img.Name); err != nil {
		t.Fatal(err)
	}
	req := h.Request(c, "job-1", 1)
	return h, c, req, h.PostLoad(req)
}

func eventsOf(h *modtest.Harness, job string) []string {
	var out []string
	for _, e := range h.Events(job) {
		out = append(out, e.Message)
	}
	return out
}

func TestSetupStillRunningWaitsThenReady(t *testing.T) {
	t.Parallel()
	h, c, req, res := run(t, &devlab.Windows{Version: "7", Sysprep: true, SetupFor: 600 * time.Millisecond}, win7)
	h.Want(res, messages.OutcomeReady)
	configured(t, c, req, res)
	ev := strings.Join(eventsOf(h, "job-1"), "\n")
	// The module saw setup running, in both phases, before it finished.
	for _, w := range []string{
		"setup: ImageState=IMAGE_STATE_UNDEPLOYABLE SystemSetupInProgress=1 OOBEInProgress=1",
		"setup: ImageState=IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE SystemSetupInProgress=1 OOBEInProgress=1",
		"Windows setup finished: ImageState=IMAGE_STATE_COMPLETE SystemSetupInProgress=0 OOBEInProgress=0",
	} {
		if !strings.Contains(ev, w) {
			t.Errorf("no event %q in:\n%s", w, ev)
		}
	}
	// Setup is checked before anything is configured.
	cmds := c.Commands()
	firstWrite := slices.IndexFunc(cmds, func(c devlab.Command) bool { return isWrite(c.Cmd) })
	lastRead := slices.IndexFunc(cmds, func(c devlab.Command) bool { return strings.Contains(c.Cmd, "ImageState") })
	if firstWrite < lastRead {
		t.Errorf("configured (%q) before reading ImageState", cmds[firstWrite].Cmd)
	}
}

func TestSetupStuckUndeployableIsRetry(t *testing.T) {
	t.Parallel()
	h, c, _, res := run(t, &devlab.Windows{Version: "7", Sysprep: true, SetupFor: 100 * time.Millisecond, Stuck: true}, win7)
	h.Want(res, messages.OutcomeRetry)
	if res.Reason != "setup-failed" || !strings.Contains(res.Detail, "IMAGE_STATE_UNDEPLOYABLE SystemSetupInProgress=0") {
		t.Errorf("reason %q detail %q", res.Reason, res.Detail)
	}
	for _, cmd := range c.Commands() {
		if isWrite(cmd.Cmd) {
			t.Errorf("a computer whose setup failed was configured: %q", cmd.Cmd)
		}
	}
}

func TestXPRegistryFormat(t *testing.T) {
	t.Parallel()
	xp := messages.Image{Name: "w2k3-r2", OSFamily: "windows", OSVersion: "2003", Sysprep: true}
	h, c, req, res := run(t, &devlab.Windows{Version: "2003", Sysprep: true, SetupFor: 300 * time.Millisecond, SSHService: "cygsshd"}, xp)
	h.Want(res, messages.OutcomeReady)
	configured(t, c, req, res)
	ev := strings.Join(eventsOf(h, "job-1"), "\n")
	for _, w := range []string{"setup: SystemSetupInProgress=1 MiniSetupInProgress=1",
		"Windows setup finished: SystemSetupInProgress=0 MiniSetupInProgress=absent", "SSH service cygsshd starts automatically (changed)"} {
		if !strings.Contains(ev, w) {
			t.Errorf("no event %q in:\n%s", w, ev)
		}
	}
	for _, cmd := range c.Commands() {
		if strings.Contains(cmd.Cmd, "ImageState") || strings.Contains(cmd.Cmd, "advfirewall") {
			t.Errorf("XP/2003 was asked a Vista+ question: %q", cmd.Cmd)
		}
	}
}

func TestAccessDeniedIsFail(t *testing.T) {
	t.Parallel()
	h, _, _, res := run(t, &devlab.Windows{Version: "7", DenyWrites: true}, messages.Image{Name: "win7", OSFamily: "windows", OSVersion: "7"})
	h.Want(res, messages.OutcomeFail)
	if res.Reason != "access-denied" || !strings.Contains(res.Detail, "Access is denied") || !strings.Contains(res.Detail, "administrator") {
		t.Errorf("reason %q detail %q", res.Reason, res.Detail)
	}
}

// isWrite: a command that changes the computer.
func isWrite(cmd string) bool {
	for _, w := range []string{"reg add", "sc config", "netsh advfirewall firewall add", "netsh firewall set", "net config server /srvcomment"} {
		if strings.HasPrefix(cmd, w) {
			return true
		}
	}
	return false
}

func TestConfigurationIdempotent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		w    *devlab.Windows
		img  messages.Image
	}{
		{"vista+ with a hostile image name", &devlab.Windows{Version: "7"},
			messages.Image{Name: `win7 "lab" & del %WINDIR% 100%`, OSFamily: "windows", OSVersion: "7"}},
		{"xp with cygsshd", &devlab.Windows{Version: "xp", SSHService: "cygsshd"},
			messages.Image{Name: "xp sp3", OSFamily: "windows", OSVersion: "xp"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, c, req, res := run(t, tc.w, tc.img)
			h.Want(res, messages.OutcomeReady)
			configured(t, c, req, res)
			first, n := c.Snapshot().Files, len(c.Commands())
			writes := 0
			for _, cmd := range c.Commands() {
				if isWrite(cmd.Cmd) {
					writes++
				}
			}
			if writes != 4 {
				t.Errorf("first run made %d changes, want 4", writes)
			}
			req.Attempt = 2 // a redelivery or the next attempt, same computer
			req.Reloaded = false
			res = h.PostLoad(req)
			h.Want(res, messages.OutcomeReady)
			for _, cmd := range c.Commands()[n:] {
				if isWrite(cmd.Cmd) {
					t.Errorf("second run changed something: %q", cmd.Cmd)
				}
			}
			if !maps.Equal(first, c.Snapshot().Files) {
				t.Error("second run changed the computer's state")
			}
			ev := strings.Join(eventsOf(h, req.JobID), "\n")
			if strings.Count(ev, " already") != 4 {
				t.Errorf("want 4 \"already\" events on the second run:\n%s", ev)
			}
		})
	}
}

// rebootOnce is Windows setup rebooting the computer between its passes:
// at the first command after the registry said specialize was done (so
// the module has seen that answer), it power-cycles.
type rebootOnce struct {
	*devlab.Windows
	c     *devlab.Computer
	armed bool
	once  sync.Once
	done  chan struct{}
}

func (r *rebootOnce) Exec(cmd string, st *devlab.State) devlab.Reply {
	if r.armed {
		// Exec runs under the computer's lock: reset once it is released.
		r.once.Do(func() { go func() { _ = r.c.Reset(); close(r.done) }() })
	}
	rep := r.Windows.Exec(cmd, st)
	if strings.Contains(rep.Stdout, "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE") {
		r.armed = true
	}
	return rep
}

func TestSetupRebootsBetweenPasses(t *testing.T) {
	t.Parallel()
	w := &rebootOnce{Windows: &devlab.Windows{Version: "7", Sysprep: true, SetupFor: 400 * time.Millisecond}, done: make(chan struct{})}
	h := modtest.NewHarness(t, fixture(func() *devlab.Windows { return w.Windows }, win7), "")
	w.c = h.Computer("win-reboot", devlab.Config{Shell: w, BootDelay: 100 * time.Millisecond})
	if err := w.c.Boot(win7.Name); err != nil {
		t.Fatal(err)
	}
	req := h.Request(w.c, "job-reboot", 1)
	res := h.PostLoad(req)
	h.Want(res, messages.OutcomeReady)
	<-w.done
	configured(t, w.c, req, res)
	if b := w.c.Snapshot().Boots; b != 2 {
		t.Errorf("%d boots, want 2 (load and setup's own reboot)", b)
	}
	// After the reboot the module read setup again from the start.
	var seen []string
	for _, e := range eventsOf(h, "job-reboot") {
		if strings.HasPrefix(e, "setup: ") {
			seen = append(seen, strings.Fields(e)[1])
		}
	}
	// A poll may also catch IMAGE_STATE_COMPLETE while OOBE still runs (the
	// values are read one at a time): a last progress event, not a pass.
	got := strings.TrimSuffix(strings.Join(seen, " "), " ImageState=IMAGE_STATE_COMPLETE")
	if got != "ImageState=IMAGE_STATE_UNDEPLOYABLE ImageState=IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE ImageState=IMAGE_STATE_UNDEPLOYABLE ImageState=IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE" {
		t.Errorf("setup states seen: %v, want both passes twice", seen)
	}
}

// The XP/2003 row answers retry without a power reset (VCL's Version_5);
// the operator's file keeps that while shrinking the budget.
func TestXPNeverAnswersRetriesWithoutReset(t *testing.T) {
	t.Parallel()
	if p := windows.Profile("xp", messages.TypeBlade, true); p.OnTimeout != messages.OnTimeoutRetry {
		t.Fatalf("built-in XP row: on_timeout %q, want retry", p.OnTimeout)
	}
	xp := messages.Image{Name: "xp-sp3", OSFamily: "windows", OSVersion: "xp", Sysprep: true}
	profiles := `[{"family": "windows", "set": ` + modtest.TinyProfile + `},
	  {"family": "windows", "version": "xp", "set": {"on_timeout": "retry"}}]`
	h := modtest.NewHarness(t, fixture(func() *devlab.Windows { return &devlab.Windows{Version: "xp"} }, xp), profiles)
	c := h.Computer("xp-dead", devlab.Config{})
	c.NeverAnswer(true)
	if err := c.Boot(xp.Name); err != nil {
		t.Fatal(err)
	}
	res := h.PostLoad(h.Request(c, "job-xp", 1))
	h.Want(res, messages.OutcomeRetry)
	if res.Reason != "timeout" || strings.Contains(res.Detail, "power reset") {
		t.Errorf("reason %q detail %q: want a timeout without a power reset", res.Reason, res.Detail)
	}
	if b := c.Snapshot().Boots; b != 1 {
		t.Errorf("%d boots, want 1 (no power reset on XP/2003)", b)
	}
}

// torn answers the first SystemSetupInProgress read with 0 while setup
// still runs: a read that straddles setup's update of its values.
type torn struct {
	*devlab.Windows
	once sync.Once
}

func (w *torn) Exec(cmd string, st *devlab.State) devlab.Reply {
	rep := w.Windows.Exec(cmd, st)
	if strings.HasSuffix(cmd, "/v SystemSetupInProgress") && strings.Contains(rep.Stdout, "0x1") {
		w.once.Do(func() { rep.Stdout = strings.Replace(rep.Stdout, "0x1", "0x0", 1) })
	}
	return rep
}

func TestOneTornReadIsNotAFailedSetup(t *testing.T) {
	t.Parallel()
	w := &torn{Windows: &devlab.Windows{Version: "7", Sysprep: true, SetupFor: 300 * time.Millisecond}}
	h := modtest.NewHarness(t, fixture(func() *devlab.Windows { return w.Windows }, win7), "")
	c := h.Computer("win-torn", devlab.Config{Shell: w, BootDelay: 50 * time.Millisecond})
	if err := c.Boot(win7.Name); err != nil {
		t.Fatal(err)
	}
	res := h.PostLoad(h.Request(c, "job-torn", 1))
	h.Want(res, messages.OutcomeReady)
	ev := strings.Join(eventsOf(h, "job-torn"), "\n")
	if !strings.Contains(ev, "setup: ImageState=IMAGE_STATE_UNDEPLOYABLE SystemSetupInProgress=0") {
		t.Errorf("the torn read was not seen:\n%s", ev)
	}
}
