package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
	"golang.org/x/crypto/ssh"
)

// Every mistake an operator can make on the computer commands is caught
// before anything is sent, with a message that says what to fix.
func TestComputerUsageErrors(t *testing.T) {
	t.Setenv("LOADPOOL_NATS_URL", "nats://127.0.0.1:1") // nothing may be sent: no server there
	dir := t.TempDir()
	key := testHostKey(t)
	keyFile := filepath.Join(dir, "host.pub")
	write(t, keyFile, key+" root@vm-01\n")
	typo := filepath.Join(dir, "typo.json")
	write(t, typo, `{"computers":[{"name":"vm-01","provisioner":"sim","type":"lab"},{"name":"vm-02","provisioner":"sim","type":"lab","adress":"x"}]}`)
	dup := filepath.Join(dir, "dup.json")
	write(t, dup, `[{"name":"vm-01","provisioner":"sim","type":"lab"},{"name":"vm-01","provisioner":"sim","type":"blade"}]`)
	badType := filepath.Join(dir, "type.json")
	write(t, badType, `[{"name":"vm-01","provisioner":"sim","type":"desktop"}]`)
	empty := filepath.Join(dir, "empty.json")
	write(t, empty, `{"computers": []}`)
	add := []string{"computer", "add", "vm-01", "--provisioner", "sim", "--type", "virtualmachine"}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no verb", []string{"computer"}, 2, "give a verb: add, import"},
		{"unknown verb", []string{"computer", "frob"}, 2, `unknown verb "frob"`},
		{"verbs listed", []string{"computer", "--help"}, 0, "release  End the reservation"},
		{"add help", []string{"computer", "add", "--help"}, 0, "--host-key-file"},
		{"add no name", []string{"computer", "add", "--provisioner", "sim"}, 2, "give the computer's name"},
		{"add no provisioner", []string{"computer", "add", "vm-01", "--type", "lab"}, 2, "--provisioner is required"},
		{"add no type", []string{"computer", "add", "vm-01", "--provisioner", "sim"}, 2, "--type is required: virtualmachine, blade or lab"},
		{"add bad type", []string{"computer", "add", "vm-01", "--provisioner", "sim", "--type", "desktop"}, 2, `--type: must be "virtualmachine"`},
		{"add bad provisioner", []string{"computer", "add", "vm-01", "--provisioner", "a.b", "--type", "lab"}, 2, "--provisioner: must be 1-64 letters"},
		{"add bad address", append(add, "--address", "a:b:c:99999"), 2, "--address: must be host or host:port"},
		{"add bad control", append(add, "--control", "rdp"), 2, `--control: must be "ssh" or "qga"`},
		{"add bad attr", append(add, "--attr", "novalue"), 2, "want key=value"},
		{"add attr twice", append(add, "--attr", "k=1", "--attr", "k=2"), 2, `attribute "k" given twice`},
		{"add bad key", append(add, "--host-key", "AAAA"), 2, "--host-key: not an SSH public key"},
		{"add both keys", append(add, "--host-key", key, "--host-key-file", keyFile), 2, "--host-key or --host-key-file, not both"},
		{"add missing key file", append(add, "--host-key-file", filepath.Join(dir, "nope.pub")), 1, "no such file"},
		{"add dash name", []string{"computer", "add", "--provisioner", "sim", "--type", "lab", "--", "-vm"}, 2, "names cannot start with '-'"},
		{"add bad name", []string{"computer", "add", "vm 1", "--provisioner", "sim", "--type", "lab"}, 2, "NAME: must be a host name"},
		{"add two names", []string{"computer", "add", "vm-01", "vm-02", "--provisioner", "sim", "--type", "lab"}, 2, `unexpected argument "vm-02"`},
		{"add unknown flag", append(add, "--image", "x"), 2, "flag provided but not defined: -image"},
		{"set nothing", []string{"computer", "set", "vm-01"}, 2, "nothing to change"},
		{"set empty type", []string{"computer", "set", "vm-01", "--type", ""}, 2, "--type"},
		{"set empty provisioner", []string{"computer", "set", "vm-01", "--provisioner", ""}, 2, "--provisioner"},
		{"set bad address", []string{"computer", "set", "vm-01", "--address", "a b"}, 2, "--address: must be host"},
		{"remove no name", []string{"computer", "remove"}, 2, "give the computer's name"},
		{"show two", []string{"computer", "show", "a", "b"}, 2, `unexpected argument "b"`},
		{"drain no reason", []string{"computer", "drain", "vm-01"}, 2, "--reason is required"},
		{"drain blank reason", []string{"computer", "drain", "vm-01", "--reason", "  "}, 2, "--reason is required"},
		{"release no used", []string{"computer", "release", "vm-01"}, 2, "--used=true or --used=false is required"},
		{"release used spaced", []string{"computer", "release", "vm-01", "--used", "false"}, 2, "write --used=false (with '=')"},
		{"release used garbage", []string{"computer", "release", "vm-01", "--used=maybe"}, 2, "want true or false"},
		{"release no name", []string{"computer", "release", "--used=false"}, 2, "give the computer's name"},
		{"list bad state", []string{"computer", "list", "--state", "sideways"}, 2, "--state must be one of available, reloading, inuse, maintenance, failed"},
		{"list bad provisioner", []string{"computer", "list", "--provisioner", "a b"}, 2, "--provisioner: must be"},
		{"list positional", []string{"computer", "list", "vm-01"}, 2, "unexpected argument"},
		{"computers bad limit", []string{"computers", "--limit", "-1"}, 2, "--limit must be 0 (all) or more"},
		{"computers help", []string{"computers", "--help"}, 0, "name, provisioner, state, image, tainted, job, since"},
		{"import no file", []string{"computer", "import"}, 2, "give one file"},
		{"import missing", []string{"computer", "import", filepath.Join(dir, "nope.json")}, 1, "no such file"},
		{"import typo", []string{"computer", "import", typo}, 2, `computers[1]: malformed JSON: unknown field "adress"`},
		{"import duplicate", []string{"computer", "import", dup}, 2, "computers[1].name: vm-01 is listed twice (also computers[0])"},
		{"import bad type", []string{"computer", "import", badType}, 2, "computers[0].type: must be"},
		{"import empty", []string{"computer", "import", empty}, 2, "lists no computers"},
		{"submit names only", []string{"submit", "--computer", "vm-01", "--address", "10.0.0.1"}, 2, "flag provided but not defined: -address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, context.Background(), c.args...)
			if code != c.code || !strings.Contains(out+errOut, c.want) {
				t.Errorf("%q: exit %d, output %q; want exit %d mentioning %q", c.args, code, out+errOut, c.code, c.want)
			}
		})
	}
}

// Names and flags in any order; -- ends the flags.
func TestParseArgs(t *testing.T) {
	cases := []struct {
		args []string
		pos  []string
		prov string
	}{
		{[]string{"vm-01", "--provisioner", "sim"}, []string{"vm-01"}, "sim"},
		{[]string{"--provisioner", "sim", "vm-01"}, []string{"vm-01"}, "sim"},
		{[]string{"--provisioner=sim", "vm-01", "--used"}, []string{"vm-01"}, "sim"},
		{[]string{"--provisioner", "sim", "--", "vm-01", "--used"}, []string{"vm-01", "--used"}, "sim"},
		{[]string{"--", "-odd"}, []string{"-odd"}, ""},
		{[]string{"a", "b", "--provisioner", "x", "c"}, []string{"a", "b", "c"}, "x"},
		{nil, nil, ""},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		prov := fs.String("provisioner", "", "")
		fs.Bool("used", false, "")
		pos, err := parseArgs(fs, c.args)
		if err != nil || !slices.Equal(pos, c.pos) || *prov != c.prov {
			t.Errorf("%q: positional %q provisioner %q err %v; want %q %q", c.args, pos, *prov, err, c.pos, c.prov)
		}
	}
}

func TestDecodeComputers(t *testing.T) {
	want := []messages.Computer{{Name: "vm-01", Provisioner: "vmware", Type: "virtualmachine", Attributes: map[string]string{"vm_path": "/dc/vm/vm-01"}},
		{Name: "blade-01", Provisioner: "xcat", Type: "blade", Address: "10.0.0.7", Control: "ssh"}}
	for _, text := range []string{
		`{"computers": [{"name":"vm-01","provisioner":"vmware","type":"virtualmachine","attributes":{"vm_path":"/dc/vm/vm-01"}},
		 {"name":"blade-01","provisioner":"xcat","type":"blade","address":"10.0.0.7","control":"ssh"}]}`,
		` [{"name":"vm-01","provisioner":"vmware","type":"virtualmachine","attributes":{"vm_path":"/dc/vm/vm-01"}},
		 {"name":"blade-01","provisioner":"xcat","type":"blade","address":"10.0.0.7","control":"ssh"}]` + "\n",
	} {
		got, err := decodeComputers([]byte(text))
		if err != nil || len(got) != 2 || !messages.SameEnrollment(got[0], want[0]) || !messages.SameEnrollment(got[1], want[1]) {
			t.Errorf("decodeComputers: %+v, %v; want %+v", got, err, want)
		}
	}
	for text, wantErr := range map[string]string{
		``:                    "is empty",
		`vm-01,sim,lab`:       "is not JSON",
		`{"computer": []}`:    `unknown field "computer"`,
		`[{"name":"a"}] [{}]`: "more than one value",
		`[{"name":"a","provisioner":"p","type":"lab","learned_host_key":{"key":"ssh-ed25519 AAAA"}}]`: "computers[0].learned_host_key: is the coordinator's",
		`["vm-01"]`: "computers[0]: malformed JSON",
	} {
		if _, err := decodeComputers([]byte(text)); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("decodeComputers(%q): %v; want an error mentioning %q", text, err, wantErr)
		}
	}
}

func TestParseHostKey(t *testing.T) {
	key := testHostKey(t)
	for _, text := range []string{key, key + " root@vm-01", "# keyscan\n\nvm-01 " + key + "\n", "[10.0.0.1]:2222 " + key} {
		if got, err := parseHostKey(text); err != nil || got != key {
			t.Errorf("parseHostKey(%q) = %q, %v; want %q", text, got, err, key)
		}
	}
	for _, text := range []string{"", "# nothing\n", "ssh-ed25519 notbase64", "vm-01 AAAA"} {
		if got, err := parseHostKey(text); err == nil {
			t.Errorf("parseHostKey(%q) = %q; want an error", text, got)
		}
	}
}

func TestPrintComputers(t *testing.T) {
	since := time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local)
	var b strings.Builder
	err := printComputers(&b, []messages.Enrollment{
		{Computer: messages.Computer{Name: "vm-01", Provisioner: "sim"}, State: "inuse", Image: "ubuntu-24.04", Job: "demo-linux", Tainted: true, Since: since},
		{Computer: messages.Computer{Name: "blade-0001", Provisioner: "xcat"}, State: "available"},
	})
	want := "" +
		"NAME        PROVISIONER  STATE      IMAGE         TAINTED  JOB         SINCE\n" +
		"vm-01       sim          inuse      ubuntu-24.04  yes      demo-linux  2026-12-01 09:30:00\n" +
		"blade-0001  xcat         available  -             no       -           -\n"
	if err != nil || b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPrintEnrollment(t *testing.T) {
	cases := []struct {
		e    messages.Enrollment
		want []string
	}{
		{messages.Enrollment{Computer: messages.Computer{Name: "vm-01", Provisioner: "sim", Type: "virtualmachine", Address: "127.0.0.1:2201",
			HostKey: "ssh-ed25519 AAAAC3", Attributes: map[string]string{"b": "2", "a": "1"}}, State: "maintenance", Reason: "disk replaced"},
			[]string{"computer vm-01: maintenance (new jobs refused: disk replaced)", "  address      127.0.0.1:2201",
				"  control      ssh (default)", "  host key     ssh-ed25519 AAAAC3 (pinned)", "  attributes   a=1 b=2", "  image        - (none loaded yet)"}},
		{messages.Enrollment{Computer: messages.Computer{Name: "blade-01", Provisioner: "xcat", Type: "blade",
			LearnedHostKey: &messages.LearnedHostKey{Key: "ssh-ed25519 AAAAL", JobID: "res-9", Attempt: 2}}, State: "inuse", Job: "res-9", Tainted: true},
			[]string{"computer blade-01: inuse (handed to a reservation by job res-9; loadpool computer release blade-01 --used=true|false ends it), tainted: the next job reloads it",
				"  address      blade-01:22 (the name, port 22)", "  host key     ssh-ed25519 AAAAL (learned after job res-9 attempt 2 reloaded it"}},
		{messages.Enrollment{Computer: messages.Computer{Name: "vm-02", Provisioner: "sim", Type: "virtualmachine"}, State: "available", Image: "debian-12"},
			[]string{"computer vm-02: available, not tainted: a job for debian-12 may skip the reload", "  host key     - (learned right after its next reload)"}},
	}
	for _, c := range cases {
		var b strings.Builder
		printEnrollment(&b, c.e)
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("output lacks %q:\n%s", w, b.String())
			}
		}
	}
}

func testHostKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}
