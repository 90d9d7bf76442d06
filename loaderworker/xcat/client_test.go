package xcat

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/devlab/xcatemu"
	"github.com/loadpool/loadpool/messages"
)

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := Config{URL: "https://mn.example.org/xcatws", User: "u", Password: "p"}
	cases := []struct {
		name string
		mut  func(*Config)
		want string // the error names the variable and what to do
	}{
		{"no URL", func(c *Config) { c.URL = "" }, "LOADPOOL_XCAT_URL) is required"},
		{"not a URL", func(c *Config) { c.URL = "mn.example.org" }, "must be https://host[:port]/xcatws"},
		{"ftp", func(c *Config) { c.URL = "ftp://mn/xcatws" }, "must be https://"},
		{"credentials in the URL", func(c *Config) { c.URL = "https://u:p@mn/xcatws" }, "must not carry credentials"},
		{"no user", func(c *Config) { c.User = "" }, "LOADPOOL_XCAT_USER"},
		{"no password", func(c *Config) { c.Password = "" }, "LOADPOOL_XCAT_PASSWORD"},
		{"CA and insecure", func(c *Config) { c.CAFile, c.Insecure = notPEM, true }, "not both"},
		{"CA missing", func(c *Config) { c.CAFile = filepath.Join(dir, "nope.pem") }, "LOADPOOL_XCAT_CA_FILE"},
		{"CA not PEM", func(c *Config) { c.CAFile = notPEM }, "holds no PEM certificate"},
	}
	for _, c := range cases {
		cfg := ok
		c.mut(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	p, err := New(Config{URL: "https://mn.example.org", User: "u", Password: "p"})
	if err != nil || p.c.base != "https://mn.example.org/xcatws" || p.cfg.Poll != DefaultPoll || p.cfg.MinStall != DefaultMinStall {
		t.Errorf("a URL without a path: %v, base %q; want /xcatws added and defaults", err, p.c.base)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		mut     func(*Config)
		trusted bool
	}{
		{"CA file", func(*Config) {}, true},
		{"explicit insecure", func(c *Config) { c.CAFile, c.Insecure = "", true }, true},
		{"neither: system roots do not know the self-signed certificate", func(c *Config) { c.CAFile = "" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOpt{cfg: c.mut})
			_, err := r.prov.Power(context.Background(), powerReq(messages.PowerStatus))
			if c.trusted && err != nil {
				t.Fatalf("power status: %v", err)
			}
			if !c.trusted && (!errors.Is(err, ErrTLS) || !outcome.IsPermanent(err) || !strings.Contains(err.Error(), "LOADPOOL_XCAT_CA_FILE")) {
				t.Fatalf("power status over untrusted TLS: %v, want a permanent ErrTLS naming LOADPOOL_XCAT_CA_FILE", err)
			}
		})
	}
}

func TestPlainHTTP(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpt{emu: xcatemu.Config{PlainHTTP: true}, cfg: func(c *Config) { c.CAFile = "" }})
	if _, _, err := r.load(request(testNode, testImage, messages.ReloadAlways)); err != nil {
		t.Fatal(err)
	}
}

func powerReq(action string) messages.PowerRequest {
	return messages.PowerRequest{Computer: messages.Computer{Name: testNode, Provisioner: Name, Type: messages.TypeBlade}, Action: action}
}

func TestPower(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpt{})
	ctx := context.Background()
	steps := []struct {
		action, state string
	}{
		{messages.PowerStatus, "off"},
		{messages.PowerReset, "on"}, // a reset of a node that is off boots it: rpower boot, not reset
		{messages.PowerOff, "off"},
		{messages.PowerOn, "on"},
		{messages.PowerReset, "on"},
	}
	for _, s := range steps {
		rep, err := r.prov.Power(ctx, powerReq(s.action))
		st, _ := r.emu.Node(testNode)
		if err != nil || rep.State != s.state || st.Power != s.state || rep.Computer != testNode {
			t.Errorf("%s: %+v, %v, emulator %s; want %s", s.action, rep, err, st.Power, s.state)
		}
	}
	req := powerReq(messages.PowerOn)
	req.Computer.Name = "cn99"
	if _, err := r.prov.Power(ctx, req); !outcome.IsPermanent(err) || !errors.Is(err, ErrUnknownNode) {
		t.Errorf("power on an unknown node: %v, want a permanent ErrUnknownNode", err)
	}
	r.emu.FailNext(3, xcatemu.Fault{Code: 500})
	if _, err := r.prov.Power(ctx, powerReq(messages.PowerOff)); err == nil || outcome.IsPermanent(err) {
		t.Errorf("power with xCAT failing: %v, want a transient error", err)
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		msgs   []string
		want   error
	}{
		{0, nil, ErrTransient},
		{500, []string{"x"}, ErrTransient},
		{503, []string{"Connection failure"}, ErrTransient},
		{504, []string{"<html>Gateway Timeout</html>"}, ErrTransient},
		{408, nil, ErrTransient},
		{401, []string{"Authentication failure"}, ErrAuth},
		{403, []string{"Could not find an object named 'cnX' of type 'node'."}, ErrUnknownNode},
		{403, []string{"Invalid nodes and/or groups in noderange: cnX"}, ErrUnknownNode},
		{403, []string{"Could not find an object named 'img' of type 'osimage'."}, ErrUnknownImage},
		{403, []string{"Cannot find the OS image img in the osimage table."}, ErrUnknownImage},
		{403, []string{"cn01: No MAC address available for this node"}, ErrNodeConfig},
		{403, []string{"osimage.provmethod for img must be set."}, ErrNodeConfig},
		{403, []string{"nodetype.os not defined for cn01"}, ErrNodeConfig},
		{403, []string{"Permission denied for request"}, ErrAuth},
		{403, []string{"cn01: Error: Unable to get data from BMC"}, ErrTransient},
		{400, []string{"Error: Invalid json format"}, ErrRequest},
		{404, []string{"Unsupported resource."}, ErrRequest},
		{405, nil, ErrRequest},
	}
	for _, c := range cases {
		if got := kindOf(c.status, c.msgs, nil); got != c.want {
			t.Errorf("kindOf(%d, %q) = %v, want %v", c.status, c.msgs, got, c.want)
		}
		e := &Error{Op: "x", Node: "cn01", Status: c.status, Msgs: c.msgs, kind: kindOf(c.status, c.msgs, nil)}
		if perm := outcome.IsPermanent(decide(e)); perm == (c.want == ErrTransient) {
			t.Errorf("decide(%d %q): permanent %v", c.status, c.msgs, perm)
		}
	}
}

func TestErrorBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, raw, code string
		msgs            []string
	}{
		{"CGI shape", `{"error":"Authentication failure","errorcode":"2"}`, "2", []string{"Authentication failure"}},
		{"xcatd shape", `{"error":["cn09: Error: a","cn10: Error: b"],"errorcode":"1"}`, "1", []string{"cn09: Error: a", "cn10: Error: b"}},
		{"numeric errorcode", `{"error":"x","errorcode":3}`, "3", []string{"x"}},
		{"Apache HTML", "<html><body>\n<h1>Gateway   Timeout</h1></body></html>", "", []string{"<html><body> <h1>Gateway Timeout</h1></body></html>"}},
		{"empty", "", "", nil},
	}
	for _, c := range cases {
		code, msgs := errorBody([]byte(c.raw))
		if code != c.code || strings.Join(msgs, "|") != strings.Join(c.msgs, "|") {
			t.Errorf("%s: %q %q, want %q %q", c.name, code, msgs, c.code, c.msgs)
		}
	}
	e := decodeReply("power boot", "cn01", 403, []byte(`{"error":["cn01: Error: BMC busy"],"errorcode":"1"}`), nil, nil)
	if want := "xCAT power boot of node cn01: HTTP 403: cn01: Error: BMC busy"; e.Error() != want {
		t.Errorf("error text %q, want %q", e, want)
	}
}

func TestRenewTime(t *testing.T) {
	t.Parallel()
	now := testNow
	cases := []struct {
		expire string
		want   time.Time
	}{
		{"never", time.Time{}},
		{"", time.Time{}},
		{"garbage", time.Time{}},
		{"2026-8-24 9:0:0", now.Add(24*time.Hour - time.Minute)}, // a day: a minute before
		{"2026-8-23 9:0:8", now.Add(6 * time.Second)},            // 8s: a quarter before
		{"2026-8-23 8:0:0", time.Time{}},                         // already past: the MN's zone differs
	}
	for _, c := range cases {
		if got := renewTime(c.expire, now); !got.Equal(c.want) {
			t.Errorf("renewTime(%q) = %v, want %v", c.expire, got, c.want)
		}
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		reload         int
		stall, overall time.Duration
	}{
		{0, 10 * time.Minute, 60 * time.Minute},
		{5, 10 * time.Minute, 60 * time.Minute},
		{25, 25 * time.Minute, 60 * time.Minute},
		{45, 45 * time.Minute, 90 * time.Minute},
	}
	for _, c := range cases {
		s, o := Timeouts(messages.Image{ReloadMinutes: c.reload}, DefaultMinStall, DefaultMinOverall)
		if s != c.stall || o != c.overall {
			t.Errorf("reload %dm: stall %v overall %v, want %v %v", c.reload, s, o, c.stall, c.overall)
		}
	}
}

var testNow = time.Date(2026, 8, 23, 9, 0, 0, 0, time.Local)
