package libvirt_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/loadpool/loadpool/devlab/guest"
	"github.com/loadpool/loadpool/loaderworker/libvirt"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/outcome"
)

type events []string

func (e *events) Event(s string) { *e = append(*e, s) }

func request(c messages.Computer, image, reload string) messages.Request {
	return messages.Request{JobID: "job-1", Attempt: 1, Step: messages.StepLoad, Computer: c,
		Image: messages.Image{Name: image, OSFamily: "linux"}, Reload: reload}
}

// Permanent errors say what to fix and never reach libvirtd.
func TestPermanentErrors(t *testing.T) {
	r := newRig(t)
	c := r.computer(t, "perm")
	for _, tc := range []struct {
		name  string
		mod   func(*messages.Request)
		words []string
	}{
		{"no such image", func(q *messages.Request) { q.Image.Name = "nope" }, []string{`image "nope"`, "LOADPOOL_LIBVIRT_IMAGES", "disk.qcow2"}},
		{"image name with a slash", func(q *messages.Request) { q.Image.Name = "../etc" }, []string{"not a usable directory name"}},
		{"bad memory", func(q *messages.Request) { q.Computer.Attributes = map[string]string{libvirt.AttrMemoryMiB: "lots"} }, []string{"memory_mib", "enrolment"}},
		{"port below 1024", func(q *messages.Request) { q.Computer.Attributes = map[string]string{libvirt.AttrSSHPort: "22"} }, []string{"ssh_port", "127.0.0.1"}},
		{"bad domain name", func(q *messages.Request) { q.Computer.Attributes = map[string]string{libvirt.AttrDomain: "a b"} }, []string{"domain", "enrolment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(c, guest.Base, messages.ReloadAlways)
			tc.mod(&req)
			_, err := r.p.Load(context.Background(), req, &events{})
			if !outcome.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
	if s := r.lab.State(c.Name); s != "absent" {
		t.Fatalf("a refused load defined the domain: %s", s)
	}
}

// The definition keeps the guest's network to one loopback port forward,
// gives the identity through fw_cfg, and records the load in metadata.
func TestDomainDefinition(t *testing.T) {
	r := newRig(t)
	c := r.computer(t, "def")
	if _, err := r.p.Load(context.Background(), request(c, guest.Base, messages.ReloadIfNeeded), &events{}); err != nil {
		t.Fatal(err)
	}
	x := r.lab.XML(c.Name)
	for _, w := range []string{
		"restrict=on,hostfwd=tcp:127.0.0.1:" + c.Attributes[libvirt.AttrSSHPort] + "-:22'",
		"name='opt/loadpool/hostname'>" + c.Name + "<", "<lp:image>debian12</lp:image>", "<lp:job>job-1</lp:job>",
		"<memory unit='KiB'>393216</memory>", "type='qemu'", "org.qemu.guest_agent.0", "tb-cache unit='KiB'>65536<",
	} {
		if !strings.Contains(x, w) {
			t.Errorf("domain XML lacks %q", w)
		}
	}
	if n := len(regexp.MustCompile(`hostfwd=`).FindAllString(x, -1)); n != 1 {
		t.Errorf("%d port forwards, want 1", n)
	}
	if strings.Contains(x, "<interface") || strings.Contains(x, "<graphics") {
		t.Error("the domain has a libvirt network interface or a graphics listener: only the restricted user network is allowed")
	}
}

// Evidence: a PNG screen dump of the running guest and its console log.
func TestEvidence(t *testing.T) {
	r := newRig(t)
	c := r.computer(t, "ev")
	if _, err := r.p.Load(context.Background(), request(c, guest.Base, messages.ReloadAlways), &events{}); err != nil {
		t.Fatal(err)
	}
	rep, err := r.p.Power(context.Background(), messages.PowerRequest{Computer: c, Action: messages.PowerStatus, Evidence: true})
	if err != nil || rep.State != "on" {
		t.Fatalf("power status = %+v, %v", rep, err)
	}
	m := regexp.MustCompile(`screen (\S+\.png); console log (\S+)`).FindStringSubmatch(rep.Evidence)
	if m == nil {
		t.Fatalf("evidence %q names no screen dump and console log (%s)", rep.Evidence, rep.Detail)
	}
	png, err := os.ReadFile(m[1])
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screen dump %s: %v, not a PNG (%d bytes)", m[1], err, len(png))
	}
	if _, err := os.Stat(m[2]); err != nil {
		t.Fatalf("console log: %v", err)
	}
	arts, err := r.p.ReadEvidence(context.Background(), messages.PowerRequest{}, rep)
	if err != nil || len(arts) != 2 || arts[0].Name != "screenshot.png" || !bytes.Equal(arts[0].Data, png) || arts[1].Name != "serial.log" {
		t.Fatalf("ReadEvidence = %d artifacts, %v", len(arts), err)
	}
	// A computer without a domain: fail, saying what to do.
	other := r.computer(t, "none")
	_, err = r.p.Power(context.Background(), messages.PowerRequest{Computer: other, Action: messages.PowerReset})
	if !outcome.IsPermanent(err) || !strings.Contains(err.Error(), "load an image onto it first") {
		t.Fatalf("power of a computer without a domain: %v", err)
	}
}
