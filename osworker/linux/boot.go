package linux

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/osworker"
)

// waitBoot waits for systemd: running or degraded.
func (s *session) waitBoot(ctx context.Context) (string, error) {
	s.env.Event("waiting for boot to finish (systemctl is-system-running)")
	cmd := "timeout " + waitSeconds(s.env.Profile) + " systemctl is-system-running --wait"
	var word string
	var final error // ends the wait at once with retry
	err := osworker.WaitUntil(ctx, s.env, "boot", func(ctx context.Context) (bool, string, error) {
		out, err := s.Run(ctx, cmd)
		if err != nil {
			return false, "", err
		}
		word = strings.TrimSpace(string(out.Stdout))
		done, prog, err := bootState(word, out.Exit)
		if err != nil && !outcome.IsPermanent(err) {
			final = err
			return true, prog, nil
		}
		return done, prog, err
	})
	if err == nil {
		err = final
	}
	if err != nil {
		return "", err
	}
	switch word {
	case "offline", "":
		// No systemd to ask (PID 1 is another init, or systemctl is not
		// installed): the SSH answer is the only sign of a finished boot,
		// as it was for Apache VCL's Linux module.
		s.env.Event("systemd does not manage this system (is-system-running: %s): taking the SSH answer as the end of boot", systemWord(word))
		return "boot not confirmed by systemd (none running); SSH answers", nil
	case "degraded":
	default:
		s.env.Event("boot finished: running")
		return "system running", nil
	}
	units := s.failedUnits(ctx)
	s.env.Event("boot finished: degraded (failed units: %s)", units)
	return "system degraded (failed units: " + units + ")", nil
}

// bootState reads is-system-running's word (exit 124: timeout's bound).
func bootState(word string, exit int) (bool, string, error) {
	switch word {
	case "running", "degraded":
		return true, word, nil
	case "initializing", "starting":
		return false, word, nil
	case "offline": // systemd is not PID 1: nothing to wait for
		return true, word, nil
	case "maintenance", "stopping":
		return false, word, fmt.Errorf("system is in %s state (rescue mode or shutting down)", word)
	case "":
		switch exit {
		case 124:
			return false, "starting", nil
		case 127: // systemctl is not installed: nothing to wait for
			return true, "", nil
		}
		return false, "unknown", nil
	}
	return false, word, nil
}

func (s *session) failedUnits(ctx context.Context) string {
	out, err := s.Run(ctx, "systemctl --failed --no-legend --plain")
	if err != nil {
		return "unknown: " + err.Error()
	}
	var units []string
	for _, line := range strings.Split(string(out.Stdout), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "●"))
		if len(f) > 0 {
			units = append(units, f[0])
		}
	}
	if len(units) == 0 {
		return "none listed"
	}
	return strings.Join(units, ", ")
}

// waitCloudInit waits for cloud-init when it is installed; "" when not.
func (s *session) waitCloudInit(ctx context.Context) (string, error) {
	out, err := s.Run(ctx, "command -v cloud-init")
	if err != nil {
		return "", err
	}
	if !out.OK() {
		return "", nil
	}
	s.env.Event("waiting for cloud-init to finish")
	cmd := "timeout " + waitSeconds(s.env.Profile) + " cloud-init status --wait --format json"
	var st ciStatus
	var final error
	err = osworker.WaitUntil(ctx, s.env, "cloud-init", func(ctx context.Context) (bool, string, error) {
		out, err := s.Run(ctx, cmd)
		if err != nil {
			return false, "", err
		}
		st = parseCloudInit(out.Stdout, out.Exit)
		done, prog, err := st.done()
		if err != nil {
			final = err
			return true, prog, nil
		}
		return done, prog, nil
	})
	if err == nil {
		err = final
	}
	if err != nil {
		return "", err
	}
	s.env.Event("cloud-init finished: %s", st.Status)
	return "cloud-init " + st.Status, nil
}

type ciStatus struct {
	Status   string   `json:"status"`
	Extended string   `json:"extended_status"`
	Errors   []string `json:"errors"`
	exit     int
}

func parseCloudInit(b []byte, exit int) ciStatus {
	st := ciStatus{exit: exit}
	if err := json.Unmarshal(b, &st); err != nil || st.Status == "" {
		st.Status = "running"
		if exit != 124 {
			st.Status = "unreadable"
		}
	}
	return st
}

func (st ciStatus) done() (bool, string, error) {
	switch st.Status {
	case "done", "disabled":
		return true, st.Status, nil
	case "running", "not started", "not run":
		return false, st.Status, nil
	case "error":
		return false, st.Status, fmt.Errorf("cloud-init ended with an error (status %q, exit %d): %s", st.Extended, st.exit, orNone(st.Errors))
	}
	return false, st.Status, fmt.Errorf("cloud-init status is %q (exit %d)", st.Status, st.exit)
}

func orNone(errs []string) string {
	if len(errs) == 0 {
		return "no error listed; see /var/log/cloud-init.log on the computer"
	}
	return strings.Join(errs, "; ")
}

func systemWord(word string) string {
	if word == "" {
		return "systemctl not installed"
	}
	return word
}
