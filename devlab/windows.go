package devlab

import (
	"strings"
	"time"
)

// WindowsBanner is the server version string of Windows' own OpenSSH.
const WindowsBanner = "SSH-2.0-OpenSSH_for_Windows_9.5"

// Registry keys and values the Windows personality models.
const (
	winStateKey   = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State`
	winSetupKey   = `HKLM\SYSTEM\Setup`
	winTSKey      = `HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server`
	winServerKey  = `HKLM\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters`
	winServiceKey = `HKLM\SYSTEM\CurrentControlSet\Services\`
	dataSetupDone = "windows.setupDone"
)

// Windows is a Windows personality for a simulated computer, answering
// the commands an OS module sends through Windows OpenSSH's default shell
// (cmd.exe): `reg query` / `reg add` with the exact output formats of
// both reg.exe generations (Vista and later: CRLF, four spaces, leading
// empty line; XP/2003: the `! REG.EXE VERSION 3.0` header and TABs), `sc
// query|qc|config`, `netsh advfirewall firewall show|add rule` (Vista+),
// `netsh firewall show|set portopening` (XP), `net config server
// /srvcomment:`, `echo` and `ver`, with Windows' exit statuses.
//
// The registry, service start types and firewall rules live in
// State.Files (so Computer.Snapshot shows them; see WindowsRegValue and
// WindowsFirewallRule) and persist across Reset; Boot (a reimage) starts
// from the image's state: SSH service on demand start, RDP denied, no
// rule, no description.
//
// Sysprep timeline (Sysprep true), counted from the moment SSH answers
// (the port stays closed for Config.BootDelay first): for SetupFor, setup
// is in progress (Vista+: ImageState IMAGE_STATE_UNDEPLOYABLE, then
// IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE, SystemSetupInProgress 1,
// OOBEInProgress 1; XP: SystemSetupInProgress 1, MiniSetupInProgress 1),
// then complete (IMAGE_STATE_COMPLETE, 0, 0; XP: 0 and MiniSetupInProgress
// deleted), or with Stuck: SystemSetupInProgress 0 but ImageState
// IMAGE_STATE_UNDEPLOYABLE. A power reset during setup restarts it; a
// finished setup stays finished.
//
// What it does not model: cmd.exe beyond one simple command (& | < > are
// refused outside quotes, ^ escapes, %COMPUTERNAME%-style variables
// expand), Cygwin's bash, services actually starting or stopping, the
// firewall filtering anything, localized messages, registry ACLs other
// than DenyWrites, and every reg.exe switch but /v, /ve, /t, /d and /f.
type Windows struct {
	// Version is the os_version ("7", "2008", "xp", "2003", "5.1", ...);
	// XP/2003 ("xp", "2003", "5.x") get reg.exe 3.0 and the XP registry.
	Version string
	// Sysprep runs the setup timeline after every boot until it ends.
	Sysprep bool
	// SetupFor is how long setup runs after SSH answers.
	SetupFor time.Duration
	// Stuck: setup ends with IMAGE_STATE_UNDEPLOYABLE (a failed pass).
	Stuck bool
	// DenyWrites answers "Access is denied" to every change (the
	// configured account is not an administrator).
	DenyWrites bool
	// SSHService is the SSH service's name: "sshd" (default) or
	// "cygsshd".
	SSHService string
}

var (
	_ Shell  = (*Windows)(nil)
	_ Booter = (*Windows)(nil)
)

// Legacy reports whether this is XP/2003 (reg.exe 3.0, no ImageState).
func (w *Windows) Legacy() bool {
	switch strings.ToLower(strings.TrimSpace(w.Version)) {
	case "xp", "2003", "2003r2", "2003-r2", "5", "5.0", "5.1", "5.2", "2000":
		return true
	}
	return false
}

func (w *Windows) service() string {
	if w.SSHService == "" {
		return "sshd"
	}
	return w.SSHService
}

// OnBoot implements Booter: a reimage writes the image's registry; every
// boot restarts an unfinished setup.
func (w *Windows) OnBoot(st *State, reimaged bool) {
	if reimaged {
		st.Hostname = strings.ToUpper(st.Name)
		regSet(st, winServiceKey+w.service(), "Start", "REG_DWORD", "0x3")
		regSet(st, winServiceKey+w.service(), "DisplayName", "REG_SZ", "OpenSSH SSH Server")
		regSet(st, winTSKey, "fDenyTSConnections", "REG_DWORD", "0x1")
		if !w.Sysprep {
			st.Data[dataSetupDone] = true
		}
	}
	w.syncSetup(st)
}

// Exec implements Shell.
func (w *Windows) Exec(cmd string, st *State) Reply {
	w.syncSetup(st)
	args, err := splitCmd(cmd, st)
	if err != nil {
		return Reply{Stderr: "devlab: " + err.Error() + "\r\n", Exit: 255}
	}
	if len(args) == 0 {
		return Reply{}
	}
	switch strings.ToLower(args[0]) {
	case "echo":
		return Reply{Stdout: echo(expandVars(cmd, st))}
	case "ver":
		return Reply{Stdout: "\r\n" + w.verString() + "\r\n"}
	case "reg", "reg.exe":
		return w.reg(args[1:], st)
	case "sc", "sc.exe":
		return w.sc(args[1:], st)
	case "netsh", "netsh.exe":
		return w.netsh(args[1:], st)
	case "net", "net.exe":
		return w.net(args[1:], st)
	}
	return Reply{Stderr: "'" + args[0] + "' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", Exit: 1}
}

// echo is what cmd's echo prints: the rest of the line, as written.
func echo(line string) string {
	line = strings.TrimLeft(line, " \t")
	rest := strings.TrimPrefix(line[min(4, len(line)):], " ")
	if strings.TrimSpace(rest) == "" {
		return "ECHO is on.\r\n"
	}
	return rest + "\r\n"
}

func (w *Windows) verString() string {
	if w.Legacy() {
		return "Microsoft Windows XP [Version 5.1.2600]"
	}
	return "Microsoft Windows [Version 6.1.7601]"
}

// syncSetup writes the setup values the timeline says for now.
func (w *Windows) syncSetup(st *State) {
	done, _ := st.Data[dataSetupDone].(bool)
	running := !done && w.Sysprep
	if running && !st.Up.IsZero() && st.Since() >= w.SetupFor {
		running, done = false, true
		st.Data[dataSetupDone] = true
	}
	switch {
	case w.Legacy() && running:
		w.setXP(st, "0x1", "0x1")
	case w.Legacy():
		w.setXP(st, "0x0", "")
	case running && st.Up.IsZero():
		w.setVista(st, "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", "0x1", "0x1")
	case running && st.Since() < w.SetupFor/2:
		w.setVista(st, "IMAGE_STATE_UNDEPLOYABLE", "0x1", "0x1")
	case running:
		w.setVista(st, "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE", "0x1", "0x1")
	case w.Stuck && w.Sysprep:
		w.setVista(st, "IMAGE_STATE_UNDEPLOYABLE", "0x0", "0x1")
	default:
		w.setVista(st, "IMAGE_STATE_COMPLETE", "0x0", "0x0")
	}
}

func (w *Windows) setVista(st *State, image, system, oobe string) {
	regSet(st, winStateKey, "ImageState", "REG_SZ", image)
	regSet(st, winSetupKey, "SystemSetupInProgress", "REG_DWORD", system)
	regSet(st, winSetupKey, "OOBEInProgress", "REG_DWORD", oobe)
	if system == "0x1" {
		regSet(st, winSetupKey, "SetupType", "REG_DWORD", "0x2")
		regSet(st, winSetupKey, "CmdLine", "REG_SZ", `oobe\windeploy.exe`)
	} else {
		regSet(st, winSetupKey, "SetupType", "REG_DWORD", "0x0")
		regSet(st, winSetupKey, "CmdLine", "REG_SZ", "")
	}
}

// setXP writes XP's values; mini "" deletes MiniSetupInProgress.
func (w *Windows) setXP(st *State, system, mini string) {
	regSet(st, winSetupKey, "SystemSetupInProgress", "REG_DWORD", system)
	if mini == "" {
		regDelete(st, winSetupKey, "MiniSetupInProgress")
		return
	}
	regSet(st, winSetupKey, "MiniSetupInProgress", "REG_DWORD", mini)
}

// WindowsFirewallRule returns a firewall rule's description (the netsh
// add/set arguments) from a snapshot of a Windows computer.
func WindowsFirewallRule(st State, name string) (string, bool) {
	v, ok := st.Files[firewallFile(name)]
	return v, ok
}

func firewallFile(name string) string { return "firewall:" + strings.ToLower(name) }

// denied is the reply of a change refused to a non-administrator.
func denied(kind string) Reply {
	switch kind {
	case "sc":
		return Reply{Stdout: "[SC] OpenService FAILED 5:\r\n\r\nAccess is denied.\r\n\r\n", Exit: 5}
	case "netsh":
		return Reply{Stdout: "The requested operation requires elevation (Run as administrator).\r\n\r\n", Exit: 1}
	case "net":
		return Reply{Stderr: "System error 5 has occurred.\r\n\r\nAccess is denied.\r\n\r\n", Exit: 2}
	}
	return Reply{Stderr: "ERROR: Access is denied.\r\n", Exit: 1}
}

// NewWindowsComputer is NewComputer with w as the shell and, unless cfg
// names one, Windows OpenSSH's banner (WindowsBanner).
func NewWindowsComputer(cfg Config, w *Windows) (*Computer, error) {
	cfg.Shell = w
	if cfg.Banner == "" {
		cfg.Banner = WindowsBanner
	}
	return NewComputer(cfg)
}
