package sshd

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunReportsPortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	requirements(t)
	s, err := prepare(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.run(ln.Addr().(*net.TCPAddr).Port)
	if !errors.Is(err, errPortTaken) {
		s.Stop()
		t.Fatalf("run on a taken port: %v, want errPortTaken", err)
	}
}

func TestReadStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		want       proc
		ok         bool
	}{
		{name: "plain", text: "812 (sshd) S 1 812 812 0 -1", want: proc{pid: 812, ppid: 1, state: 'S'}, ok: true},
		{name: "comm with spaces and parens", text: "90 (sshd: root) [priv]) Z 77 90 90 0", want: proc{pid: 90, ppid: 77, state: 'Z'}, ok: true},
		{name: "truncated", text: "90 (sshd) S", ok: false},
		{name: "garbage", text: "not a stat line", ok: false},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		got, ok := readStat(path)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: readStat = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := readStat(filepath.Join(dir, "missing")); ok {
		t.Error("readStat of a missing file reported ok")
	}
}

func TestPrepareRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  Options
		field string
	}{
		{name: "port too big", opts: Options{Port: 70000}, field: "Options.Port"},
		{name: "negative port", opts: Options{Port: -1}, field: "Options.Port"},
		{name: "state with quote", opts: Options{SystemState: "running'; reboot"}, field: "Options.SystemState"},
		{name: "state with newline", opts: Options{SystemState: "running\n"}, field: "Options.SystemState"},
	}
	for _, tc := range tests {
		_, err := prepare(t, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: prepare = %v, want an error naming %s", tc.name, err, tc.field)
		}
	}
}
