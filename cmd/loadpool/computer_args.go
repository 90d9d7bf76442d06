package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/loadpool/loadpool/messages"
	"golang.org/x/crypto/ssh"
)

// Argument parsing of the `computer` commands: names and flags in any
// order (`add vm-01 --type blade` as well as `add --type blade vm-01`),
// `--` ends the flags.

// parseArgs parses flags wherever they are among args and returns the
// positional arguments, in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args, len(args)); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// oneName parses args and returns the one computer name they must hold.
func oneName(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	return nameOf(pos)
}

// nameOf returns the one computer name of the positional arguments.
func nameOf(pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", fmt.Errorf("%w: give the computer's name (see --help)", errUsage)
	case len(pos) > 1:
		return "", fmt.Errorf("%w: unexpected argument %q after the name %q (flags take one value: quote values with blanks)", errUsage, pos[1], pos[0])
	}
	return checkName(pos[0])
}

func checkName(name string) (string, error) {
	if strings.HasPrefix(name, "-") {
		return "", fmt.Errorf("%w: %q is not a computer name: names cannot start with '-'", errUsage, name)
	}
	if err := messages.ValidComputerName("NAME", name); err != nil {
		return "", fmt.Errorf("%w: %v", errUsage, err)
	}
	return name, nil
}

// attrFlag collects --attr k=v (repeatable). Given once as "", it stands
// for no attributes at all (computer set: clear them).
type attrFlag struct {
	m   map[string]string
	set bool
}

func (a *attrFlag) String() string {
	if a == nil || len(a.m) == 0 {
		return ""
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(a.m)) {
		kv = append(kv, k+"="+a.m[k])
	}
	return strings.Join(kv, ",")
}

func (a *attrFlag) Set(s string) error {
	if a.m == nil {
		a.m = map[string]string{}
	}
	a.set = true
	if s == "" {
		return nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value (e.g. --attr vm_path=/dc1/vm/lab/vm-017), not %q", s)
	}
	if _, dup := a.m[k]; dup {
		return fmt.Errorf("attribute %q given twice", k)
	}
	a.m[k] = v
	return nil
}

// usedFlag is release's required --used=true|false.
type usedFlag struct {
	v, set bool
}

func (u *usedFlag) String() string   { return strconv.FormatBool(u.v) }
func (u *usedFlag) IsBoolFlag() bool { return true }
func (u *usedFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, not %q", s)
	}
	u.v, u.set = v, true
	return nil
}

// enrolFlags are the enrolment's flags, shared by add and set.
type enrolFlags struct {
	provisioner, typ, address, hostKey, hostKeyFile, control string
	attrs                                                    attrFlag
}

func (e *enrolFlags) register(fs *flag.FlagSet, set bool) {
	verb := "that owns and loads it: vmware, xcat, lab, sim..."
	if set {
		verb = "(changes which pool loads it)"
	}
	fs.StringVar(&e.provisioner, "provisioner", "", "provisioner "+verb)
	fs.StringVar(&e.typ, "type", "", "computer type: "+messages.TypeVirtualMachine+", "+messages.TypeBlade+" or "+messages.TypeLab)
	fs.StringVar(&e.address, "address", "", "host or host:port the OS workers connect to (default: the name, port 22)")
	fs.StringVar(&e.hostKey, "host-key", "", "pin the SSH host key, authorized_keys form ('ssh-ed25519 AAAA...'); unset: learned after the first reload"+
		map[bool]string{true: "; '' clears the pin (learn again)", false: ""}[set])
	fs.StringVar(&e.hostKeyFile, "host-key-file", "", "read the host key to pin from this file (a .pub file or ssh-keyscan output)")
	fs.StringVar(&e.control, "control", "", "how OS workers reach it: "+messages.ControlSSH+" (default) or "+messages.ControlQGA)
	fs.Var(&e.attrs, "attr", "provisioner placement key=value, repeatable (vmware vm_path=..., xcat node=...)"+
		map[bool]string{true: "; replaces all attributes; --attr '' clears them", false: ""}[set])
}

// key returns the host key the flags give (normalised), and whether one
// was given at all.
func (e *enrolFlags) key(fs *flag.FlagSet) (string, bool, error) {
	inline, file := given(fs, "host-key"), given(fs, "host-key-file")
	switch {
	case inline && file:
		return "", false, fmt.Errorf("%w: give --host-key or --host-key-file, not both", errUsage)
	case file:
		data, err := os.ReadFile(e.hostKeyFile)
		if err != nil {
			return "", false, fmt.Errorf("--host-key-file: %v", err)
		}
		k, err := parseHostKey(string(data))
		if err != nil {
			return "", false, fmt.Errorf("%w: --host-key-file %s: %v", errUsage, e.hostKeyFile, err)
		}
		return k, true, nil
	case inline && e.hostKey == "":
		return "", true, nil
	case inline:
		k, err := parseHostKey(e.hostKey)
		if err != nil {
			return "", false, fmt.Errorf("%w: --host-key: %v", errUsage, err)
		}
		return k, true, nil
	}
	return "", false, nil
}

// parseHostKey reads the first key of an authorized_keys, .pub or
// ssh-keyscan/known_hosts text ("[host] type base64 [comment]") and
// returns it as "type base64".
func parseHostKey(text string) (string, error) {
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			if _, after, ok := strings.Cut(line, " "); ok { // known_hosts: a host first
				pk, _, _, _, err = ssh.ParseAuthorizedKey([]byte(after))
			}
		}
		if err != nil {
			return "", errors.New("not an SSH public key: want 'ssh-ed25519 AAAA...' (the host's /etc/ssh/ssh_host_ed25519_key.pub, or ssh-keyscan output)")
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), nil
	}
	return "", errors.New("holds no key: want 'ssh-ed25519 AAAA...' (the host's /etc/ssh/ssh_host_ed25519_key.pub, or ssh-keyscan output)")
}

// given reports whether the flag was on the command line.
func given(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// flagError turns a validation error on an enrolment into one that names
// the flag to fix.
func flagError(err error) error {
	var fe *messages.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	field := fe.Field[strings.LastIndex(fe.Field, ".")+1:]
	if strings.Contains(fe.Field, ".attributes") {
		field = "attributes"
	}
	flagName, ok := map[string]string{"name": "NAME", "provisioner": "--provisioner", "type": "--type", "address": "--address",
		"host_key": "--host-key", "control": "--control", "attributes": "--attr"}[field]
	if !ok {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return fmt.Errorf("%w: %s: %s", errUsage, flagName, fe.Msg)
}
