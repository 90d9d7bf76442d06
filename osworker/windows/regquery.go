package windows

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// RegValue is one value line of `reg query` output.
type RegValue struct {
	// Key is the key line above the value ("HKEY_LOCAL_MACHINE\...").
	Key string
	// Name is the value's name; "" for the default value ("<NO NAME>"
	// on XP, "(Default)" later).
	Name string
	// Type is the REG_* type; Data the data as printed, trailing spaces
	// trimmed (REG_MULTI_SZ items joined by a literal `\0`).
	Type, Data string
}

var regLine = regexp.MustCompile(`^\s*(.*?)\s+(REG_\w+)(?:\s+(.*))?$`)

// ParseRegQuery reads the output of `reg query` of either reg.exe
// generation (Vista+: four spaces between fields; XP/2003's reg.exe 3.0:
// a "! REG.EXE VERSION 3.0" header and TABs), CRLF, LF or a lone CR: lines starting
// with "!" are skipped, lines starting with HKEY set the key, value lines
// match `^\s*(.*?)\s+(REG_\w+)\s+(.*)$`, anything else is ignored.
func ParseRegQuery(out []byte) []RegValue {
	var vals []RegValue
	key := ""
	text := strings.ReplaceAll(strings.ReplaceAll(string(out), "\r\n", "\n"), "\r", "\n")
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "!"):
			continue
		case strings.HasPrefix(line, "HKEY"):
			key = strings.TrimRight(line, " \t")
			continue
		}
		m := regLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		if name == "<NO NAME>" || name == "(Default)" {
			name = ""
		}
		vals = append(vals, RegValue{Key: key, Name: name, Type: m[2], Data: strings.TrimRight(m[3], " \t")})
	}
	return vals
}

// FindValue returns the value called name (case-insensitive).
func FindValue(vals []RegValue, name string) (RegValue, bool) {
	for _, v := range vals {
		if strings.EqualFold(v.Name, name) {
			return v, true
		}
	}
	return RegValue{}, false
}

// DWORD reads REG_DWORD data: "0x2f0", or bare hex ("2f0").
func (v RegValue) DWORD() (uint32, error) {
	s := strings.ToLower(strings.TrimSpace(v.Data))
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("registry value %s (%s) is %q, not a DWORD", v.Name, v.Type, v.Data)
	}
	return uint32(n), nil
}
