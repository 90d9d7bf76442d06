package devlab

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The registry lives in State.Files: "registry:<KEY>|<NAME>" (upper case,
// HKLM form) -> "<Name as written>\x00<REG_TYPE>\x00<data>".
const regPrefix = "registry:"

const (
	regNotFoundVista = "ERROR: The system was unable to find the specified registry key or value.\r\n"
	regNotFoundXP    = "\r\nError:  The system was unable to find the specified registry key or value\r\n"
	regOK            = "The operation completed successfully.\r\n"
)

// regKey normalizes a key to upper-case HKLM form; ok is false for a
// hive this emulation does not know.
func regKey(key string) (string, bool) {
	k := strings.TrimRight(strings.ReplaceAll(key, "/", `\`), `\`)
	hive, rest, _ := strings.Cut(k, `\`)
	switch strings.ToUpper(hive) {
	case "HKLM", "HKEY_LOCAL_MACHINE":
		return strings.ToUpper(`HKLM\` + rest), true
	}
	return "", false
}

// longKey is the key as reg.exe prints it.
func longKey(key string) string {
	hive, rest, _ := strings.Cut(strings.TrimRight(key, `\`), `\`)
	if strings.EqualFold(hive, "HKLM") {
		hive = "HKEY_LOCAL_MACHINE"
	}
	return hive + `\` + rest
}

func regFile(key, name string) string {
	k, _ := regKey(key)
	return regPrefix + k + "|" + strings.ToUpper(name)
}

func regSet(st *State, key, name, typ, data string) {
	st.Files[regFile(key, name)] = name + "\x00" + typ + "\x00" + data
}

func regDelete(st *State, key, name string) { delete(st.Files, regFile(key, name)) }

type regValue struct{ name, typ, data string }

func regGet(st *State, key, name string) (regValue, bool) {
	v, ok := st.Files[regFile(key, name)]
	if !ok {
		return regValue{}, false
	}
	p := strings.SplitN(v, "\x00", 3)
	return regValue{p[0], p[1], p[2]}, true
}

// regValues lists a key's values by name.
func regValues(st *State, key string) []regValue {
	k, _ := regKey(key)
	var vs []regValue
	for f, v := range st.Files {
		if strings.HasPrefix(f, regPrefix+k+"|") {
			p := strings.SplitN(v, "\x00", 3)
			vs = append(vs, regValue{p[0], p[1], p[2]})
		}
	}
	sort.Slice(vs, func(i, j int) bool { return strings.ToUpper(vs[i].name) < strings.ToUpper(vs[j].name) })
	return vs
}

// WindowsRegValue reads a value from a snapshot of a Windows computer:
// its type and data as reg.exe prints them ("REG_DWORD", "0x0").
func WindowsRegValue(st State, key, name string) (typ, data string, ok bool) {
	v, ok := regGet(&st, key, name)
	return v.typ, v.data, ok
}

// reg answers `reg query` and `reg add`.
func (w *Windows) reg(args []string, st *State) Reply {
	if len(args) < 2 {
		return Reply{Stderr: "ERROR: Invalid syntax.\r\nType \"REG /?\" for usage.\r\n", Exit: 1}
	}
	if _, ok := regKey(args[1]); !ok {
		return Reply{Stderr: "ERROR: Invalid key name.\r\nType \"REG " + strings.ToUpper(args[0]) + " /?\" for usage.\r\n", Exit: 1}
	}
	switch strings.ToLower(args[0]) {
	case "query":
		return w.regQuery(args[1], args[2:], st)
	case "add":
		return w.regAdd(args[1], args[2:], st)
	}
	return Reply{Stderr: "ERROR: Invalid syntax.\r\nType \"REG /?\" for usage.\r\n", Exit: 1}
}

func (w *Windows) regQuery(key string, opts []string, st *State) Reply {
	var vs []regValue
	switch {
	case len(opts) == 2 && strings.EqualFold(opts[0], "/v"):
		v, ok := regGet(st, key, opts[1])
		if !ok {
			return w.regNotFound()
		}
		vs = []regValue{v}
	case len(opts) == 1 && strings.EqualFold(opts[0], "/ve"):
		v, ok := regGet(st, key, "")
		if !ok {
			return w.regNotFound()
		}
		vs = []regValue{v}
	case len(opts) == 0:
		vs = regValues(st, key)
		if len(vs) == 0 {
			return w.regNotFound()
		}
	default:
		return Reply{Stderr: "ERROR: Invalid syntax.\r\nType \"REG QUERY /?\" for usage.\r\n", Exit: 1}
	}
	return Reply{Stdout: w.formatQuery(longKey(key), vs)}
}

func (w *Windows) regNotFound() Reply {
	if w.Legacy() {
		return Reply{Stderr: regNotFoundXP, Exit: 1}
	}
	return Reply{Stderr: regNotFoundVista, Exit: 1}
}

// formatQuery prints values the way this reg.exe generation does.
func (w *Windows) formatQuery(key string, vs []regValue) string {
	var b strings.Builder
	if w.Legacy() {
		b.WriteString("\r\n! REG.EXE VERSION 3.0\r\n\r\n" + key + "\r\n")
		for _, v := range vs {
			fmt.Fprintf(&b, "    %s\t%s\t%s\r\n", orDefault(v.name, "<NO NAME>"), v.typ, v.data)
		}
		b.WriteString("\r\n")
		return b.String()
	}
	b.WriteString("\r\n" + key + "\r\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "    %s    %s    %s\r\n", orDefault(v.name, "(Default)"), v.typ, v.data)
	}
	b.WriteString("\r\n")
	return b.String()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// regAdd handles `reg add KEY /v NAME [/t TYPE] [/d DATA] /f`.
func (w *Windows) regAdd(key string, opts []string, st *State) Reply {
	name, typ, data, force := "", "REG_SZ", "", false
	for i := 0; i < len(opts); i++ {
		o := strings.ToLower(opts[i])
		switch {
		case o == "/f":
			force = true
		case o == "/ve":
			name = ""
		case (o == "/v" || o == "/t" || o == "/d") && i+1 < len(opts):
			i++
			switch o {
			case "/v":
				name = opts[i]
			case "/t":
				typ = strings.ToUpper(opts[i])
			default:
				data = opts[i]
			}
		default:
			return Reply{Stderr: "ERROR: Invalid syntax.\r\nType \"REG ADD /?\" for usage.\r\n", Exit: 1}
		}
	}
	if !force {
		return Reply{Stderr: "devlab: reg add without /f would prompt (no stdin)\r\n", Exit: 1}
	}
	if w.DenyWrites {
		return denied("reg")
	}
	if typ == "REG_DWORD" {
		n, err := strconv.ParseUint(data, 0, 32)
		if err != nil {
			return Reply{Stderr: "ERROR: Invalid syntax.\r\nType \"REG ADD /?\" for usage.\r\n", Exit: 1}
		}
		data = "0x" + strconv.FormatUint(n, 16)
	}
	regSet(st, key, name, typ, data)
	return Reply{Stdout: regOK}
}
