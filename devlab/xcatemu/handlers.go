package xcatemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// resourceGroups is what GET /xcatws lists, before any auth check.
var resourceGroups = []string{"globalconf", "groups", "images", "network", "nodes", "policy", "services", "slpnodes", "tables", "tokens"}

const notFoundDefs = "Could not find any object definitions to display."

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	segs, ok := splitPath(r.URL.Path)
	if !ok {
		cgiError(w, http.StatusNotFound, "Unsupported resource.")
		return
	}
	if len(segs) == 0 {
		if r.Method != http.MethodGet {
			cgiError(w, http.StatusMethodNotAllowed, "Unsupported method: "+r.Method+".")
			return
		}
		reply(w, http.StatusOK, resourceGroups)
		return
	}
	body, err := readBody(r)
	if err != nil {
		cgiError(w, http.StatusBadRequest, err.Error())
		return
	}
	mergeQuery(r, body)
	if len(segs) == 1 && segs[0] == "tokens" {
		s.postToken(w, r, body)
		return
	}
	if !s.authenticate(r, body) {
		cgiError(w, http.StatusUnauthorized, "Authentication failure")
		return
	}
	if f, ok := s.takeFault(); ok {
		faultReply(w, f)
		return
	}
	s.route(w, r.Method, segs, body)
}

// readBody reads a JSON object body: always for PUT/POST, for GET/DELETE
// only when the Content-Type says json (as CGI.pm does).
func readBody(r *http.Request) (map[string]any, error) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost && !strings.Contains(r.Header.Get("Content-Type"), "json") {
		return map[string]any{}, nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("Error: cannot read the request body: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("Error: Invalid json format or the json data is not a hash")
	}
	return m, nil
}

// generalParams are the query parameters fetchParameters keeps for itself.
var generalParams = map[string]bool{"userName": true, "userPW": true, "pretty": true, "debug": true, "xcoll": true, "ver": true}

// mergeQuery merges every other query parameter into the body hash, where
// the command sees it as an argument (PUT /nodes/x?a=b is chdef a=b).
func mergeQuery(r *http.Request, body map[string]any) {
	for k, v := range r.URL.Query() {
		if !generalParams[k] && len(v) > 0 {
			body[k] = v[0]
		}
	}
}

// param reads a general parameter: the URL value overrides the body's.
func param(r *http.Request, body map[string]any, key string) (string, bool) {
	if v, ok := r.URL.Query()[key]; ok && len(v) > 0 {
		return v[0], true
	}
	if v, ok := body[key].(string); ok {
		return v, true
	}
	return "", false
}

func (s *Server) postToken(w http.ResponseWriter, r *http.Request, body map[string]any) {
	if r.Method != http.MethodPost {
		cgiError(w, http.StatusMethodNotAllowed, "Unsupported method: "+r.Method+".")
		return
	}
	u, _ := param(r, body, "userName")
	p, _ := param(r, body, "userPW")
	s.mu.Lock()
	defer s.mu.Unlock()
	if u != s.cfg.User || p != s.cfg.Password {
		s.rejected++
		cgiError(w, http.StatusUnauthorized, "Authentication failure")
		return
	}
	id, expire := s.newToken(time.Now())
	reply(w, http.StatusCreated, map[string]any{"token": map[string]string{"id": id, "expire": expire}})
}

// authenticate checks credentials first (when sent), then the token.
func (s *Server) authenticate(r *http.Request, body map[string]any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.authenticateLocked(r, body) && !s.deny
	if !ok {
		s.rejected++
	}
	return ok
}

func (s *Server) authenticateLocked(r *http.Request, body map[string]any) bool {
	u, hasU := param(r, body, "userName")
	p, hasP := param(r, body, "userPW")
	if hasU || hasP {
		if u != s.cfg.User || p != s.cfg.Password {
			return false
		}
	}
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return hasU && hasP
	}
	exp, ok := s.tokens[tok]
	if !ok {
		return false
	}
	if !exp.IsZero() && !time.Now().Before(exp) {
		delete(s.tokens, tok)
		return false
	}
	return true
}

func (s *Server) takeFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

// route dispatches an authenticated request.
func (s *Server) route(w http.ResponseWriter, method string, segs []string, body map[string]any) {
	switch {
	case segs[0] == "nodes" && len(segs) == 1:
		s.only(w, method, http.MethodGet, func() { s.listNames(w, s.nodeNames()) })
	case segs[0] == "nodes" && len(segs) == 2:
		s.nodeObject(w, method, segs[1], body)
	case segs[0] == "nodes" && len(segs) == 4 && segs[2] == "attrs":
		s.only(w, method, http.MethodGet, func() { s.nodeAttrs(w, segs[1], splitAttrs(segs[3])) })
	case segs[0] == "nodes" && len(segs) == 3 && segs[2] == "nodels":
		s.only(w, method, http.MethodGet, func() { s.nodels(w, segs[1]) })
	case segs[0] == "nodes" && len(segs) == 3:
		s.nodeCommand(w, method, segs[1], segs[2], body)
	case segs[0] == "osimages" && len(segs) == 1:
		s.only(w, method, http.MethodGet, func() { s.listNames(w, s.imageNames()) })
	case segs[0] == "osimages" && len(segs) == 2:
		s.only(w, method, http.MethodGet, func() { s.imageAttrs(w, segs[1], nil) })
	case segs[0] == "osimages" && len(segs) == 4 && segs[2] == "attrs":
		s.only(w, method, http.MethodGet, func() { s.imageAttrs(w, segs[1], splitAttrs(segs[3])) })
	default:
		cgiError(w, http.StatusNotFound, "Unsupported resource.")
	}
}

// only runs f for the one method the resource defines, else 405.
func (s *Server) only(w http.ResponseWriter, method, want string, f func()) {
	if method != want {
		cgiError(w, http.StatusMethodNotAllowed, "Unsupported method: "+method+".")
		return
	}
	f()
}

func splitAttrs(a string) []string {
	return strings.FieldsFunc(a, func(r rune) bool { return r == ',' || r == ';' })
}

func (s *Server) listNames(w http.ResponseWriter, names []string) {
	if len(names) == 0 {
		names = []string{notFoundDefs}
	}
	reply(w, http.StatusOK, names)
}

func (s *Server) nodeObject(w http.ResponseWriter, method, nr string, body map[string]any) {
	switch method {
	case http.MethodGet:
		s.nodeAttrs(w, nr, nil)
	case http.MethodPut:
		if nr == "ALLRESOURCES" {
			cgiError(w, http.StatusNotFound, "Unsupported resource.")
			return
		}
		s.changeNode(w, nr, body)
	default:
		cgiError(w, http.StatusMethodNotAllowed, "Unsupported method: "+method+".")
	}
}

// nodeCommand serves the command resources under /nodes/{nr}/.
func (s *Server) nodeCommand(w http.ResponseWriter, method, nr, res string, body map[string]any) {
	type cmd struct {
		get func(*node) (any, error)
		put func(*node, map[string]any) error
	}
	cmds := map[string]cmd{
		"bootstate": {get: func(n *node) (any, error) { return map[string]string{"bootstate": n.bootstate}, nil }, put: s.putBootstate},
		"power":     {get: func(n *node) (any, error) { return map[string]string{"power": n.power}, nil }, put: s.putPower},
		"nodestat":  {get: func(n *node) (any, error) { return map[string]string{"nodestat": n.nodestat()}, nil }},
		"nextboot":  {get: func(n *node) (any, error) { return map[string]string{"nextboot": n.nextboot}, nil }, put: putNextboot},
		"provision": {put: s.putProvision},
	}
	c, ok := cmds[res]
	if !ok {
		cgiError(w, http.StatusNotFound, "Unsupported resource.")
		return
	}
	switch {
	case method == http.MethodGet && c.get != nil:
		s.forNodes(w, nr, c.get)
	case method == http.MethodPut && c.put != nil:
		if nr == "ALLRESOURCES" {
			cgiError(w, http.StatusNotFound, "Unsupported resource.")
			return
		}
		if missedAction(res, body) {
			cgiError(w, http.StatusNotFound, "Missed Action.")
			return
		}
		s.forNodes(w, nr, func(n *node) (any, error) {
			if err := c.put(n, body); err != nil {
				return nil, err
			}
			n.record(res, body)
			return nil, nil
		})
	default:
		cgiError(w, http.StatusMethodNotAllowed, "Unsupported method: "+method+".")
	}
}

// missedAction reports a power/bootstate/provision PUT without a usable key.
func missedAction(res string, body map[string]any) bool {
	keys := map[string][]string{
		"power": {"action"}, "bootstate": {"action", "osimage", "state"},
		"provision": {"action", "osimage"}, "nextboot": {"order"},
	}[res]
	for _, k := range keys {
		if v, ok := body[k].(string); ok && v != "" {
			return false
		}
	}
	return true
}

// forNodes runs a command on every node of nr under the lock; any error
// makes the whole reply a 403 holding only the errors (partial failure).
func (s *Server) forNodes(w http.ResponseWriter, nr string, f func(*node) (any, error)) {
	s.mu.Lock()
	nodes, bad := s.noderange(nr)
	if len(bad) > 0 {
		s.mu.Unlock()
		xcatdError(w, "Invalid nodes and/or groups in noderange: "+strings.Join(bad, ","))
		return
	}
	out := map[string]any{}
	var errs []string
	for _, n := range nodes {
		v, err := f(n)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if v != nil {
			out[n.name] = v
		}
	}
	s.mu.Unlock()
	switch {
	case len(errs) > 0:
		xcatdError(w, errs...)
	case len(out) == 0:
		reply(w, http.StatusOK, nil)
	default:
		reply(w, http.StatusOK, out)
	}
}

func (s *Server) nodels(w http.ResponseWriter, nr string) {
	s.mu.Lock()
	nodes, bad := s.noderange(nr)
	s.mu.Unlock()
	if len(bad) > 0 {
		xcatdError(w, "Invalid nodes and/or groups in noderange: "+strings.Join(bad, ","))
		return
	}
	names := []string{}
	for _, n := range nodes {
		names = append(names, n.name)
	}
	reply(w, http.StatusOK, names)
}

// noderange expands a comma list (or ALLRESOURCES); the caller holds s.mu.
func (s *Server) noderange(nr string) (nodes []*node, unknown []string) {
	if nr == "ALLRESOURCES" {
		for _, name := range s.nodeNamesLocked() {
			nodes = append(nodes, s.nodes[name])
		}
		return nodes, nil
	}
	for _, name := range strings.Split(nr, ",") {
		if n, ok := s.nodes[name]; ok && name != "" {
			nodes = append(nodes, n)
		} else {
			unknown = append(unknown, name)
		}
	}
	return nodes, unknown
}

// nodeAttrs answers lsdef: all set attributes, or exactly the asked ones.
func (s *Server) nodeAttrs(w http.ResponseWriter, nr string, want []string) {
	s.mu.Lock()
	nodes, bad := s.noderange(nr)
	out := map[string]map[string]string{}
	for _, n := range nodes {
		out[n.name] = pick(n.attrs, want)
	}
	s.mu.Unlock()
	if len(bad) > 0 {
		xcatdError(w, notFound(bad, "node")...)
		return
	}
	reply(w, http.StatusOK, out)
}

func (s *Server) imageAttrs(w http.ResponseWriter, name string, want []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]string{}
	names := strings.Split(name, ",")
	if name == "ALLRESOURCES" {
		names = s.imageNamesLocked()
	}
	var bad []string
	for _, img := range names {
		attrs, ok := s.images[img]
		if !ok {
			bad = append(bad, img)
			continue
		}
		out[img] = pick(attrs, want)
	}
	if len(bad) > 0 {
		xcatdError(w, notFound(bad, "osimage")...)
		return
	}
	reply(w, http.StatusOK, out)
}

func notFound(names []string, typ string) []string {
	var msgs []string
	for _, n := range names {
		msgs = append(msgs, fmt.Sprintf("Could not find an object named '%s' of type '%s'.", n, typ))
	}
	return msgs
}

// pick copies the set attributes (want nil) or every wanted one ("" unset).
func pick(attrs map[string]string, want []string) map[string]string {
	out := map[string]string{}
	if want == nil {
		for k, v := range attrs {
			if v != "" {
				out[k] = v
			}
		}
		return out
	}
	for _, k := range want {
		out[k] = attrs[k]
	}
	return out
}

// changeNode is chdef: "" or null clears an attribute.
func (s *Server) changeNode(w http.ResponseWriter, nr string, body map[string]any) {
	s.mu.Lock()
	nodes, bad := s.noderange(nr)
	if len(bad) == 0 {
		for _, n := range nodes {
			for k, v := range body {
				n.attrs[k] = attrString(v)
			}
		}
	}
	s.mu.Unlock()
	if len(bad) > 0 {
		xcatdError(w, notFound(bad, "node")...)
		return
	}
	reply(w, http.StatusOK, nil)
}

func attrString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
