package windows

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/control"
)

// Family is the OS family this module serves.
const Family = "windows"

// CommandTimeout bounds one command on the computer.
const CommandTimeout = time.Minute

// Module is the Windows OS module.
type Module struct{}

var _ osworker.Module = Module{}

// Family implements osworker.Module.
func (Module) Family() string { return Family }

// PostLoad implements osworker.Module.
func (Module) PostLoad(ctx context.Context, req messages.Request, env *osworker.Env) (string, error) {
	sess, err := osworker.Open(ctx, env, req)
	if err != nil {
		return "", err
	}
	sess.Timeout = CommandTimeout
	s := &session{Session: sess, env: env, legacy: Legacy(req.Image.OSVersion)}
	defer s.Close()
	setup, err := s.waitSetup(ctx)
	if err != nil {
		return "", err
	}
	done, err := s.configure(ctx, req.Image.Name)
	if err != nil {
		return "", err
	}
	return "ready: " + setup + "; " + done, nil
}

// session is the step's connection (redialled when setup reboots the
// computer between passes; each command bounded by CommandTimeout), its
// Env, and whether this is XP/2003.
type session struct {
	*osworker.Session
	env    *osworker.Env
	legacy bool
}

// must runs a command that changes something and turns a failure into
// an error (Permanent when access is denied).
func (s *session) must(ctx context.Context, what, cmd string) error {
	out, err := s.Run(ctx, cmd)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !out.OK() {
		return commandError(what, cmd, out)
	}
	return nil
}

// AccessDeniedError is a change Windows refused to the SSH account; it is
// returned wrapped in outcome.Permanent: reloading cannot fix it.
type AccessDeniedError struct {
	What, Command, Message string
	Exit                   int
}

func (e *AccessDeniedError) Error() string {
	return fmt.Sprintf("%s: %q was refused (exit %d: %s): the SSH account must be an administrator of the image",
		e.What, e.Command, e.Exit, e.Message)
}

// Reason is the result's machine reason.
func (e *AccessDeniedError) Reason() string { return "access-denied" }

// commandError classifies a failed command: access denied is Permanent,
// anything else a plain error (retry).
func commandError(what, cmd string, out control.Output) error {
	msg := firstText(out)
	if accessDenied(out) {
		return outcome.Permanent(&AccessDeniedError{What: what, Command: cmd, Message: msg, Exit: out.Exit})
	}
	return fmt.Errorf("%s: %q exited %d: %s", what, cmd, out.Exit, msg)
}

// accessDenied: sc exits with the Win32 error (5, ERROR_ACCESS_DENIED);
// reg, net and netsh say so in text (English; other languages fall back
// to retry).
func accessDenied(out control.Output) bool {
	text := string(out.Stdout) + string(out.Stderr)
	return out.Exit == 5 || strings.Contains(text, "Access is denied") ||
		strings.Contains(text, "requires elevation") || strings.Contains(text, "System error 5 ")
}

// firstText is the output's first non-empty lines, for a detail.
func firstText(out control.Output) string {
	var parts []string
	for _, b := range [][]byte{out.Stdout, out.Stderr} {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				parts = append(parts, l)
			}
		}
	}
	s := strings.Join(parts, " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "no output"
	}
	return s
}
