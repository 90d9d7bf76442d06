package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"golang.org/x/crypto/ssh"
)

// The inventory's commands against `loadpool all` (TestAllWithClientCommands
// runs them in order on one system).

// expect runs a command and fails the test unless it exits with code and
// its output (stdout and stderr) holds every want; it returns stdout.
func expect(t *testing.T, ctx context.Context, code int, args []string, wants ...string) string {
	t.Helper()
	got, out, errOut := runCmd(t, ctx, args...)
	if got != code {
		t.Fatalf("loadpool %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errOut)
	}
	for _, w := range wants {
		if !strings.Contains(out+errOut, w) {
			t.Fatalf("loadpool %s: output lacks %q\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), w, out, errOut)
		}
	}
	return out
}

// enrolLab07 enrols the test's lab computer with its host key pinned from
// a file, as an operator would; a job for a computer not enrolled is 404.
func enrolLab07(t *testing.T, ctx context.Context, dir string, comp *devlab.Computer) {
	t.Helper()
	expect(t, ctx, 1, []string{"submit", "--computer", "lab-07", "--image", "ubuntu-24.04", "--os-family", "linux"},
		"404", "lab-07 is not enrolled")
	pub := filepath.Join(dir, "lab-07.pub")
	write(t, pub, "lab-07 "+string(ssh.MarshalAuthorizedKey(comp.HostKey()))) // ssh-keyscan's form
	add := []string{"computer", "add", "lab-07", "--provisioner", "lab", "--type", "lab", "--address", comp.Addr(), "--host-key-file", pub}
	expect(t, ctx, 0, add, "computer lab-07 enrolled: available")
	expect(t, ctx, 0, add, "computer lab-07 enrolled") // the same again: a no-op
	expect(t, ctx, 1, []string{"computer", "add", "lab-07", "--provisioner", "lab", "--type", "blade", "--address", comp.Addr()}, "409")
	expect(t, ctx, 0, []string{"computer", "show", "lab-07"}, "computer lab-07: available",
		"  address      "+comp.Addr(), "(pinned)", strings.Fields(string(ssh.MarshalAuthorizedKey(comp.HostKey())))[1])
}

// releaseUnused: lab-07 was handed to res-7's reservation (inuse,
// tainted); released unused it is available and not tainted.
func releaseUnused(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	out := expect(t, ctx, 0, []string{"computers"})
	if !regexp.MustCompile(`(?m)^` + name + ` +lab +inuse +ubuntu-24\.04 +yes +res-7 +\d{4}-`).MatchString(out) {
		t.Fatalf("computers: no row %s lab inuse ubuntu-24.04 yes res-7:\n%s", name, out)
	}
	expect(t, ctx, 2, []string{"computer", "release", name}, "--used=true or --used=false is required")
	expect(t, ctx, 0, []string{"computer", "release", name, "--used=false"},
		"computer "+name+" released (used: false): available, not tainted")
	expect(t, ctx, 1, []string{"computer", "release", name, "--used=true"}, "409") // not in use any more
}

// drainAndBack: a drained computer refuses jobs with the reason; undrained
// it takes them again.
func drainAndBack(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	expect(t, ctx, 0, []string{"computer", "drain", name, "--reason", "bad NIC"}, "computer "+name+" drained: maintenance (new jobs refused: bad NIC)")
	expect(t, ctx, 1, []string{"submit", "--id", "res-9", "--computer", name, "--image", "ubuntu-24.04", "--os-family", "linux"}, "409", "bad NIC")
	expect(t, ctx, 0, []string{"computer", "list", "--state", "maintenance"}, name)
	expect(t, ctx, 0, []string{"computer", "undrain", "--", name}, "computer "+name+" back in service")
	expect(t, ctx, 0, []string{"submit", "--id", "res-10", "--computer", name, "--image", "ubuntu-24.04", "--os-family", "linux", "--wait"}, "job ready")
}

// importMany enrols 1,500 computers from one file (several requests under
// the body limit), twice: the second time they are all unchanged; the
// table follows every page.
func importMany(t *testing.T, ctx context.Context, dir string) {
	t.Helper()
	const n = 1500
	comps := make([]messages.Computer, n)
	for i := range comps {
		name := fmt.Sprintf("vm-%04d", i)
		comps[i] = messages.Computer{Name: name, Provisioner: "vmware", Type: messages.TypeVirtualMachine,
			Address: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), Attributes: map[string]string{"vm_path": "/dc1/vm/lab/" + name}}
	}
	data, err := json.Marshal(map[string]any{"computers": comps})
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 2*messages.MaxBodyBytes {
		t.Fatalf("the import file is %d bytes: too small to need several requests", len(data))
	}
	file := filepath.Join(dir, "lab.json")
	write(t, file, string(data))
	expect(t, ctx, 0, []string{"computer", "import", file}, fmt.Sprintf("%d computers: %d added, 0 unchanged", n, n))
	expect(t, ctx, 0, []string{"computer", "import", file}, fmt.Sprintf("%d computers: 0 added, %d unchanged", n, n))
	out := expect(t, ctx, 0, []string{"computers", "--provisioner", "vmware"})
	if rows := strings.Count(out, "\n") - 1; rows != n || !strings.Contains(out, "\nvm-0000 ") || !strings.Contains(out, "\nvm-1499 ") {
		t.Fatalf("computers --provisioner vmware: %d rows, want %d from vm-0000 to vm-1499:\n%.2000s", rows, n, out)
	}
	if strings.Contains(out, "lab-07") {
		t.Fatalf("computers --provisioner vmware lists the lab computer:\n%.2000s", out)
	}
	out = expect(t, ctx, 0, []string{"computer", "list", "--limit", "3"})
	if rows := strings.Count(out, "\n") - 1; rows != 3 {
		t.Fatalf("computer list --limit 3: %d rows:\n%s", rows, out)
	}
	out = expect(t, ctx, 0, []string{"computer", "list", "--json"})
	var all messages.ComputerListReply
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all.Computers) != n+1 || all.Next != "" {
		t.Fatalf("computer list --json: %d computers, next %q, %v", len(all.Computers), all.Next, err)
	}
}

// setAndRemove changes an enrolment and removes a computer.
func setAndRemove(t *testing.T, ctx context.Context) {
	t.Helper()
	expect(t, ctx, 0, []string{"computer", "set", "vm-0007", "--address", "10.9.9.9:2222", "--attr", "vm_path=/dc1/vm/moved/vm-0007", "--control", "qga"},
		"computer vm-0007 changed", "  address      10.9.9.9:2222", "  control      qga", "  attributes   vm_path=/dc1/vm/moved/vm-0007")
	expect(t, ctx, 0, []string{"computer", "set", "vm-0007", "--attr", ""}, "computer vm-0007 changed")
	out := expect(t, ctx, 0, []string{"computer", "show", "vm-0007"}, "  address      10.9.9.9:2222")
	if strings.Contains(out, "attributes") {
		t.Fatalf("--attr '' did not clear the attributes:\n%s", out)
	}
	key := testHostKey(t)
	expect(t, ctx, 0, []string{"computer", "set", "--host-key", key + " root@vm-0007", "--", "vm-0007"}, "  host key     "+key+" (pinned)")
	expect(t, ctx, 0, []string{"computer", "set", "vm-0007", "--host-key", ""}, "  host key     - (learned right after its next reload)")
	expect(t, ctx, 1, []string{"computer", "set", "nope-1", "--type", "blade"}, "404")
	expect(t, ctx, 0, []string{"computer", "remove", "vm-0007"}, "computer vm-0007 removed from the inventory")
	expect(t, ctx, 1, []string{"computer", "show", "vm-0007"}, "404")
	expect(t, ctx, 1, []string{"computer", "remove", "vm-0007"}, "404")
	expect(t, ctx, 1, []string{"computer", "drain", "vm-0007", "--reason", "gone"}, "404")
}
