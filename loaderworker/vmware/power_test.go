package vmware_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/devlab/vcsim"
	"github.com/loadpool/loadpool/messages"
)

func TestPower(t *testing.T) {
	t.Parallel()
	booted := make(chan string, 8)
	r := newRig(t, vcsim.Options{Images: []string{}, PersistentVMs: []string{"vm-1"}, OnPowerOn: func(vm string) { booted <- vm }})
	computer := messages.Computer{Name: "vm-1", Provisioner: "vmware", Type: messages.TypeVirtualMachine}
	for _, tc := range []struct {
		action, state, detail string
		boots                 bool
	}{
		{messages.PowerStatus, "off", "powered off", false},
		{messages.PowerReset, "on", "was off; powered on instead of a reset", true},
		{messages.PowerOn, "on", "powered on", false},
		{messages.PowerReset, "on", "reset", true},
		{messages.PowerOff, "off", "powered off", false},
		{messages.PowerOff, "off", "powered off", false},
		{messages.PowerOn, "on", "powered on", true},
		{messages.PowerStatus, "on", "powered on", false},
	} {
		rep, err := r.p.Power(t.Context(), messages.PowerRequest{Computer: computer, Action: tc.action})
		if err != nil {
			t.Fatalf("%s: %v", tc.action, err)
		}
		if rep.State != tc.state || r.power(t, "vm-1") != tc.state || !strings.Contains(rep.Detail, tc.detail) {
			t.Fatalf("%s: reply %+v, simulator %s; want %s with %q", tc.action, rep, r.power(t, "vm-1"), tc.state, tc.detail)
		}
		if tc.boots {
			if got := <-booted; got != "vm-1" {
				t.Fatalf("%s booted %q", tc.action, got)
			}
		}
		select {
		case got := <-booted:
			t.Fatalf("%s: an unexpected boot of %s", tc.action, got)
		default:
		}
	}
}

func TestPowerEvidence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		shots    bool
		on       bool
		evidence string
		detail   string
	}{
		{"simulator without screenshots", false, true, "", "no console screenshot: this vSphere does not support CreateScreenshot_Task"},
		{"screenshot saved", true, true, "[LocalDS_0] vm-1/vm-1-screenshot-1.png", "console screenshot saved at [LocalDS_0] vm-1/"},
		{"VM off", true, false, "", "no console screenshot: the VM is not powered on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, vcsim.Options{Images: []string{}, PersistentVMs: []string{"vm-1"}, Screenshots: tc.shots})
			computer := messages.Computer{Name: "vm-1", Provisioner: "vmware", Type: messages.TypeVirtualMachine}
			if tc.on {
				if _, err := r.p.Power(t.Context(), messages.PowerRequest{Computer: computer, Action: messages.PowerOn}); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := r.p.Power(t.Context(), messages.PowerRequest{Computer: computer, Action: messages.PowerReset, Evidence: true})
			if err != nil {
				t.Fatalf("a screenshot must never fail the power action: %v", err)
			}
			if rep.State != "on" || rep.Evidence != tc.evidence || !strings.Contains(rep.Detail, tc.detail) {
				t.Fatalf("reply %+v, want on, evidence %q, detail with %q", rep, tc.evidence, tc.detail)
			}
			arts, err := r.p.ReadEvidence(t.Context(), messages.PowerRequest{Computer: computer}, rep)
			if err != nil {
				t.Fatalf("read the evidence back from the datastore: %v", err)
			}
			if tc.evidence == "" && len(arts) != 0 || tc.evidence != "" && (len(arts) != 1 || arts[0].Name != "screenshot.png" || !bytes.HasPrefix(arts[0].Data, []byte("\x89PNG"))) {
				t.Fatalf("evidence read back: %+v", arts)
			}
		})
	}
}

func TestPowerUnknownVM(t *testing.T) {
	t.Parallel()
	r := newRig(t, vcsim.Options{Images: []string{}})
	rep, err := r.p.Power(t.Context(), messages.PowerRequest{Computer: messages.Computer{Name: "vm-9"}, Action: messages.PowerStatus})
	if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), `no virtual machine named "/DC0/vm/vm-9"`) || !strings.Contains(err.Error(), "vm_path") || rep.State != "unknown" {
		t.Fatalf("reply %+v, err %v; want unknown and a permanent error naming vm-9", rep, err)
	}
}
