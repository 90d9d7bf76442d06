package xcatemu

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fast is a timing under which an install takes about 40ms.
var fast = Timing{PoweringOn: 10 * time.Millisecond, Installing: 10 * time.Millisecond,
	Booting: 10 * time.Millisecond, Postbooting: 10 * time.Millisecond}

type env struct {
	t     *testing.T
	s     *Server
	token string
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	cfg.User, cfg.Password = "wsuser", "secret"
	if cfg.Timing == (Timing{}) {
		cfg.Timing = fast
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddOSImage("rocky9-install-compute", map[string]string{"provmethod": "install", "profile": "compute", "osvers": "rocky9.4", "osarch": "x86_64"})
	s.AddOSImage("noprov", map[string]string{"profile": "compute"})
	s.AddNode("cn01", map[string]string{"mac": "52:54:00:aa:bb:01", "groups": "compute", "mgt": "ipmi"})
	s.AddNode("cn02", map[string]string{"groups": "compute"})
	e := &env{t: t, s: s}
	code, body := e.do("POST", "/tokens", `{"userName":"wsuser","userPW":"secret"}`, false)
	if code != http.StatusCreated {
		t.Fatalf("POST /tokens: %d %s", code, body)
	}
	var tok struct{ Token struct{ ID, Expire string } }
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token.ID == "" {
		t.Fatalf("POST /tokens body %s: %v", body, err)
	}
	e.token = tok.Token.ID
	return e
}

func (e *env) do(method, path, body string, auth bool) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.s.URL()+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.Header.Set("X-Auth-Token", e.token)
	}
	resp, err := e.s.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, b
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	cases := []struct {
		name, method, path, body string
		auth                     bool
		code                     int
		want                     string // JSON the body must equal ("" for an empty body)
	}{
		{"resource list without auth", "GET", "", "", false, 200, `["globalconf","groups","images","network","nodes","policy","services","slpnodes","tables","tokens"]`},
		{"no token", "GET", "/nodes", "", false, 401, `{"error":"Authentication failure","errorcode":"2"}`},
		{"node list", "GET", "/nodes", "", true, 200, `["cn01","cn02"]`},
		{"trailing slash", "GET", "/nodes/", "", true, 200, `["cn01","cn02"]`},
		{"node object has only set attributes", "GET", "/nodes/cn02", "", true, 200, `{"cn02":{"groups":"compute"}}`},
		{"unknown node lsdef", "GET", "/nodes/cnX", "", true, 403, `{"error":["Could not find an object named 'cnX' of type 'node'."],"errorcode":"1"}`},
		{"attrs unset are empty", "GET", "/nodes/cn01/attrs/status,mac;provmethod", "", true, 200, `{"cn01":{"status":"","mac":"52:54:00:aa:bb:01","provmethod":""}}`},
		{"no nodeset resource", "GET", "/nodes/cn01/nodeset", "", true, 404, `{"error":"Unsupported resource.","errorcode":"2"}`},
		{"unknown node command", "GET", "/nodes/cnX/power", "", true, 403, `{"error":["Invalid nodes and/or groups in noderange: cnX"],"errorcode":"1"}`},
		{"power stat", "GET", "/nodes/cn01/power", "", true, 200, `{"cn01":{"power":"off"}}`},
		{"power without action", "PUT", "/nodes/cn01/power", `{}`, true, 404, `{"error":"Missed Action.","errorcode":"2"}`},
		{"bootstate initial", "GET", "/nodes/cn01/bootstate", "", true, 200, `{"cn01":{"bootstate":"offline"}}`},
		{"bootstate unknown image", "PUT", "/nodes/cn01/bootstate", `{"osimage":"nope"}`, true, 403, `{"error":["Cannot find the OS image nope in the osimage table."],"errorcode":"1"}`},
		{"bootstate image without provmethod", "PUT", "/nodes/cn01/bootstate", `{"osimage":"noprov"}`, true, 403, `{"error":["osimage.provmethod for noprov must be set."],"errorcode":"1"}`},
		{"bootstate node without mac", "PUT", "/nodes/cn02/bootstate", `{"osimage":"rocky9-install-compute"}`, true, 403, `{"error":["cn02: No MAC address available for this node"],"errorcode":"1"}`},
		{"partial failure keeps only errors", "GET", "/nodes/cn01,cnX/power", "", true, 403, `{"error":["Invalid nodes and/or groups in noderange: cnX"],"errorcode":"1"}`},
		{"not an object body", "PUT", "/nodes/cn01", `[1]`, true, 400, `{"error":"Error: Invalid json format or the json data is not a hash","errorcode":"3"}`},
		{"unknown image", "GET", "/osimages/nope/attrs/provmethod", "", true, 403, `{"error":["Could not find an object named 'nope' of type 'osimage'."],"errorcode":"1"}`},
		{"image attrs", "GET", "/osimages/rocky9-install-compute/attrs/provmethod,osvers", "", true, 200, `{"rocky9-install-compute":{"provmethod":"install","osvers":"rocky9.4"}}`},
		{"image list", "GET", "/osimages", "", true, 200, `["noprov","rocky9-install-compute"]`},
		{"nodestat off", "GET", "/nodes/cn01/nodestat", "", true, 200, `{"cn01":{"nodestat":"noping"}}`},
		{"nodels", "GET", "/nodes/cn01,cn02/nodels", "", true, 200, `["cn01","cn02"]`},
		{"reset on an off node is a silent no-op", "PUT", "/nodes/cn01/power", `{"action":"reset"}`, true, 200, ``},
		{"still off", "GET", "/nodes/cn01/power", "", true, 200, `{"cn01":{"power":"off"}}`},
		{"method not defined", "DELETE", "/nodes/cn01/power", "", true, 405, ``},
		{"chdef", "PUT", "/nodes/cn02", `{"groups":"","netboot":"xnba"}`, true, 200, ``},
		{"chdef cleared and set", "GET", "/nodes/cn02", "", true, 200, `{"cn02":{"netboot":"xnba"}}`},
		{"query params become chdef arguments", "PUT", "/nodes/cn02?arch=ppc64le&pretty=1", `{}`, true, 200, ``},
		{"chdef from the query", "GET", "/nodes/cn02", "", true, 200, `{"cn02":{"netboot":"xnba","arch":"ppc64le"}}`},
		{"ALLRESOURCES on PUT", "PUT", "/nodes/ALLRESOURCES/power", `{"action":"on"}`, true, 404, `{"error":"Unsupported resource.","errorcode":"2"}`},
		{"nextboot", "PUT", "/nodes/cn01/nextboot", `{"order":"net"}`, true, 200, ``},
		{"nextboot stat", "GET", "/nodes/cn01/nextboot", "", true, 200, `{"cn01":{"nextboot":"Network"}}`},
		{"deprecated install state", "PUT", "/nodes/cn01/bootstate", `{"state":"install"}`, true, 403, `{"error":["cn01: Error: The 'install' state is deprecated: use nodeset <noderange> osimage=<imagename>"],"errorcode":"1"}`},
		{"bootstate by state key", "PUT", "/nodes/cn01/bootstate", `{"state":"shell"}`, true, 200, ``},
		{"bootstate shell", "GET", "/nodes/cn01/bootstate", "", true, 200, `{"cn01":{"bootstate":"shell"}}`},
		{"action key is checked first", "PUT", "/nodes/cn01/bootstate", `{"action":"boot"}`, true, 200, ``},
		{"bootstate boot", "GET", "/nodes/cn01/bootstate", "", true, 200, `{"cn01":{"bootstate":"boot"}}`},
		{"provision is nodeset and power boot", "PUT", "/nodes/cn01/provision", `{"osimage":"rocky9-install-compute"}`, true, 200, ``},
		{"provision powered on", "GET", "/nodes/cn01/power", "", true, 200, `{"cn01":{"power":"on"}}`},
		{"provision set the bootstate", "GET", "/nodes/cn01/attrs/provmethod,os,arch,profile", "", true, 200, `{"cn01":{"provmethod":"rocky9-install-compute","os":"rocky9.4","arch":"x86_64","profile":"compute"}}`},
	}
	for _, c := range cases { // in order: later cases see earlier changes
		code, body := e.do(c.method, c.path, c.body, c.auth)
		if code != c.code {
			t.Errorf("%s: HTTP %d, want %d (%s)", c.name, code, c.code, body)
			continue
		}
		if c.code == 405 {
			continue
		}
		if !jsonEqual(body, c.want) {
			t.Errorf("%s: body %s, want %s", c.name, bytes.TrimSpace(body), c.want)
		}
	}
}

func TestV2Prefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	req, _ := http.NewRequest("GET", strings.TrimSuffix(e.s.URL(), "/xcatws")+"/xcatwsv2/nodes/cn01/power", nil)
	req.Header.Set("X-Auth-Token", e.token)
	resp, err := e.s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !jsonEqual(b, `{"cn01":{"power":"off"}}`) {
		t.Errorf("GET /xcatwsv2/nodes/cn01/power: %d %s", resp.StatusCode, b)
	}
}

func jsonEqual(got []byte, want string) bool {
	if want == "" {
		return len(bytes.TrimSpace(got)) == 0
	}
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{TokenLifetime: time.Hour, Location: time.FixedZone("MN", -5*3600)})
	code, body := e.do("POST", "/tokens?userName=wsuser&userPW=secret", "", false)
	if code != 201 {
		t.Fatalf("POST /tokens with query credentials: %d %s", code, body)
	}
	var tok struct{ Token struct{ ID, Expire string } }
	_ = json.Unmarshal(body, &tok)
	if !regexp.MustCompile(`^\d{4}-[1-9]\d?-[1-9]\d? ([1-9]?\d):([1-9]?\d):([1-9]?\d)$`).MatchString(tok.Token.Expire) {
		t.Errorf("expire %q is not xCAT's Y-M-D H:M:S without zero padding", tok.Token.Expire)
	}
	exp, err := time.ParseInLocation("2006-1-2 15:4:5", tok.Token.Expire, time.FixedZone("MN", -5*3600))
	if err != nil || time.Until(exp) < 59*time.Minute || time.Until(exp) > 61*time.Minute {
		t.Errorf("expire %q (%v) is not an hour from now in the MN's zone", tok.Token.Expire, err)
	}
	if code, _ := e.do("POST", "/tokens", `{"userName":"wsuser","userPW":"wrong"}`, false); code != 401 {
		t.Errorf("bad password: HTTP %d, want 401", code)
	}
	if code, _ := e.do("GET", "/nodes?userName=wsuser&userPW=secret", "", false); code != 200 {
		t.Errorf("per-request credentials: HTTP %d, want 200", code)
	}
	if code, _ := e.do("GET", "/nodes?userName=wsuser&userPW=wrong", "", true); code != 401 {
		t.Errorf("bad credentials beside a good token: HTTP %d, want 401", code)
	}
	e.s.Deny(true)
	if code, _ := e.do("GET", "/nodes", "", true); code != 401 {
		t.Errorf("denied by policy: HTTP %d, want 401", code)
	}
	e.s.Deny(false)
	e.s.DropTokens()
	if code, _ := e.do("GET", "/nodes", "", true); code != 401 {
		t.Errorf("dropped token: HTTP %d, want 401", code)
	}
	if r := e.s.Rejected(); r != 4 {
		t.Errorf("Rejected() = %d, want 4 (bad password, bad credentials, policy, dropped token)", r)
	}
	if e.s.TokensIssued() != 2 {
		t.Errorf("TokensIssued = %d, want 2", e.s.TokensIssued())
	}
}

func TestTokenExpiresAndNever(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{TokenLifetime: time.Second})
	poll.Within(t, 5*time.Second, "the token to expire", func() bool {
		code, _ := e.do("GET", "/nodes", "", true)
		return code == 401
	})
	n := newEnv(t, Config{})
	code, body := n.do("POST", "/tokens", `{"userName":"wsuser","userPW":"secret"}`, false)
	if code != 201 || !strings.Contains(string(body), `"expire":"never"`) {
		t.Errorf("lifetime 0: %d %s, want expire never", code, body)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.s.FailNext(1, Fault{Code: 503})
	e.s.FailNext(1, Fault{Code: 403})
	code, body := e.do("GET", "/nodes", "", true)
	if code != 503 || !strings.Contains(string(body), `"errorcode":"2"`) {
		t.Errorf("503 fault: %d %s", code, body)
	}
	code, body = e.do("GET", "/nodes", "", true)
	var x struct{ Error []string }
	if code != 403 || json.Unmarshal(body, &x) != nil || len(x.Error) != 1 {
		t.Errorf("403 fault: %d %s, want the xcatd shape", code, body)
	}
	if code, _ := e.do("GET", "/nodes", "", true); code != 200 {
		t.Errorf("after the faults: HTTP %d, want 200", code)
	}
}

// install runs nodeset osimage= and power boot on cn01.
func (e *env) install() {
	e.t.Helper()
	if code, b := e.do("PUT", "/nodes/cn01/bootstate", `{"osimage":"rocky9-install-compute"}`, true); code != 200 {
		e.t.Fatalf("bootstate: %d %s", code, b)
	}
	if code, b := e.do("PUT", "/nodes/cn01/power", `{"action":"boot"}`, true); code != 200 {
		e.t.Fatalf("power boot: %d %s", code, b)
	}
}

func TestInstallSequence(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	booted := make(chan string, 1)
	e := newEnv(t, Config{OnBooted: func(n, img string) { booted <- n + " " + img }})
	e.s.AddNode("cn01", map[string]string{"status": "booted"})
	e.do("PUT", "/nodes/cn01/bootstate", `{"osimage":"rocky9-install-compute"}`, true)
	st, _ := e.s.Node("cn01")
	if st.Status != "booted" || st.Bootstate != "install rocky9.4-x86_64-compute" || st.Provmethod != "rocky9-install-compute" {
		t.Fatalf("after nodeset: %+v, want status unchanged and bootstate install <os>-<arch>-<profile>", st)
	}
	e.do("PUT", "/nodes/cn01/power", `{"action":"boot"}`, true)
	if st, _ := e.s.Node("cn01"); st.Status != StatusPoweringOn || st.Power != "on" {
		t.Errorf("after power boot: %+v, want powering-on and on", st)
	}
	poll.Within(t, 5*time.Second, "booted", func() bool {
		st, _ := e.s.Node("cn01")
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 || seen[len(seen)-1] != st.Status+"|"+st.Bootstate {
			seen = append(seen, st.Status+"|"+st.Bootstate)
		}
		return st.Status == StatusBooted
	})
	if got := <-booted; got != "cn01 rocky9-install-compute" {
		t.Errorf("OnBooted got %q", got)
	}
	order := map[string]int{"powering-on": 0, "installing": 1, "booting": 2, "postbooting": 3, "booted": 4}
	last := -1
	for _, s := range seen {
		status, boot, _ := strings.Cut(s, "|")
		if order[status] < last {
			t.Errorf("status went backwards: %v", seen)
		}
		last = order[status]
		if want := order[status] >= 2; (boot == "boot") != want {
			t.Errorf("status %s with bootstate %q: bootstate is boot from booting on", status, boot)
		}
	}
	if now, maxSeen := e.s.Installs(); now != 0 || maxSeen != 1 {
		t.Errorf("Installs() = %d, %d; want 0, 1", now, maxSeen)
	}
}

func TestBehaviors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		setup   func(*Server)
		final   string
		stable  bool // status stays at final
		running int  // installs still counted once final is reached
	}{
		{"stall", func(s *Server) { _ = s.SetBehavior("cn01", Behavior{StallAt: StatusInstalling}) }, StatusInstalling, true, 1},
		{"fail", func(s *Server) { _ = s.SetBehavior("cn01", Behavior{Fail: true}) }, StatusFailed, true, 0},
		{"fail once", func(s *Server) { _ = s.FailNextInstall("cn01") }, StatusFailed, true, 0},
		{"flap", func(s *Server) { _ = s.SetBehavior("cn01", Behavior{Flap: true}) }, StatusPostbooting, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{})
			c.setup(e.s)
			e.install()
			poll.Within(t, 5*time.Second, c.final, func() bool { st, _ := e.s.Node("cn01"); return st.Status == c.final })
			if now, _ := e.s.Installs(); now != c.running {
				t.Errorf("installs running at %s: %d, want %d", c.final, now, c.running)
			}
			if c.stable {
				return
			}
			poll.Within(t, 5*time.Second, "installing again", func() bool { st, _ := e.s.Node("cn01"); return st.Status == StatusInstalling })
		})
	}
	t.Run("fail once then works", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{})
		_ = e.s.FailNextInstall("cn01")
		e.install()
		poll.Within(t, 5*time.Second, "failed", func() bool { st, _ := e.s.Node("cn01"); return st.Status == StatusFailed })
		e.install()
		poll.Within(t, 5*time.Second, "booted", func() bool { st, _ := e.s.Node("cn01"); return st.Status == StatusBooted })
	})
	t.Run("drop tokens at booting", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{})
		_ = e.s.SetBehavior("cn01", Behavior{DropTokensAt: StatusBooting})
		e.install()
		poll.Within(t, 5*time.Second, "the token to be dropped", func() bool { code, _ := e.do("GET", "/nodes", "", true); return code == 401 })
	})
}

func TestPowerSemantics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.s.AddNode("cn01", map[string]string{"provmethod": "rocky9-install-compute", "status": "booted", "bootstate": "boot", "power": "on"})
	steps := []struct {
		action, power, status string
	}{
		{"off", "off", StatusPoweringOff},
		{"reset", "off", StatusPoweringOff},
		{"on", "on", StatusPoweringOn},
		{"on", "on", StatusPoweringOn},
	}
	for _, s := range steps {
		if code, b := e.do("PUT", "/nodes/cn01/power", `{"action":"`+s.action+`"}`, true); code != 200 {
			t.Fatalf("power %s: %d %s", s.action, code, b)
		}
		if st, _ := e.s.Node("cn01"); st.Power != s.power || st.Status != s.status && st.Status != StatusBooted {
			t.Errorf("after %s: power %s status %s, want %s %s", s.action, st.Power, st.Status, s.power, s.status)
		}
	}
	// The emulated boot takes its own time; under a loaded -race run 5 s was not always enough.
	poll.Until(t, "a reboot of the installed OS to reach booted", func() bool { st, _ := e.s.Node("cn01"); return st.Status == StatusBooted })
	if now, _ := e.s.Installs(); now != 0 {
		t.Errorf("a reboot counted as an install")
	}
}
