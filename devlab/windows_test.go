package devlab

import (
	"strings"
	"testing"
	"time"
)

// booted is a State after a reimage with w, SSH up since ago.
func booted(w *Windows, ago time.Duration) *State {
	st := &State{Name: "win-1", Files: map[string]string{}, Data: map[string]any{}}
	w.OnBoot(st, true)
	st.Up = time.Now().Add(-ago)
	return st
}

func TestWindowsRegQueryFormats(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		w    *Windows
		cmd  string
		want Reply
	}{
		{"vista ImageState", &Windows{Version: "7"}, `reg query "HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State" /v ImageState`,
			Reply{Stdout: "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State\r\n    ImageState    REG_SZ    IMAGE_STATE_COMPLETE\r\n\r\n"}},
		{"vista dword", &Windows{Version: "7"}, `reg query HKLM\SYSTEM\Setup /v SystemSetupInProgress`,
			Reply{Stdout: "\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\Setup\r\n    SystemSetupInProgress    REG_DWORD    0x0\r\n\r\n"}},
		{"vista missing", &Windows{Version: "7"}, `reg query HKLM\SYSTEM\Setup /v MiniSetupInProgress`,
			Reply{Stderr: "ERROR: The system was unable to find the specified registry key or value.\r\n", Exit: 1}},
		{"xp dword", &Windows{Version: "xp"}, `reg query "HKLM\SYSTEM\Setup" /v SystemSetupInProgress`,
			Reply{Stdout: "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\Setup\r\n    SystemSetupInProgress\tREG_DWORD\t0x0\r\n\r\n"}},
		{"xp no ImageState", &Windows{Version: "2003"}, `reg query "HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State" /v ImageState`,
			Reply{Stderr: regNotFoundXP, Exit: 1}},
		{"bad hive", &Windows{Version: "7"}, `reg query HKXX\Foo /v x`,
			Reply{Stderr: "ERROR: Invalid key name.\r\nType \"REG QUERY /?\" for usage.\r\n", Exit: 1}},
		{"echo", &Windows{Version: "7"}, `echo loadpool`, Reply{Stdout: "loadpool\r\n"}},
		{"echo var", &Windows{Version: "7"}, `echo %COMSPEC%`, Reply{Stdout: "C:\\Windows\\system32\\cmd.exe\r\n"}},
		{"chaining refused", &Windows{Version: "7"}, `echo a & calc`,
			Reply{Stderr: "devlab: cmd.exe metacharacter '&' outside quotes at byte 7: a second command or a redirection\r\n", Exit: 255}},
		{"unknown", &Windows{Version: "7"}, `bogus`,
			Reply{Stderr: "'bogus' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", Exit: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := c.w.Exec(c.cmd, booted(c.w, time.Hour))
			if got != c.want {
				t.Errorf("Exec(%s)\n got %+v\nwant %+v", c.cmd, got, c.want)
			}
		})
	}
}

func TestWindowsSysprepTimeline(t *testing.T) {
	t.Parallel()
	q := func(w *Windows, st *State, key, name string) string {
		r := w.Exec(`reg query "`+key+`" /v `+name, st)
		if r.Exit != 0 {
			return "absent"
		}
		f := strings.Fields(r.Stdout)
		return f[len(f)-1]
	}
	const setup = time.Minute
	cases := []struct {
		name              string
		w                 Windows
		up                time.Duration
		image, sys, other string
	}{
		{"specialize", Windows{Version: "7", Sysprep: true, SetupFor: setup}, 0, "IMAGE_STATE_UNDEPLOYABLE", "0x1", "0x1"},
		{"oobe", Windows{Version: "7", Sysprep: true, SetupFor: setup}, 40 * time.Second, "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE", "0x1", "0x1"},
		{"complete", Windows{Version: "7", Sysprep: true, SetupFor: setup}, 2 * setup, "IMAGE_STATE_COMPLETE", "0x0", "0x0"},
		{"stuck", Windows{Version: "7", Sysprep: true, SetupFor: setup, Stuck: true}, 2 * setup, "IMAGE_STATE_UNDEPLOYABLE", "0x0", "0x1"},
		{"not sysprep", Windows{Version: "2008"}, 0, "IMAGE_STATE_COMPLETE", "0x0", "0x0"},
		{"xp mini-setup", Windows{Version: "xp", Sysprep: true, SetupFor: setup}, 0, "absent", "0x1", "0x1"},
		{"xp done", Windows{Version: "5.2", Sysprep: true, SetupFor: setup}, 2 * setup, "absent", "0x0", "absent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := booted(&c.w, c.up)
			other := "OOBEInProgress"
			if c.w.Legacy() {
				other = "MiniSetupInProgress"
			}
			got := []string{q(&c.w, st, winStateKey, "ImageState"), q(&c.w, st, winSetupKey, "SystemSetupInProgress"), q(&c.w, st, winSetupKey, other)}
			want := []string{c.image, c.sys, c.other}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestWindowsResetKeepsFinishedSetup(t *testing.T) {
	t.Parallel()
	w := &Windows{Version: "7", Sysprep: true, SetupFor: time.Minute}
	st := booted(w, 2*time.Minute)
	w.Exec("ver", st) // setup ends here
	w.OnBoot(st, false)
	st.Up = time.Now()
	if _, data, _ := WindowsRegValue(*st, winStateKey, "ImageState"); data != "IMAGE_STATE_COMPLETE" {
		t.Fatalf("after a reset of a finished setup ImageState = %s", data)
	}
	w2 := &Windows{Version: "7", Sysprep: true, SetupFor: time.Minute}
	st2 := booted(w2, 10*time.Second)
	w2.OnBoot(st2, false)
	st2.Up = time.Now()
	if _, data, _ := WindowsRegValue(*st2, winStateKey, "ImageState"); data != "IMAGE_STATE_UNDEPLOYABLE" {
		t.Fatalf("a reset during setup should restart it, ImageState = %s", data)
	}
}

func TestWindowsChangesPersistAndDenied(t *testing.T) {
	t.Parallel()
	steps := []struct {
		cmd, out string
		exit     int
	}{
		{`sc query sshd`, "", 0},
		{`sc query cygsshd`, scNoService, 1060},
		{`sc config sshd start= auto`, "[SC] ChangeServiceConfig SUCCESS\r\n", 0},
		{`reg add "HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server" /v fDenyTSConnections /t REG_DWORD /d 0 /f`, regOK, 0},
		{`netsh advfirewall firewall show rule name="loadpool RDP"`, "No rules match the specified criteria.\r\n", 1},
		{`netsh advfirewall firewall add rule name="loadpool RDP" dir=in action=allow protocol=TCP localport=3389 remoteip=localsubnet`, "Ok.\r\n\r\n", 0},
		{`netsh advfirewall firewall show rule name="loadpool RDP"`, "", 0},
		{`net config server /srvcomment:"win 7 (lab)"`, "The command completed successfully.\r\n\r\n", 0},
	}
	w := &Windows{Version: "7"}
	st := booted(w, time.Hour)
	for _, s := range steps {
		r := w.Exec(s.cmd, st)
		if r.Exit != s.exit || s.out != "" && r.Stdout != s.out {
			t.Fatalf("%s: got exit %d %q %q, want exit %d %q", s.cmd, r.Exit, r.Stdout, r.Stderr, s.exit, s.out)
		}
	}
	checks := map[string]string{"Start": "0x2", "fDenyTSConnections": "0x0", "srvcomment": "win 7 (lab)"}
	keys := map[string]string{"Start": winServiceKey + "sshd", "fDenyTSConnections": winTSKey, "srvcomment": winServerKey}
	for name, want := range checks {
		if _, got, _ := WindowsRegValue(*st, keys[name], name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if r, ok := WindowsFirewallRule(*st, "loadpool RDP"); !ok || !strings.Contains(r, "localport=3389") {
		t.Errorf("rule = %q, %v", r, ok)
	}
	if r := w.Exec(`sc qc sshd`, st); !strings.Contains(r.Stdout, "START_TYPE         : 2   AUTO_START") {
		t.Errorf("sc qc: %q", r.Stdout)
	}

	d := &Windows{Version: "7", DenyWrites: true}
	st = booted(d, time.Hour)
	for _, cmd := range []string{steps[2].cmd, steps[3].cmd, steps[5].cmd, steps[7].cmd} {
		r := d.Exec(cmd, st)
		if r.Exit == 0 || !strings.Contains(r.Stdout+r.Stderr, "Access is denied") && !strings.Contains(r.Stdout, "elevation") {
			t.Errorf("%s with DenyWrites: exit %d %q %q", cmd, r.Exit, r.Stdout, r.Stderr)
		}
	}
}

func TestWindowsXPFirewall(t *testing.T) {
	t.Parallel()
	w := &Windows{Version: "xp"}
	st := booted(w, time.Hour)
	if r := w.Exec(`netsh advfirewall firewall show rule name=x`, st); r.Exit != 1 {
		t.Fatalf("advfirewall on XP: %+v", r)
	}
	r := w.Exec(`netsh firewall set portopening protocol=TCP port=3389 name="loadpool RDP" mode=ENABLE scope=SUBNET`, st)
	if r.Exit != 0 || r.Stdout != "Ok.\r\n\r\n" {
		t.Fatalf("set portopening: %+v", r)
	}
	r = w.Exec(`netsh firewall show portopening`, st)
	if !strings.Contains(r.Stdout, "3389   TCP       Enable   loadpool RDP") {
		t.Fatalf("show portopening: %q", r.Stdout)
	}
}
