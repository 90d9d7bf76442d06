package windows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/modtest"
	"github.com/loadpool/loadpool/osworker/windows"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"))
}

var win7 = messages.Image{Name: "win7-sp1 lab", OSFamily: "windows", OSVersion: "7", Sysprep: true}

// fixture is a Windows 7 Sysprep image whose setup runs setupFor after
// SSH answers.
func fixture(w func() *devlab.Windows, img messages.Image) modtest.Fixture {
	return modtest.Fixture{
		Module: windows.Module{}, Image: img, ComputerType: messages.TypeBlade,
		NewShell: func() devlab.Shell { return w() },
		Ready:    configured,
	}
}

func win7Shell() *devlab.Windows {
	return &devlab.Windows{Version: "7", Sysprep: true, SetupFor: 300 * time.Millisecond}
}

// configured checks the effects of a ready post-load on the computer.
func configured(t *testing.T, c *devlab.Computer, req messages.Request, res messages.Result) {
	t.Helper()
	st := c.Snapshot()
	want := map[[2]string]string{
		{windows.SetupKey, "SystemSetupInProgress"}:                          "0x0",
		{windows.TSKey, "fDenyTSConnections"}:                                "0x0",
		{windows.ServerKey, "srvcomment"}:                                    windows.Description(req.Image.Name),
		{`HKLM\SYSTEM\CurrentControlSet\Services\` + sshService(c), "Start"}: "0x2",
	}
	for kv, w := range want {
		if _, got, _ := devlab.WindowsRegValue(st, kv[0], kv[1]); got != w {
			t.Errorf("%s\\%s = %q, want %q", kv[0], kv[1], got, w)
		}
	}
	if _, ok := devlab.WindowsFirewallRule(st, windows.RDPRuleName); !ok {
		t.Errorf("no firewall rule %s", windows.RDPRuleName)
	}
	for _, cmd := range c.Commands() {
		if cmd.Exit == 255 {
			t.Errorf("the computer refused %q: not a simple cmd.exe command (quoting broke)", cmd.Cmd)
		}
	}
	if !strings.HasPrefix(res.Detail, "ready: setup finished") {
		t.Errorf("detail %q", res.Detail)
	}
}

func sshService(c *devlab.Computer) string {
	for _, cmd := range c.Commands() {
		if cmd.Cmd == "sc query cygsshd" && cmd.Exit == 0 {
			return "cygsshd"
		}
	}
	return "sshd"
}

func TestConformance(t *testing.T) {
	modtest.Run(t, fixture(win7Shell, win7))
}

func TestConformanceXP(t *testing.T) {
	xp := messages.Image{Name: "xp-sp3", OSFamily: "windows", OSVersion: "xp", Sysprep: true}
	modtest.Run(t, fixture(func() *devlab.Windows {
		return &devlab.Windows{Version: "xp", Sysprep: true, SetupFor: 300 * time.Millisecond}
	}, xp))
}
