package xcatemu

import (
	"slices"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"
)

// TestDiskFirst: a disk-first node installs only when nextboot net was set
// after the last bootstate; otherwise it boots the OS on its disk.
func TestDiskFirst(t *testing.T) {
	t.Parallel()
	var (
		bootstate = put{"bootstate", "osimage", "rocky9-install-compute"}
		nextboot  = put{"nextboot", "order", "net"}
		boot      = put{"power", "action", "boot"}
		provision = put{"provision", "osimage", "rocky9-install-compute"}
	)
	cases := []struct {
		name     string
		mgt      string
		diskOS   string // provmethod the node is defined with: an OS on its disk
		calls    []put
		installs bool
		from     string
		status   string // the status the sequence ends at
	}{
		{name: "nextboot net after bootstate", mgt: "ipmi", diskOS: "old-image", calls: []put{bootstate, nextboot, boot},
			installs: true, from: "network", status: StatusBooted},
		{name: "no nextboot boots the old OS", mgt: "ipmi", diskOS: "old-image", calls: []put{bootstate, boot},
			from: "disk", status: StatusBooted},
		{name: "nextboot before bootstate is cancelled", mgt: "ipmi", diskOS: "old-image", calls: []put{nextboot, bootstate, boot},
			from: "disk", status: StatusBooted},
		{name: "no nextboot and an empty disk", mgt: "ipmi", calls: []put{bootstate, boot},
			from: "disk", status: StatusPoweringOn},
		{name: "provision sets nextboot on ipmi", mgt: "ipmi", diskOS: "old-image", calls: []put{provision},
			installs: true, from: "network", status: StatusBooted},
		{name: "provision sets nextboot on openbmc", mgt: "openbmc", diskOS: "old-image", calls: []put{provision},
			installs: true, from: "network", status: StatusBooted},
		{name: "provision does not on kvm", mgt: "kvm", diskOS: "old-image", calls: []put{provision},
			from: "disk", status: StatusBooted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{})
			e.s.AddNode("cn01", map[string]string{"mgt": c.mgt, "provmethod": c.diskOS})
			if err := e.s.SetBehavior("cn01", Behavior{DiskFirst: true}); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, p := range c.calls {
				if code, b := e.do("PUT", "/nodes/cn01/"+p.res, p.body(), true); code != 200 {
					t.Fatalf("PUT %s %s: %d %s", p.res, p.body(), code, b)
				}
				want = append(want, p.history())
			}
			poll.Within(t, 5*time.Second, c.status, func() bool { st, _ := e.s.Node("cn01"); return st.Status == c.status })
			st, _ := e.s.Node("cn01")
			if _, maxSeen := e.s.Installs(); (maxSeen > 0) != c.installs {
				t.Errorf("installs seen: %d, want an install: %v", maxSeen, c.installs)
			}
			if st.BootedFrom != c.from {
				t.Errorf("booted from %q, want %q", st.BootedFrom, c.from)
			}
			if wantBS := map[bool]string{true: "boot", false: "install rocky9.4-x86_64-compute"}[c.installs]; st.Bootstate != wantBS {
				t.Errorf("bootstate %q, want %q", st.Bootstate, wantBS)
			}
			if c.from == "network" && st.NextBoot != "boot override inactive" {
				t.Errorf("nextboot after the boot: %q; the one-time override should be used up", st.NextBoot)
			}
			if !slices.Equal(st.History, want) {
				t.Errorf("history %q, want %q", st.History, want)
			}
		})
	}
}

// TestNetFirstIgnoresNextboot: without DiskFirst a node installs after
// bootstate and power boot alone, as before.
func TestNetFirstIgnoresNextboot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.install()
	poll.Within(t, 5*time.Second, "booted", func() bool { st, _ := e.s.Node("cn01"); return st.Status == StatusBooted })
	st, _ := e.s.Node("cn01")
	if _, maxSeen := e.s.Installs(); maxSeen != 1 || st.BootedFrom != "network" {
		t.Errorf("installs %d, booted from %q; want 1 install from the network", maxSeen, st.BootedFrom)
	}
}

// put is one PUT /nodes/cn01/<res> {"<key>":"<val>"}.
type put struct{ res, key, val string }

func (p put) body() string    { return `{"` + p.key + `":"` + p.val + `"}` }
func (p put) history() string { return p.res + " " + p.key + "=" + p.val }
