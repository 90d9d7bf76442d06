package xcat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// client speaks xCAT's REST API with a token that it renews before it
// expires and after a 401. The token and the password are never logged
// and never appear in an error.
type client struct {
	cfg  Config
	base string
	hc   *http.Client
	log  *slog.Logger

	mu      sync.Mutex
	token   string
	renewAt time.Time // zero: renew only after a 401
	gen     int       // counts tokens, so concurrent 401s renew once
}

func newClient(cfg Config) (*client, error) {
	u, err := cfg.baseURL()
	if err != nil {
		return nil, err
	}
	if cfg.User == "" || cfg.Password == "" {
		return nil, fmt.Errorf("xcat: User and Password (LOADPOOL_XCAT_USER, LOADPOOL_XCAT_PASSWORD) are required")
	}
	hc, err := cfg.httpClient()
	if err != nil {
		return nil, err
	}
	return &client{cfg: cfg, base: u.String(), hc: hc, log: cfg.Logger}, nil
}

// call runs one API call, retrying a transient failure with a bounded
// backoff; each try has its own deadline. out, when not nil, receives the
// JSON reply (an empty reply leaves it untouched).
func (c *client) call(ctx context.Context, op, node, method, path string, body, out any) error {
	for try := 1; ; try++ {
		err := c.callOnce(ctx, op, node, method, path, body, out)
		if err == nil || !retryable(err) || try >= c.cfg.Tries || ctx.Err() != nil {
			return err
		}
		c.log.Info("xCAT call failed, trying again", "op", op, "node", node, "try", try, "err", err)
		if !c.backoff(ctx, try) {
			return err
		}
	}
}

func (c *client) callOnce(ctx context.Context, op, node, method, path string, body, out any) error {
	tok, gen, err := c.currentToken(ctx)
	if err != nil {
		return err
	}
	status, raw, err := c.send(ctx, method, path, tok, body)
	if err == nil && status == http.StatusUnauthorized {
		c.log.Info("xCAT answered 401: getting a new token", "op", op, "node", node)
		if tok, err = c.renew(ctx, gen); err != nil {
			return err
		}
		status, raw, err = c.send(ctx, method, path, tok, body)
	}
	return decodeReply(op, node, status, raw, err, out)
}

// send makes one HTTP request under CallTimeout.
func (c *client) send(ctx context.Context, method, path, token string, body any) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, raw, err
}

// decodeReply turns an answer into out or into an *Error in xCAT's words.
func decodeReply(op, node string, status int, raw []byte, err error, out any) error {
	if err != nil {
		return &Error{Op: op, Node: node, Status: 0, Err: err, kind: kindOf(0, nil, err)}
	}
	if status >= 200 && status < 300 {
		if out == nil || len(bytes.TrimSpace(raw)) == 0 {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return &Error{Op: op, Node: node, Status: status, Msgs: []string{"reply is not the JSON expected: " + snippet(raw)}, kind: ErrTransient}
		}
		return nil
	}
	code, msgs := errorBody(raw)
	return &Error{Op: op, Node: node, Status: status, Code: code, Msgs: msgs, kind: kindOf(status, msgs, nil)}
}

// errorBody reads both error shapes: the CGI's {"error":"text"} and
// xcatd's {"error":["node: text",...]}; anything else (Apache's HTML) is
// kept as a short snippet.
func errorBody(raw []byte) (string, []string) {
	var e struct {
		Error     json.RawMessage `json:"error"`
		ErrorCode json.RawMessage `json:"errorcode"`
	}
	if json.Unmarshal(raw, &e) != nil || len(e.Error) == 0 {
		if s := snippet(raw); s != "" {
			return "", []string{s}
		}
		return "", nil
	}
	var code string
	if json.Unmarshal(e.ErrorCode, &code) != nil {
		code = strings.Trim(string(e.ErrorCode), `"`)
	}
	var one string
	if json.Unmarshal(e.Error, &one) == nil {
		return code, []string{one}
	}
	var many []string
	if json.Unmarshal(e.Error, &many) == nil {
		return code, many
	}
	return code, []string{snippet(e.Error)}
}

func snippet(raw []byte) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// currentToken returns the token to use, getting a new one when there is
// none or its renewal time has come.
func (c *client) currentToken(ctx context.Context) (string, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && (c.renewAt.IsZero() || time.Now().Before(c.renewAt)) {
		return c.token, c.gen, nil
	}
	if err := c.fetchToken(ctx); err != nil {
		return "", 0, err
	}
	return c.token, c.gen, nil
}

// renew replaces the token that answered 401, unless another call already
// did since generation gen.
func (c *client) renew(ctx context.Context, gen int) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen && c.token != "" {
		return c.token, nil
	}
	if err := c.fetchToken(ctx); err != nil {
		return "", err
	}
	return c.token, nil
}

// fetchToken is POST /tokens; the caller holds c.mu.
func (c *client) fetchToken(ctx context.Context) error {
	var out struct {
		Token struct {
			ID     string `json:"id"`
			Expire string `json:"expire"`
		} `json:"token"`
	}
	creds := map[string]string{"userName": c.cfg.User, "userPW": c.cfg.Password}
	status, raw, err := c.send(ctx, http.MethodPost, "/tokens", "", creds)
	if err := decodeReply("login as "+c.cfg.User, "", status, raw, err, &out); err != nil {
		return err
	}
	if out.Token.ID == "" {
		return &Error{Op: "login as " + c.cfg.User, Status: status, Msgs: []string{"the reply holds no token id"}, kind: ErrTransient}
	}
	now := time.Now()
	c.token, c.gen = out.Token.ID, c.gen+1
	c.renewAt = renewTime(out.Token.Expire, now)
	c.log.Debug("xCAT token acquired", "user", c.cfg.User, "expire", out.Token.Expire, "renew_at", c.renewAt)
	return nil
}

// renewTime is when to renew a token that expires at expire ("Y-M-D
// H:M:S" in the management node's local time, read here as this host's
// local time, or "never"): a quarter of its life before, at most a minute.
// An expiry that cannot be read, or that seems already past (the MN's
// clock or zone differs), gives zero: renew only after a 401.
func renewTime(expire string, now time.Time) time.Time {
	if expire == "" || expire == "never" {
		return time.Time{}
	}
	exp, err := time.ParseInLocation("2006-1-2 15:4:5", expire, time.Local)
	if err != nil || !exp.After(now) {
		return time.Time{}
	}
	margin := min(time.Minute, exp.Sub(now)/4)
	return exp.Add(-margin)
}

// nodePath is /nodes/<node>/<rest...>.
func nodePath(node string, rest ...string) string {
	p := "/nodes/" + url.PathEscape(node)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}
