package xcat

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/devlab/xcatemu"
	"github.com/loadpool/loadpool/messages"
)

// TestLoadBootSequence checks the commands a load sends, in order, for
// BMC-managed and other nodes, with firmware that boots the network or the
// disk first, on a first attempt and a later one. A disk-first node whose
// disk holds an OS installs only if nextboot net was sent.
func TestLoadBootSequence(t *testing.T) {
	t.Parallel()
	const (
		bootstate = "bootstate osimage=" + testImage
		nextboot  = "nextboot order=net"
		boot      = "power action=boot"
		off       = "power action=off"
	)
	cases := []struct {
		name      string
		mgt       string
		diskFirst bool
		attempt   int
		history   []string // the PUTs the node served
		from      string   // what its last boot booted from
		err       string   // regexp of the (retry) error; "" means ready
		events    []string // regexps some event must match
		noEvents  []string // regexps no event may match
	}{
		{name: "ipmi disk-first", mgt: "ipmi", diskFirst: true, history: []string{bootstate, nextboot, boot}, from: "network",
			events: []string{`node cn01 is BMC-managed \(mgt ipmi\): setting its next boot to the network`}, noEvents: []string{`cold start`}},
		{name: "openbmc disk-first", mgt: "openbmc", diskFirst: true, history: []string{bootstate, nextboot, boot}, from: "network",
			events: []string{`\(mgt openbmc\)`}},
		{name: "kvm", mgt: "kvm", history: []string{bootstate, boot}, from: "network", noEvents: []string{`BMC-managed`}},
		{name: "no mgt", history: []string{bootstate, boot}, from: "network", noEvents: []string{`BMC-managed`}},
		{name: "kvm disk-first boots the old OS", mgt: "kvm", diskFirst: true, history: []string{bootstate, boot}, from: "disk",
			err: `node cn01 reported status booted but its bootstate is still "install rocky9.4-x86_64-compute": the install never ran`},
		{name: "attempt 2 cold start", mgt: "ipmi", diskFirst: true, attempt: 2, history: []string{off, bootstate, nextboot, boot}, from: "network",
			events: []string{`attempt 2: powering node cn01 off first, so that the power boot below is a cold start`}},
		{name: "attempt 3 kvm cold start", mgt: "kvm", attempt: 3, history: []string{off, bootstate, boot}, from: "network",
			events: []string{`attempt 3: powering node cn01 off first`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOpt{})
			// A node that ran another image: its disk holds an OS, and
			// it is on (so attempt 2's off is a real power cycle).
			r.emu.AddNode(testNode, map[string]string{"mgt": c.mgt, "provmethod": "old-image", "bootstate": "boot", "power": "on", "status": "booted"})
			if err := r.emu.SetBehavior(testNode, xcatemu.Behavior{DiskFirst: c.diskFirst}); err != nil {
				t.Fatal(err)
			}
			req := request(testNode, testImage, messages.ReloadIfNeeded)
			req.Attempt = max(c.attempt, 1)
			rep, evs, err := r.load(req)
			switch {
			case c.err == "" && (err != nil || !rep.Reloaded):
				t.Fatalf("Load: %+v, %v; want ready", rep, err)
			case c.err != "" && err == nil:
				t.Fatalf("Load: %+v; want an error matching %q", rep, c.err)
			case c.err != "" && (outcome.IsPermanent(err) || !regexp.MustCompile(c.err).MatchString(err.Error())):
				t.Errorf("error %q (permanent %v); want retry matching %q", err, outcome.IsPermanent(err), c.err)
			}
			st, _ := r.emu.Node(testNode)
			if !slices.Equal(st.History, c.history) {
				t.Errorf("commands sent %q, want %q", st.History, c.history)
			}
			if st.BootedFrom != c.from {
				t.Errorf("the node booted from %q, want %q", st.BootedFrom, c.from)
			}
			joined := strings.Join(evs, "\n")
			for _, re := range c.events {
				if !regexp.MustCompile(re).MatchString(joined) {
					t.Errorf("no event matches %q:\n%s", re, joined)
				}
			}
			for _, re := range c.noEvents {
				if regexp.MustCompile(re).MatchString(joined) {
					t.Errorf("an event matches %q:\n%s", re, joined)
				}
			}
		})
	}
}

// TestLoadNextbootErrors: a failing nextboot call is classified like the
// other calls: a transient 403 is retried inside the step, an unknown
// node fails.
func TestLoadNextbootErrors(t *testing.T) {
	t.Parallel()
	t.Run("transient 403 then works", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, rigOpt{})
		// Inject the fault once the bootstate was read back: the next
		// request is the nextboot PUT.
		hooked := &hookProgress{on: "BMC-managed", do: func() { r.emu.FailNext(1, xcatemu.Fault{Code: 403}) }}
		rep, err := r.prov.Load(t.Context(), request(testNode, testImage, messages.ReloadAlways), hooked)
		if err != nil || !rep.Reloaded {
			t.Fatalf("Load: %+v, %v; want ready after one retried nextboot", rep, err)
		}
		if !hooked.fired {
			t.Fatal("the fault was never injected")
		}
		if !strings.Contains(r.logs.String(), "op=\"nextboot net\"") {
			t.Errorf("no retry of nextboot logged:\n%s", r.logs.String())
		}
	})
	t.Run("transient 403 that lasts", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, rigOpt{})
		hooked := &hookProgress{on: "BMC-managed", do: func() { r.emu.FailNext(3, xcatemu.Fault{Code: 403}) }}
		_, err := r.prov.Load(t.Context(), request(testNode, testImage, messages.ReloadAlways), hooked)
		if err == nil || outcome.IsPermanent(err) || !strings.Contains(err.Error(), "xCAT nextboot net of node cn01: HTTP 403") {
			t.Fatalf("Load: %v; want a retry naming the nextboot call", err)
		}
		if st, _ := r.emu.Node(testNode); slices.Contains(st.History, "power action=boot") {
			t.Errorf("the node was powered although nextboot failed: %q", st.History)
		}
	})
}

// hookProgress runs do (once) when an event containing on is sent.
type hookProgress struct {
	on    string
	do    func()
	fired bool
}

func (h *hookProgress) Event(m string) {
	if !h.fired && strings.Contains(m, h.on) {
		h.fired = true
		h.do()
	}
}
