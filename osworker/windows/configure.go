package windows

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/loadpool/loadpool/outcome"
)

// RDPRuleName is the firewall rule that lets RDP in.
const RDPRuleName = "loadpool-rdp"

// MaxDescription is the longest server comment `net config server`
// accepts (LM20_MAXCOMMENTSZ).
const MaxDescription = 48

// configure runs every step; each reads first and changes only what
// differs, so a second run changes nothing.
func (s *session) configure(ctx context.Context, image string) (string, error) {
	steps := []func(context.Context) (string, error){
		s.sshAutoStart,
		s.enableRDP,
		s.allowRDP,
		func(ctx context.Context) (string, error) { return s.describe(ctx, image) },
	}
	var done []string
	for _, step := range steps {
		d, err := step(ctx)
		if err != nil {
			return "", err
		}
		done = append(done, d)
	}
	return strings.Join(done, "; "), nil
}

// report emits the step's event ("... already" when nothing changed) and
// returns its summary.
func (s *session) report(changed bool, summary string) string {
	if changed {
		s.env.Event("%s (changed)", summary)
	} else {
		s.env.Event("%s already", summary)
	}
	return summary
}

var startType = regexp.MustCompile(`START_TYPE\s*:\s*(\d+)`)

// sshAutoStart sets the SSH service (sshd, else cygsshd) to start
// automatically.
func (s *session) sshAutoStart(ctx context.Context) (string, error) {
	svc, err := s.sshService(ctx)
	if err != nil {
		return "", err
	}
	cmd := "sc qc " + svc
	out, err := s.Run(ctx, cmd)
	if err != nil {
		return "", fmt.Errorf("read the start type of %s: %w", svc, err)
	}
	if !out.OK() {
		return "", commandError("read the start type of "+svc, cmd, out)
	}
	summary := "SSH service " + svc + " starts automatically"
	if m := startType.FindSubmatch(out.Stdout); m != nil && string(m[1]) == "2" {
		return s.report(false, summary), nil
	}
	if err := s.must(ctx, "set "+svc+" to start automatically", "sc config "+svc+" start= auto"); err != nil {
		return "", err
	}
	return s.report(true, summary), nil
}

// sshService finds the installed SSH service (exit 1060: not installed).
func (s *session) sshService(ctx context.Context) (string, error) {
	for _, svc := range []string{"sshd", "cygsshd"} {
		cmd := "sc query " + svc
		out, err := s.Run(ctx, cmd)
		switch {
		case err != nil:
			return "", fmt.Errorf("look for the %s service: %w", svc, err)
		case out.OK():
			return svc, nil
		case out.Exit != 1060:
			return "", commandError("look for the "+svc+" service", cmd, out)
		}
	}
	return "", outcome.Permanent(fmt.Errorf("neither sshd nor cygsshd is an installed service (sc query exited 1060 for both): the image's SSH server would not come back after a reboot"))
}

// enableRDP sets fDenyTSConnections to 0.
func (s *session) enableRDP(ctx context.Context) (string, error) {
	const summary = "RDP enabled (fDenyTSConnections 0)"
	v, found, err := s.regQuery(ctx, TSKey, "fDenyTSConnections")
	if err != nil {
		return "", err
	}
	if found {
		if n, err := v.DWORD(); err == nil && n == 0 {
			return s.report(false, summary), nil
		}
	}
	cmd := `reg add "` + TSKey + `" /v fDenyTSConnections /t REG_DWORD /d 0 /f`
	if err := s.must(ctx, "enable RDP", cmd); err != nil {
		return "", err
	}
	return s.report(true, summary), nil
}

// allowRDP adds the firewall rule for RDP from the local subnet unless it
// exists (netsh advfirewall on Vista+, netsh firewall on XP/2003).
func (s *session) allowRDP(ctx context.Context) (string, error) {
	summary := "firewall rule " + RDPRuleName + " lets RDP (TCP 3389) in from the local subnet"
	show, add := `netsh advfirewall firewall show rule name="`+RDPRuleName+`"`,
		`netsh advfirewall firewall add rule name="`+RDPRuleName+`" dir=in action=allow protocol=TCP localport=3389 remoteip=localsubnet`
	if s.legacy {
		show, add = "netsh firewall show portopening",
			`netsh firewall set portopening protocol=TCP port=3389 name="`+RDPRuleName+`" mode=ENABLE scope=SUBNET`
	}
	out, err := s.Run(ctx, show)
	if err != nil {
		return "", fmt.Errorf("read the firewall rules: %w", err)
	}
	if s.ruleExists(out.Stdout, out.Exit) {
		return s.report(false, summary), nil
	}
	// Vista+'s "No rules match" is exit 1; anything else failed.
	if !out.OK() && (s.legacy || out.Exit != 1) {
		return "", commandError("read the firewall rules", show, out)
	}
	if err := s.must(ctx, "allow RDP through the firewall", add); err != nil {
		return "", err
	}
	return s.report(true, summary), nil
}

// ruleExists: Vista+'s show rule exits 0 only when the rule exists (1:
// "No rules match"); XP lists every port opening, one per line.
func (s *session) ruleExists(stdout []byte, exit int) bool {
	if !s.legacy {
		return exit == 0
	}
	if exit != 0 {
		return false
	}
	for _, line := range strings.Split(string(stdout), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "3389" && strings.EqualFold(f[len(f)-1], RDPRuleName) {
			return true
		}
	}
	return false
}

// describe sets the computer description (the server comment) to the
// image's name, made safe by Description.
func (s *session) describe(ctx context.Context, image string) (string, error) {
	desc := Description(image)
	summary := fmt.Sprintf("computer description is %q", desc)
	if desc != image {
		summary += fmt.Sprintf(" (image name %q made safe for cmd.exe)", image)
	}
	v, found, err := s.regQuery(ctx, ServerKey, "srvcomment")
	if err != nil {
		return "", err
	}
	if found && v.Data == desc {
		return s.report(false, summary), nil
	}
	if err := s.must(ctx, "set the computer description", `net config server /srvcomment:"`+desc+`"`); err != nil {
		return "", err
	}
	return s.report(true, summary), nil
}

// Description is the image name as a server comment that is safe inside
// double quotes for cmd.exe and for bash: letters, digits, spaces and
// -_.,:;+=@#()[]{}~/' are kept, every other character (" % ! ^ & | < > $
// ` \ and control characters) becomes '_'; at most MaxDescription
// characters, trimmed. cmd.exe has no escape for % or " inside quotes,
// so replacing them is the only safe way.
func Description(image string) string {
	var b strings.Builder
	n := 0
	for _, r := range image {
		if n == MaxDescription {
			break
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != ' ' && !strings.ContainsRune("-_.,:;+=@#()[]{}~/'", r) {
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
