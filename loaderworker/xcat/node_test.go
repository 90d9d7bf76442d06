package xcat

import (
	"context"
	"strings"
	"testing"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/outcome"
)

// TestEnrolledNode: attributes.node names the computer's xCAT node; a node
// named like the computer is never touched (no bootstate, no power).
func TestEnrolledNode(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpt{nodes: 2})
	r.emu.AddNode("lab-blade-3", map[string]string{"mac": "52:54:00:aa:bb:03", "groups": "compute", "mgt": "ipmi"})
	c := messages.Computer{Name: "lab-blade-3", Provisioner: Name, Type: messages.TypeBlade,
		Attributes: map[string]string{AttrNode: "cn02"}}
	untouched := func(what string) {
		t.Helper()
		if st, err := r.emu.Node("lab-blade-3"); err != nil || len(st.History) != 0 || st.Power != "off" {
			t.Fatalf("%s: the node named like the computer was touched: %+v, %v", what, st, err)
		}
	}
	req := request("lab-blade-3", testImage, messages.ReloadAlways)
	req.Computer = c
	rep, _, err := r.load(req)
	if err != nil || !strings.Contains(rep.Detail, "cn02") {
		t.Fatalf("load onto the enrolled node: %+v, %v", rep, err)
	}
	if st, _ := r.emu.Node("cn02"); st.Status != "booted" || st.Provmethod != testImage {
		t.Fatalf("the enrolled node after the load: %+v", st)
	}
	untouched("load")
	ctx := context.Background()
	for _, action := range []string{messages.PowerOff, messages.PowerStatus, messages.PowerOn} {
		rep, err := r.prov.Power(ctx, messages.PowerRequest{Computer: c, Action: action})
		st, _ := r.emu.Node("cn02")
		if err != nil || rep.Computer != "lab-blade-3" || rep.State != st.Power {
			t.Fatalf("%s: %+v, %v; the enrolled node is %s", action, rep, err, st.Power)
		}
	}
	untouched("power")
	if st, _ := r.emu.Node(testNode); len(st.History) != 0 {
		t.Fatalf("another node was touched: %+v", st)
	}
}

// TestBadNodeAttribute: a node attribute that is a noderange (several
// nodes) or not a name is refused before any call to xCAT; one that xCAT
// expands to several nodes (ALLRESOURCES, a group) is refused before
// anything is set or powered.
func TestBadNodeAttribute(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpt{nodes: 2})
	for _, node := range []string{"cn01,cn02", "cn[01-02]", "cn01 cn02", "ALLRESOURCES"} {
		c := messages.Computer{Name: "lab-blade-3", Provisioner: Name, Type: messages.TypeBlade,
			Attributes: map[string]string{AttrNode: node}}
		_, err := r.prov.Power(context.Background(), messages.PowerRequest{Computer: c, Action: messages.PowerOn})
		if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), "attribute") {
			t.Errorf("node %q: %v, want a permanent refusal naming the attribute node", node, err)
		}
		req := request("lab-blade-3", testImage, messages.ReloadAlways)
		req.Computer = c
		if _, _, err := r.load(req); !outcome.IsPermanent(err) {
			t.Errorf("load with node %q: %v, want a permanent refusal", node, err)
		}
	}
	for _, n := range []string{"cn01", "cn02"} {
		if st, _ := r.emu.Node(n); len(st.History) != 0 {
			t.Errorf("node %s was touched: %v", n, st.History)
		}
	}
}
