package devlab

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// splitCmd expands %VAR% and splits a cmd.exe command line into
// arguments the way the programs used here see them: double quotes group
// (and are removed), ^ escapes outside quotes, and & | < > outside quotes
// are an error (command chaining is not modelled: a module that lets them
// through would run a second command on a real computer).
func splitCmd(cmd string, st *State) ([]string, error) {
	cmd = expandVars(cmd, st)
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(cmd); i++ {
		ch := cmd[i]
		switch {
		case ch == '"':
			quoted, inWord = !quoted, true
		case quoted:
			cur.WriteByte(ch)
		case ch == '^' && i+1 < len(cmd):
			i++
			cur.WriteByte(cmd[i])
			inWord = true
		case strings.IndexByte("&|<>", ch) >= 0:
			return nil, fmt.Errorf("cmd.exe metacharacter %q outside quotes at byte %d: a second command or a redirection", ch, i)
		case ch == ' ' || ch == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated double quote")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// expandVars replaces %NAME% of the few variables modelled; unknown ones
// stay as written (cmd /c does the same).
func expandVars(s string, st *State) string {
	vars := map[string]string{"COMPUTERNAME": strings.ToUpper(st.Hostname), "SYSTEMROOT": `C:\Windows`,
		"WINDIR": `C:\Windows`, "COMSPEC": `C:\Windows\system32\cmd.exe`, "USERNAME": "Administrator"}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		name := s[i+1 : i+1+j]
		if v, ok := vars[strings.ToUpper(name)]; ok {
			b.WriteString(s[:i] + v)
			s = s[i+j+2:]
			continue
		}
		b.WriteString(s[:i+1])
		s = s[i+1:]
	}
	b.WriteString(s)
	return b.String()
}

var startTypes = map[string]string{"auto": "2", "demand": "3", "disabled": "4"}
var startNames = map[string]string{"0x2": "2   AUTO_START", "0x3": "3   DEMAND_START", "0x4": "4   DISABLED"}

const scNoService = "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n"

// sc answers `sc query NAME`, `sc qc NAME` and `sc config NAME start= X`.
func (w *Windows) sc(args []string, st *State) Reply {
	if len(args) < 2 {
		return Reply{Stdout: "DESCRIPTION:\r\n        SC is a command line program used for communicating with the\r\n        Service Control Manager and services.\r\n", Exit: 1639}
	}
	svc := args[1]
	start, ok := regGet(st, winServiceKey+svc, "Start")
	if !ok {
		if strings.EqualFold(args[0], "query") {
			return Reply{Stdout: scNoService, Exit: 1060}
		}
		return Reply{Stdout: strings.Replace(scNoService, "EnumQueryServicesStatus:", "", 1), Exit: 1060}
	}
	switch strings.ToLower(args[0]) {
	case "query":
		return Reply{Stdout: "\r\nSERVICE_NAME: " + svc + "\r\n        TYPE               : 10  WIN32_OWN_PROCESS\r\n" +
			"        STATE              : 4  RUNNING\r\n                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r\n" +
			"        WIN32_EXIT_CODE    : 0  (0x0)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n" +
			"        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n"}
	case "qc":
		return Reply{Stdout: "[SC] QueryServiceConfig SUCCESS\r\n\r\nSERVICE_NAME: " + svc + "\r\n" +
			"        TYPE               : 10  WIN32_OWN_PROCESS\r\n" +
			"        START_TYPE         : " + startNames[start.data] + "\r\n" +
			"        ERROR_CONTROL      : 1   NORMAL\r\n" +
			"        BINARY_PATH_NAME   : C:\\Windows\\System32\\OpenSSH\\" + svc + ".exe\r\n" +
			"        DISPLAY_NAME       : OpenSSH SSH Server\r\n        SERVICE_START_NAME : LocalSystem\r\n"}
	case "config":
		if len(args) != 4 || !strings.EqualFold(args[2], "start=") || startTypes[strings.ToLower(args[3])] == "" {
			return Reply{Stdout: "[SC] ChangeServiceConfig FAILED 87:\r\n\r\nThe parameter is incorrect.\r\n\r\n", Exit: 87}
		}
		if w.DenyWrites {
			return denied("sc")
		}
		regSet(st, winServiceKey+svc, "Start", "REG_DWORD", "0x"+startTypes[strings.ToLower(args[3])])
		return Reply{Stdout: "[SC] ChangeServiceConfig SUCCESS\r\n"}
	}
	return Reply{Stdout: "[SC] devlab: unsupported sc command " + args[0] + "\r\n", Exit: 1}
}

// netsh answers the firewall commands of both generations.
func (w *Windows) netsh(args []string, st *State) Reply {
	low := make([]string, len(args))
	for i, a := range args {
		low[i] = strings.ToLower(a)
	}
	line := strings.Join(low, " ")
	switch {
	case strings.HasPrefix(line, "advfirewall firewall ") && !w.Legacy():
		return w.advfirewall(low[2:], args[2:], st)
	case strings.HasPrefix(line, "firewall "):
		return w.xpFirewall(low[1:], args[1:], st)
	}
	return Reply{Stdout: "The following command was not found: " + strings.Join(args, " ") + ".\r\n", Exit: 1}
}

// params reads netsh's name=value arguments (names lower-cased).
func params(args []string) map[string]string {
	p := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			p[strings.ToLower(k)] = v
		}
	}
	return p
}

func (w *Windows) advfirewall(low, args []string, st *State) Reply {
	if len(low) < 2 || low[1] != "rule" {
		return Reply{Stdout: "The following command was not found: advfirewall firewall " + strings.Join(args, " ") + ".\r\n", Exit: 1}
	}
	p := params(args[2:])
	name := p["name"]
	switch low[0] {
	case "show":
		rule, ok := st.Files[firewallFile(name)]
		if !ok || name == "" {
			return Reply{Stdout: "No rules match the specified criteria.\r\n", Exit: 1}
		}
		return Reply{Stdout: "\r\nRule Name:                            " + name + "\r\n" +
			"----------------------------------------------------------------------\r\n" +
			"Enabled:                              Yes\r\n" + ruleText(params(strings.Split(rule, "\x00"))) + "Ok.\r\n\r\n"}
	case "add":
		for _, k := range []string{"name", "dir", "action"} {
			if p[k] == "" {
				return Reply{Stdout: "A specified value is not valid.\r\n\r\nUsage: add rule name=<string> dir=in|out action=allow|block|bypass ...\r\n", Exit: 1}
			}
		}
		if w.DenyWrites {
			return denied("netsh")
		}
		st.Files[firewallFile(name)] = strings.Join(args[2:], "\x00")
		return Reply{Stdout: "Ok.\r\n\r\n"}
	}
	return Reply{Stdout: "The following command was not found: advfirewall firewall " + strings.Join(args, " ") + ".\r\n", Exit: 1}
}

func ruleText(p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "name" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%-38s%s\r\n", k+":", p[k])
	}
	return b.String()
}

func (w *Windows) xpFirewall(low, args []string, st *State) Reply {
	ok := "Ok.\r\n\r\n"
	if !w.Legacy() {
		ok = "\r\nIMPORTANT: Command executed successfully.\r\nHowever, \"netsh firewall\" is deprecated;\r\nuse \"netsh advfirewall firewall\" instead.\r\n\r\n"
	}
	switch {
	case len(low) == 2 && low[0] == "show" && low[1] == "portopening":
		var b strings.Builder
		b.WriteString("\r\nPort configuration for Standard profile:\r\nPort   Protocol  Mode     Name\r\n" +
			"-------------------------------------------------------------------\r\n")
		var rules []string
		for f := range st.Files {
			if strings.HasPrefix(f, "firewall:") {
				rules = append(rules, f)
			}
		}
		sort.Strings(rules)
		for _, f := range rules {
			p := params(strings.Split(st.Files[f], "\x00"))
			port := p["port"] + p["localport"]
			fmt.Fprintf(&b, "%-6s %-9s %-8s %s\r\n", port, strings.ToUpper(p["protocol"]), "Enable", p["name"])
		}
		return Reply{Stdout: b.String() + "\r\n"}
	case len(low) >= 2 && low[0] == "set" && low[1] == "portopening":
		p := params(args[2:])
		if p["protocol"] == "" || p["port"] == "" || p["name"] == "" {
			return Reply{Stdout: "The syntax supplied for this command is not valid. Check help for the correct syntax.\r\n\r\n", Exit: 1}
		}
		if w.DenyWrites {
			return denied("netsh")
		}
		st.Files[firewallFile(p["name"])] = strings.Join(args[2:], "\x00")
		return Reply{Stdout: ok}
	}
	return Reply{Stdout: "The following command was not found: firewall " + strings.Join(args, " ") + ".\r\n", Exit: 1}
}

// net answers `net config server [/srvcomment:TEXT]`.
func (w *Windows) net(args []string, st *State) Reply {
	if len(args) < 2 || !strings.EqualFold(args[0], "config") || !strings.EqualFold(args[1], "server") {
		return Reply{Stderr: "The syntax of this command is:\r\n\r\nNET CONFIG [SERVER | WORKSTATION]\r\n\r\n", Exit: 1}
	}
	if len(args) == 2 {
		c, _ := regGet(st, winServerKey, "srvcomment")
		return Reply{Stdout: fmt.Sprintf("Server Name                          \\\\%s\r\nServer Comment                       %s\r\n\r\nThe command completed successfully.\r\n\r\n", strings.ToUpper(st.Hostname), c.data)}
	}
	v, ok := cutFold(args[2], "/srvcomment:")
	if !ok || len(args) > 3 {
		return Reply{Stderr: "The option " + args[2] + " is unknown.\r\n\r\nMore help is available by typing NET HELPMSG 3506.\r\n\r\n", Exit: 1}
	}
	if w.DenyWrites {
		return denied("net")
	}
	regSet(st, winServerKey, "srvcomment", "REG_SZ", v)
	return Reply{Stdout: "The command completed successfully.\r\n\r\n"}
}

func cutFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}
