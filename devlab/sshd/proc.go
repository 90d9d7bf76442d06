package sshd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logSink receives sshd's stderr (and stdout) for the whole run: it keeps
// the lines, passes them to tb.Logf and signals "Server listening".
type logSink struct {
	tb        testing.TB
	ready     string
	listening chan struct{}
	mu        sync.Mutex
	partial   []byte
	all       []string
	changed   chan struct{} // closed and replaced on every new line
}

func newLogSink(tb testing.TB, port int) *logSink {
	return &logSink{tb: tb, listening: make(chan struct{}), changed: make(chan struct{}),
		ready: fmt.Sprintf("Server listening on 127.0.0.1 port %d.", port)}
}

// Write implements io.Writer; exec's copying goroutine calls it, and
// cmd.Wait returns only after the last call.
func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := strings.TrimRight(string(l.partial[:i]), "\r")
		l.partial = l.partial[i+1:]
		l.add(line)
	}
}

func (l *logSink) add(line string) {
	l.tb.Logf("sshd: %s", line)
	l.all = append(l.all, line)
	if strings.Contains(line, l.ready) {
		select {
		case <-l.listening:
		default:
			close(l.listening)
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *logSink) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

func (l *logSink) text() string { return strings.Join(l.lines(), "\n") }

func (l *logSink) wait(ctx context.Context, substr string) error {
	for {
		l.mu.Lock()
		for _, line := range l.all {
			if strings.Contains(line, substr) {
				l.mu.Unlock()
				return nil
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("sshd never logged %q: %w", substr, context.Cause(ctx))
		}
	}
}

// Stop ends the per-connection processes and their descendants, then the
// listener, and waits for them. It is idempotent.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		pid := s.cmd.Process.Pid
		kids := descendants(pid)
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGTERM)
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if left := waitGone(kids, stopTimeout); len(left) > 0 {
			for _, k := range left {
				_ = syscall.Kill(k, syscall.SIGKILL)
			}
			s.tb.Errorf("sshd: processes %v did not end on SIGTERM within %s; killed", left, stopTimeout)
		}
	})
}

// descendants lists the processes below pid, children first.
func descendants(pid int) []int {
	parent := map[int][]int{}
	for _, p := range allProcs() {
		parent[p.ppid] = append(parent[p.ppid], p.pid)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		next := parent[queue[0]]
		queue = append(queue[1:], next...)
		out = append(out, next...)
	}
	return out
}

type proc struct {
	pid, ppid int
	state     byte
}

// allProcs reads pid, state and ppid of every process from /proc/*/stat.
func allProcs() []proc {
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	out := make([]proc, 0, len(paths))
	for _, path := range paths {
		if p, ok := readStat(path); ok {
			out = append(out, p)
		}
	}
	return out
}

// readStat parses "pid (comm) state ppid ..."; comm may hold spaces and ')'.
func readStat(path string) (proc, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return proc{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	open := strings.IndexByte(s, '(')
	if i < 0 || open < 1 {
		return proc{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return proc{}, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(s[:open]))
	ppid, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return proc{}, false
	}
	return proc{pid: pid, ppid: ppid, state: f[0][0]}, true
}

// alive reports whether pid still runs (a zombie has ended).
func alive(pid int) bool {
	p, ok := readStat(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return ok && p.state != 'Z' && p.state != 'X'
}

// waitGone polls, up to timeout, until none of pids runs; it returns the
// ones still running.
func waitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(5 * time.Millisecond) // bounded poll of process exit
	}
}
