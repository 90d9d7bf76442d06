package xcat

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/devlab/xcatemu"
	"github.com/loadpool/loadpool/messages"
)

func TestLoadNormalInstall(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpt{})
	rep, evs, err := r.load(request(testNode, testImage, messages.ReloadIfNeeded))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !rep.Reloaded || !strings.Contains(rep.Detail, testImage) || !strings.Contains(rep.Detail, "booted") {
		t.Errorf("report %+v: want Reloaded and a detail naming the image and booted", rep)
	}
	st, _ := r.emu.Node(testNode)
	if st.Status != "booted" || st.Bootstate != "boot" || st.Provmethod != testImage || st.Power != "on" {
		t.Errorf("node after the load: %+v", st)
	}
	joined := strings.Join(evs, "\n")
	for _, want := range []string{"boot state to osimage", `status "installing"`, `status "booting", bootstate "boot"`, `status "booted"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("events lack %q:\n%s", want, joined)
		}
	}
}

func TestLoadSkipsWhenLoaded(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpt{})
	if _, _, err := r.load(request(testNode, testImage, messages.ReloadIfNeeded)); err != nil {
		t.Fatal(err)
	}
	rep, _, err := r.load(request(testNode, testImage, messages.ReloadIfNeeded))
	if err != nil || rep.Reloaded || !strings.Contains(rep.Detail, "skipped") {
		t.Fatalf("second if-needed load: %+v, %v; want skipped, not reloaded", rep, err)
	}
	rep, _, err = r.load(request(testNode, testImage, messages.ReloadAlways))
	if err != nil || !rep.Reloaded {
		t.Fatalf("reload always: %+v, %v; want reloaded", rep, err)
	}
	if err := r.emu.SetBehavior(testNode, xcatemu.Behavior{}); err != nil {
		t.Fatal(err)
	}
	r.emu.AddNode(testNode, map[string]string{"bootstate": "install rocky9.4-x86_64-compute"})
	rep, _, err = r.load(request(testNode, testImage, messages.ReloadIfNeeded))
	if err != nil || !rep.Reloaded {
		t.Fatalf("if-needed with an install pending: %+v, %v; want a reload", rep, err)
	}
}

// TestLoadOutcomes covers the ways a load ends other than ready.
func TestLoadOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		opt       rigOpt
		setup     func(*xcatemu.Server)
		node, img string
		fail      bool   // Permanent (fail) rather than retry
		is        error  // errors.Is target
		detail    string // regexp the error text must match
	}{
		{name: "stall", setup: behave(xcatemu.Behavior{StallAt: "installing"}),
			detail: `^stall timeout: node cn01 showed no status change for 1s \(last status "installing"\)`},
		{name: "status changing forever", setup: behave(xcatemu.Behavior{Flap: true, FlapEvery: 30 * time.Millisecond}),
			detail: `^overall timeout: node cn01 did not finish installing within 4s \(last status "(installing|booting|postbooting)"\)`},
		{name: "stuck at powering-on", setup: behave(xcatemu.Behavior{StallAt: "powering-on"}),
			detail: `^stall timeout: .*last status "powering-on"`},
		{name: "failed", setup: behave(xcatemu.Behavior{Fail: true}), detail: `node cn01 reported status failed`},
		{name: "nodeset left no install state", setup: func(s *xcatemu.Server) {
			s.AddOSImage(testImage, map[string]string{"provmethod": "boot", "profile": "compute", "osvers": "rocky9.4", "osarch": "x86_64"})
		}, detail: `left node cn01 with bootstate "boot rocky9.4-x86_64-compute", not an install state`},
		{name: "unknown osimage", img: "nope", fail: true, is: ErrUnknownImage,
			detail: `xCAT read osimage nope: HTTP 403: Could not find an object named 'nope' of type 'osimage'.`},
		{name: "unknown node", node: "cn99", fail: true, is: ErrUnknownNode, detail: `of node cn99: HTTP 403: Could not find an object named 'cn99'`},
		{name: "node without MAC", setup: func(s *xcatemu.Server) { s.AddNode(testNode, map[string]string{"mac": ""}) },
			fail: true, is: ErrNodeConfig, detail: `no MAC address`},
		{name: "wrong password", opt: rigOpt{cfg: func(c *Config) { c.Password = "wrong" }}, fail: true, is: ErrAuth,
			detail: `HTTP 401: Authentication failure .*LOADPOOL_XCAT_PASSWORD`},
		{name: "401 with a fresh token", setup: func(s *xcatemu.Server) { s.Deny(true) }, fail: true, is: ErrAuth, detail: `HTTP 401`},
		{name: "5xx that lasts", setup: func(s *xcatemu.Server) { s.FailNext(3, xcatemu.Fault{Code: 503}) }, is: ErrTransient,
			detail: `HTTP 503: Connection failure`},
		{name: "transient 403 that lasts", setup: func(s *xcatemu.Server) { s.FailNext(3, xcatemu.Fault{Code: 403}) }, is: ErrTransient,
			detail: `HTTP 403: Error: Unable to connect to the BMC`},
		{name: "connection refused", opt: rigOpt{cfg: func(c *Config) { c.URL = "https://127.0.0.1:1/xcatws" }}, is: ErrTransient,
			detail: `no answer: .*connection refused`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, c.opt)
			if c.setup != nil {
				c.setup(r.emu)
			}
			node, img := or(c.node, testNode), or(c.img, testImage)
			start := time.Now()
			_, _, err := r.load(request(node, img, messages.ReloadIfNeeded))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if got := outcome.IsPermanent(err); got != c.fail {
				t.Errorf("permanent = %v, want %v (%v)", got, c.fail, err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			if !regexp.MustCompile(c.detail).MatchString(err.Error()) {
				t.Errorf("error %q does not match %q", err, c.detail)
			}
			var te *TimeoutError
			if errors.As(err, &te) && time.Since(start) < te.Limit {
				t.Errorf("%s timeout answered after %v, before its limit %v", te.Which, time.Since(start), te.Limit)
			}
		})
	}
}

func behave(b xcatemu.Behavior) func(*xcatemu.Server) {
	return func(s *xcatemu.Server) { _ = s.SetBehavior(testNode, b) }
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestLoadRecovers covers failures that pass inside the step.
func TestLoadRecovers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		opt    rigOpt
		setup  func(*xcatemu.Server)
		tokens int  // at least this many tokens issued
		no401  bool // renewed before expiry: xCAT never answered 401
	}{
		{name: "one 503", setup: func(s *xcatemu.Server) { s.FailNext(1, xcatemu.Fault{Code: 503}) }, tokens: 1},
		{name: "two transient 403s", setup: func(s *xcatemu.Server) { s.FailNext(2, xcatemu.Fault{Code: 403}) }, tokens: 1},
		{name: "token dropped mid-install", setup: behave(xcatemu.Behavior{DropTokensAt: "booting"}), tokens: 2},
		{name: "token expiring mid-install", opt: rigOpt{emu: xcatemu.Config{TokenLifetime: 2 * time.Second,
			Timing: xcatemu.Timing{PoweringOn: time.Second, Installing: time.Second, Booting: time.Second, Postbooting: 500 * time.Millisecond}},
			cfg: func(c *Config) { c.MinStall = 5 * time.Second; c.MinOverall = 20 * time.Second }}, tokens: 2, no401: true},
		{name: "token that never expires", opt: rigOpt{emu: xcatemu.Config{TokenLifetime: 0}}, tokens: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, c.opt)
			if c.setup != nil {
				c.setup(r.emu)
			}
			rep, _, err := r.load(request(testNode, testImage, messages.ReloadIfNeeded))
			if err != nil || !rep.Reloaded {
				t.Fatalf("Load: %+v, %v; want ready", rep, err)
			}
			if n := r.emu.TokensIssued(); n < c.tokens {
				t.Errorf("tokens issued: %d, want at least %d", n, c.tokens)
			}
			if n := r.emu.Rejected(); c.no401 && n != 0 {
				t.Errorf("xCAT answered 401 %d times: the token was not renewed before it expired", n)
			}
		})
	}
}

// TestSecretsNeverLogged loads through a token renewal and a 401 with debug
// logging on, then looks for the password and any token id in the log.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpt{})
	_ = r.emu.SetBehavior(testNode, xcatemu.Behavior{DropTokensAt: "installing"})
	if _, _, err := r.load(request(testNode, testImage, messages.ReloadAlways)); err != nil {
		t.Fatal(err)
	}
	r.emu.Deny(true)
	_, _, err := r.load(request(testNode, testImage, messages.ReloadAlways))
	logs := r.logs.String() + "\n" + err.Error()
	if r.emu.TokensIssued() < 3 || !strings.Contains(logs, "401") {
		t.Fatalf("the test did not exercise renewal (tokens %d):\n%s", r.emu.TokensIssued(), logs)
	}
	if strings.Contains(logs, testPass) {
		t.Errorf("the password appears in the logs:\n%s", logs)
	}
	if uuid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`); uuid.MatchString(logs) {
		t.Errorf("a token id appears in the logs:\n%s", logs)
	}
}
