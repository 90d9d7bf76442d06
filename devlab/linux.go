package devlab

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Linux is a Linux personality for a simulated computer: systemd's
// is-system-running (initializing/starting until Starting has passed since
// SSH came up, then running or degraded), optional cloud-init, hostnamectl
// / hostname, and a few file commands. It does not model pipes, && / ||,
// variables, globbing, sudo or any command not listed in Exec.
type Linux struct {
	// Starting: systemctl says "starting" this long after SSH came up.
	Starting time.Duration
	// Failed units make the system "degraded" once started.
	Failed []string
	// CloudInit installs cloud-init; it runs for CloudInitFor after SSH
	// came up and ends with CloudInitStatus ("done" by default, "error").
	CloudInit       bool
	CloudInitFor    time.Duration
	CloudInitStatus string
	// NoHostnamectl removes hostnamectl (the hostname fallback is used).
	NoHostnamectl bool
}

var _ Shell = (*Linux)(nil)

// Exec implements Shell.
func (l *Linux) Exec(cmd string, st *State) Reply {
	words, redir, err := splitWords(cmd)
	if err != nil {
		return Reply{Stderr: "sh: 1: Syntax error: " + err.Error() + "\n", Exit: 2}
	}
	var limit time.Duration
	if len(words) >= 3 && words[0] == "timeout" {
		secs, err := strconv.ParseFloat(words[1], 64)
		if err != nil {
			return Reply{Stderr: "timeout: invalid time interval '" + words[1] + "'\n", Exit: 125}
		}
		limit, words = time.Duration(secs*float64(time.Second)), words[2:]
	}
	if len(words) == 0 {
		return Reply{}
	}
	r := l.run(words, redir, st)
	if limit > 0 && r.Delay > limit {
		return Reply{Delay: limit, Exit: 124}
	}
	return r
}

func (l *Linux) run(w []string, redir string, st *State) Reply {
	switch w[0] {
	case "echo":
		return out(strings.Join(w[1:], " ") + "\n")
	case "true":
		return Reply{}
	case "command":
		return l.commandV(w)
	case "systemctl":
		return l.systemctl(w[1:], st)
	case "cloud-init":
		if !l.CloudInit {
			return notFound(w[0])
		}
		return l.cloudInit(w[1:], st)
	case "hostnamectl":
		if l.NoHostnamectl {
			return notFound(w[0])
		}
		return hostnamectl(w[1:], st)
	case "hostname":
		if len(w) == 1 {
			return out(st.Hostname + "\n")
		}
		st.Hostname = w[1]
		return Reply{}
	case "cat":
		return cat(w[1:], st)
	case "printf":
		return printf(w[1:], redir, st)
	}
	return notFound(w[0])
}

func out(s string) Reply { return Reply{Stdout: s} }

func notFound(name string) Reply {
	return Reply{Stderr: "sh: 1: " + name + ": not found\n", Exit: 127}
}

func (l *Linux) commandV(w []string) Reply {
	if len(w) != 3 || w[1] != "-v" {
		return Reply{Stderr: "command: usage: command -v name\n", Exit: 2}
	}
	switch w[2] {
	case "echo", "printf", "true":
		return out(w[2] + "\n")
	case "cloud-init":
		if !l.CloudInit {
			return Reply{Exit: 1}
		}
	case "hostnamectl":
		if l.NoHostnamectl {
			return Reply{Exit: 1}
		}
	case "systemctl", "hostname", "cat", "timeout":
	default:
		return Reply{Exit: 1}
	}
	return out("/usr/bin/" + w[2] + "\n")
}

// systemState is systemd's word now, and how long until it changes.
func (l *Linux) systemState(st *State) (string, time.Duration) {
	left := l.Starting - st.Since()
	switch {
	case st.Up.IsZero():
		return "offline", 0
	case left > 0 && st.Since() < l.Starting/4:
		return "initializing", left
	case left > 0:
		return "starting", left
	case len(l.Failed) > 0:
		return "degraded", 0
	}
	return "running", 0
}

func (l *Linux) systemctl(args []string, st *State) Reply {
	switch {
	case len(args) >= 1 && args[0] == "is-system-running":
		word, left := l.systemState(st)
		wait := len(args) > 1 && args[1] == "--wait"
		if wait && left > 0 {
			final := "running"
			if len(l.Failed) > 0 {
				final = "degraded"
			}
			return Reply{Stdout: final + "\n", Exit: exitOf(final), Delay: left}
		}
		return Reply{Stdout: word + "\n", Exit: exitOf(word)}
	case len(args) >= 1 && args[0] == "--failed":
		var b strings.Builder
		for _, u := range l.Failed {
			fmt.Fprintf(&b, "● %s loaded failed failed %s\n", u, u)
		}
		return out(b.String())
	}
	return Reply{Stderr: "systemctl: unsupported in devlab: " + strings.Join(args, " ") + "\n", Exit: 1}
}

func exitOf(word string) int {
	if word == "running" {
		return 0
	}
	return 1
}

func (l *Linux) cloudInit(args []string, st *State) Reply {
	if len(args) == 0 || args[0] != "status" {
		return Reply{Stderr: "cloud-init: unsupported in devlab\n", Exit: 2}
	}
	final := l.CloudInitStatus
	if final == "" {
		final = "done"
	}
	left := l.CloudInitFor - st.Since()
	status := final
	if left > 0 {
		status = "running"
	}
	wait := contains(args, "--wait")
	r := Reply{}
	if wait && left > 0 {
		status, r.Delay = final, left
	}
	if contains(args, "json") {
		b, _ := json.Marshal(map[string]any{"status": status, "extended_status": status, "errors": []string{}})
		r.Stdout = string(b) + "\n"
	} else {
		r.Stdout = "status: " + status + "\n"
	}
	if status == "error" {
		r.Exit = 1
	}
	return r
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func hostnamectl(args []string, st *State) Reply {
	if len(args) == 2 && args[0] == "set-hostname" {
		st.Hostname = args[1]
		st.Files["/etc/hostname"] = args[1] + "\n"
		return Reply{}
	}
	if len(args) == 0 || args[0] == "hostname" {
		return out(st.Hostname + "\n")
	}
	return Reply{Stderr: "hostnamectl: unsupported in devlab\n", Exit: 1}
}

func cat(files []string, st *State) Reply {
	var r Reply
	for _, f := range files {
		v, ok := st.Files[f]
		if !ok {
			r.Stderr += "cat: " + f + ": No such file or directory\n"
			r.Exit = 1
			continue
		}
		r.Stdout += v
	}
	return r
}

func printf(args []string, redir string, st *State) Reply {
	if len(args) == 0 {
		return Reply{Stderr: "printf: usage: printf format [arguments]\n", Exit: 2}
	}
	format := strings.ReplaceAll(args[0], `\n`, "\n")
	var b strings.Builder
	rest := args[1:]
	for {
		s := format
		for strings.Contains(s, "%s") {
			v := ""
			if len(rest) > 0 {
				v, rest = rest[0], rest[1:]
			}
			s = strings.Replace(s, "%s", v, 1)
		}
		b.WriteString(s)
		if len(rest) == 0 || !strings.Contains(format, "%s") {
			break
		}
	}
	if redir != "" {
		st.Files[redir] = b.String()
		return Reply{}
	}
	return out(b.String())
}
