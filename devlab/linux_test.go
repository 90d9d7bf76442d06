package devlab

import (
	"strings"
	"testing"
	"time"
)

func TestSplitWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cmd   string
		words []string
		redir string
		err   bool
	}{
		{cmd: "echo loadpool", words: []string{"echo", "loadpool"}},
		{cmd: `printf '%s\n' 'it'\''s' > /etc/x`, words: []string{"printf", `%s\n`, "it's"}, redir: "/etc/x"},
		{cmd: `cat "/a b" 2>/dev/null`, words: []string{"cat", "/a b"}},
		{cmd: "timeout 0.5 systemctl is-system-running --wait", words: []string{"timeout", "0.5", "systemctl", "is-system-running", "--wait"}},
		{cmd: "echo a; reboot", err: true},
		{cmd: "echo a && reboot", err: true},
		{cmd: "echo 'open", err: true},
		{cmd: "printf x >", err: true},
	}
	for _, tc := range tests {
		words, redir, err := splitWords(tc.cmd)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.cmd)
			}
			continue
		}
		if err != nil || strings.Join(words, "|") != strings.Join(tc.words, "|") || redir != tc.redir {
			t.Errorf("%q = %q > %q, %v; want %q > %q", tc.cmd, words, redir, err, tc.words, tc.redir)
		}
	}
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"echo a", `printf '%s\n' 'x' > /f`, `a "b c" \d`, "2>&1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		_, _, _ = splitWords(cmd)
	})
}

func TestLinuxShell(t *testing.T) {
	t.Parallel()
	up := func(ago time.Duration) *State {
		return &State{Name: "c", Hostname: "localhost", Up: time.Now().Add(-ago), Files: map[string]string{}, Data: map[string]any{}}
	}
	tests := []struct {
		name     string
		sh       Linux
		upAgo    time.Duration
		cmd      string
		stdout   string
		exit     int
		delayMin time.Duration
	}{
		{name: "echo", cmd: "echo loadpool", stdout: "loadpool\n"},
		{name: "starting", sh: Linux{Starting: time.Hour}, upAgo: 20 * time.Minute, cmd: "systemctl is-system-running", stdout: "starting\n", exit: 1},
		{name: "initializing", sh: Linux{Starting: time.Hour}, cmd: "systemctl is-system-running", stdout: "initializing\n", exit: 1},
		{name: "running", cmd: "systemctl is-system-running", stdout: "running\n"},
		{name: "degraded", sh: Linux{Failed: []string{"a.service"}}, cmd: "systemctl is-system-running", stdout: "degraded\n", exit: 1},
		{name: "wait blocks until running", sh: Linux{Starting: time.Minute}, cmd: "systemctl is-system-running --wait", stdout: "running\n", delayMin: 50 * time.Second},
		{name: "timeout bounds wait", sh: Linux{Starting: time.Hour}, cmd: "timeout 2 systemctl is-system-running --wait", exit: 124, delayMin: 2 * time.Second},
		{name: "failed units", sh: Linux{Failed: []string{"a.service"}}, cmd: "systemctl --failed --no-legend --plain", stdout: "● a.service loaded failed failed a.service\n"},
		{name: "no cloud-init", cmd: "command -v cloud-init", exit: 1},
		{name: "cloud-init present", sh: Linux{CloudInit: true}, cmd: "command -v cloud-init", stdout: "/usr/bin/cloud-init\n"},
		{name: "cloud-init json", sh: Linux{CloudInit: true}, cmd: "cloud-init status --wait --format json", stdout: `{"errors":[],"extended_status":"done","status":"done"}` + "\n"},
		{name: "cloud-init error", sh: Linux{CloudInit: true, CloudInitStatus: "error"}, cmd: "cloud-init status --format json", stdout: `{"errors":[],"extended_status":"error","status":"error"}` + "\n", exit: 1},
		{name: "unknown command", cmd: "reboot", exit: 127},
		{name: "cat missing", cmd: "cat /etc/loadpool-image", exit: 1},
		{name: "hostnamectl missing", sh: Linux{NoHostnamectl: true}, cmd: "hostnamectl set-hostname x", exit: 127},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.sh.Exec(tc.cmd, up(tc.upAgo))
			if r.Stdout != tc.stdout || r.Exit != tc.exit || r.Delay < tc.delayMin {
				t.Fatalf("got %+v; want stdout %q exit %d delay >= %s", r, tc.stdout, tc.exit, tc.delayMin)
			}
		})
	}
}

func TestLinuxFilesAndHostname(t *testing.T) {
	t.Parallel()
	sh := &Linux{}
	st := &State{Hostname: "localhost", Up: time.Now(), Files: map[string]string{}}
	for _, cmd := range []string{"hostnamectl set-hostname 'vm-7'", `printf '%s\n' 'img one' > /etc/loadpool-image`} {
		if r := sh.Exec(cmd, st); r.Exit != 0 {
			t.Fatalf("%s: %+v", cmd, r)
		}
	}
	if r := sh.Exec("cat /etc/loadpool-image", st); r.Stdout != "img one\n" {
		t.Fatalf("cat = %+v", r)
	}
	if r := sh.Exec("hostname", st); r.Stdout != "vm-7\n" || st.Files["/etc/hostname"] != "vm-7\n" {
		t.Fatalf("hostname = %+v, files %v", r, st.Files)
	}
}
