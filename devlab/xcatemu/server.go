package xcatemu

import (
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Config configures an emulator.
type Config struct {
	// User and Password are the one account of the passwd table (key xcat).
	User, Password string
	// TokenLifetime is site.tokenexpiredays as a duration; 0 means "never".
	TokenLifetime time.Duration
	// Location is the management node's local time zone, in which token
	// expiry and statustime are written (nil: time.Local).
	Location *time.Location
	// Timing is how long each phase of an install takes.
	Timing Timing
	// OnBooted, when set, is called (in its own goroutine) when a node
	// reaches booted: after an install or a reboot.
	OnBooted func(node, osimage string)
	// Addr is the listen address (default 127.0.0.1:0, a random port).
	Addr string
	// PlainHTTP serves http:// instead of https:// with a self-signed
	// certificate.
	PlainHTTP bool
	Logger    *slog.Logger
}

// Timing is how long each phase of a node's life takes.
type Timing struct {
	// PoweringOn: from power on/boot until the installer (or the OS) starts.
	PoweringOn time.Duration
	// Installing: from installing until the end of %post (booting).
	Installing time.Duration
	// Booting: from booting until the installed OS runs its postscripts.
	Booting time.Duration
	// Postbooting: until booted (or failed).
	Postbooting time.Duration
}

// Server is a running emulator.
type Server struct {
	cfg  Config
	http *httptest.Server
	log  *slog.Logger

	mu       sync.Mutex
	tokens   map[string]time.Time // id -> expiry (zero: never)
	issued   int
	nodes    map[string]*node
	images   map[string]map[string]string
	faults   []Fault
	deny     bool
	rejected int
	requests int
	running  int // installs now
	maxSeen  int
	closed   bool
	wg       sync.WaitGroup
}

// Start runs an emulator; Close stops it.
func Start(cfg Config) (*Server, error) {
	if cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("xcatemu: Config.User and Config.Password are required")
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("xcatemu: listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, tokens: map[string]time.Time{},
		nodes: map[string]*node{}, images: map[string]map[string]string{}}
	s.http = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.http.Listener.Close()
	s.http.Listener = l
	if cfg.PlainHTTP {
		s.http.Start()
	} else {
		s.http.StartTLS()
	}
	return s, nil
}

// Close stops the server and every install it runs. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, n := range s.nodes {
		s.stopSequence(n)
	}
	s.mu.Unlock()
	s.http.Close()
	s.wg.Wait()
}

// URL is the REST API's base URL, ending in /xcatws.
func (s *Server) URL() string { return s.http.URL + "/xcatws" }

// CACertPEM is the server's self-signed certificate in PEM form, for a
// client's CA file (nil with PlainHTTP).
func (s *Server) CACertPEM() []byte {
	if s.http.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.http.Certificate().Raw})
}

// Client is an http.Client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.http.Client() }

// Fault is an injected failure of the next API requests (not POST /tokens).
type Fault struct {
	// Code is the HTTP status: 5xx answers in the CGI shape, 403 in the
	// xcatd shape.
	Code int
	// Message is xCAT's text (default: a plausible one for Code).
	Message string
}

// FailNext makes the next n API requests (other than POST /tokens and the
// unauthenticated resource list) answer with f.
func (s *Server) FailNext(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// DropTokens forgets every token, as when xCAT's token table is cleaned:
// the next request with an old token answers 401.
func (s *Server) DropTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Deny makes every authenticated request answer 401 while on, as xCAT
// does when its policy table denies the user (a fresh token does not help).
func (s *Server) Deny(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = on
}

// Rejected counts the 401 answers given.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// TokensIssued counts successful POST /tokens.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Requests counts authenticated API requests served (including faults).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Installs reports how many installs run now and the most ever at once.
func (s *Server) Installs() (now, maxSeen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running, s.maxSeen
}

// newToken issues a token; the caller holds s.mu.
func (s *Server) newToken(now time.Time) (id, expire string) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	id = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	s.issued++
	if s.cfg.TokenLifetime <= 0 {
		s.tokens[id] = time.Time{}
		return id, "never"
	}
	exp := now.Add(s.cfg.TokenLifetime).Truncate(time.Second)
	s.tokens[id] = exp
	return id, time2string(exp.In(s.cfg.Location))
}

// time2string is xCAT::Utils::time2string: Y-M-D H:M:S, no zero padding.
func time2string(t time.Time) string {
	return fmt.Sprintf("%d-%d-%d %d:%d:%d", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second())
}

// statusTime is the format of nodelist.statustime.
func (s *Server) statusTime(t time.Time) string {
	return t.In(s.cfg.Location).Format("01-02-2006 15:04:05")
}

// reply writes a JSON body (or an empty body when v is nil).
func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // Perl's JSON does not escape < > &
		_ = enc.Encode(v)
	}
}

// cgiError answers in the CGI shape: error is a string.
func cgiError(w http.ResponseWriter, code int, msg string) {
	ec := "2"
	if code == http.StatusBadRequest {
		ec = "3"
	}
	reply(w, code, map[string]string{"error": msg, "errorcode": ec})
}

// xcatdError answers 403 in the xcatd shape: error is an array.
func xcatdError(w http.ResponseWriter, msgs ...string) {
	reply(w, http.StatusForbidden, map[string]any{"error": msgs, "errorcode": "1"})
}

// faultReply answers an injected fault.
func faultReply(w http.ResponseWriter, f Fault) {
	msg := f.Message
	if f.Code == http.StatusForbidden {
		if msg == "" {
			msg = "Error: Unable to connect to the BMC: timed out (transient)"
		}
		xcatdError(w, msg)
		return
	}
	if msg == "" {
		msg = "Connection failure: IO::Socket::SSL: connect: Connection refused"
	}
	cgiError(w, f.Code, msg)
}

// splitPath returns the resource segments after /xcatws or /xcatwsv2.
func splitPath(p string) ([]string, bool) {
	p = strings.TrimRight(p, "/")
	for _, prefix := range []string{"/xcatwsv2", "/xcatws"} {
		if p == prefix {
			return nil, true
		}
		if rest, ok := strings.CutPrefix(p, prefix+"/"); ok {
			return strings.Split(rest, "/"), true
		}
	}
	return nil, false
}
