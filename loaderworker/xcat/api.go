package xcat

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The typed calls the provisioner makes. A 200 whose body lacks the node
// (or image) asked about is a transient error: xCAT's 200 does not always
// mean what it looks like.

// imageProvmethod reads an osimage's provmethod (403: unknown image).
func (c *client) imageProvmethod(ctx context.Context, img string) (string, error) {
	var out map[string]map[string]string
	op := "read osimage " + img
	if err := c.call(ctx, op, "", http.MethodGet, "/osimages/"+url.PathEscape(img)+"/attrs/provmethod", nil, &out); err != nil {
		return "", err
	}
	attrs, ok := out[img]
	if !ok {
		return "", missing(op, "", out)
	}
	return attrs["provmethod"], nil
}

// nodeAttrs reads attributes of a node; unset ones come back "".
func (c *client) nodeAttrs(ctx context.Context, node string, names ...string) (map[string]string, error) {
	var out map[string]map[string]string
	op := "read " + strings.Join(names, ",")
	if err := c.call(ctx, op, node, http.MethodGet, nodePath(node, "attrs", strings.Join(names, ",")), nil, &out); err != nil {
		return nil, err
	}
	attrs, ok := out[node]
	if !ok && len(out) > 1 {
		return nil, fmt.Errorf("%w: %q names %d nodes in xCAT (a group or a noderange), not one: enrol the computer's own node name as its attribute node (vcl.computer.set)", ErrNodeConfig, node, len(out))
	}
	if !ok {
		return nil, missing(op, node, out)
	}
	return attrs, nil
}

// bootstate is nodeset stat ("install rocky9.4-x86_64-compute", "boot").
func (c *client) bootstate(ctx context.Context, node string) (string, error) {
	var out map[string]map[string]string
	if err := c.call(ctx, "read bootstate", node, http.MethodGet, nodePath(node, "bootstate"), nil, &out); err != nil {
		return "", err
	}
	for _, key := range []string{"bootstate", "bootstat"} { // REF's example says bootstat
		if v, ok := out[node][key]; ok {
			return v, nil
		}
	}
	return "", missing("read bootstate", node, out)
}

// setBootstate is nodeset osimage=<img>: exactly one key in the body.
func (c *client) setBootstate(ctx context.Context, node, img string) error {
	return c.call(ctx, "bootstate osimage="+img, node, http.MethodPut, nodePath(node, "bootstate"),
		map[string]string{"osimage": img}, nil)
}

// power is rpower <action>.
func (c *client) power(ctx context.Context, node, action string) error {
	return c.call(ctx, "power "+action, node, http.MethodPut, nodePath(node, "power"),
		map[string]string{"action": action}, nil)
}

// setNextboot is rsetboot <device>, a one-time boot device ("net").
func (c *client) setNextboot(ctx context.Context, node, device string) error {
	return c.call(ctx, "nextboot "+device, node, http.MethodPut, nodePath(node, "nextboot"),
		map[string]string{"order": device}, nil)
}

// powerState is rpower stat: "on", "off" or "unknown". Python-agent BMCs
// may answer {"node":{"on":""}} instead of {"node":{"power":"on"}}.
func (c *client) powerState(ctx context.Context, node string) (string, error) {
	var out map[string]map[string]string
	if err := c.call(ctx, "power stat", node, http.MethodGet, nodePath(node, "power"), nil, &out); err != nil {
		return "", err
	}
	v, ok := out[node]
	if !ok {
		return "", missing("power stat", node, out)
	}
	state := v["power"]
	for _, s := range []string{"on", "off"} {
		if _, ok := v[s]; ok && state == "" {
			state = s
		}
	}
	if state != "on" && state != "off" {
		return "unknown", nil
	}
	return state, nil
}

func missing[V any](op, node string, out map[string]V) error {
	return &Error{Op: op, Node: node, Status: http.StatusOK,
		Msgs: []string{fmt.Sprintf("the reply has no entry for the object asked about (keys: %d)", len(out))}, kind: ErrTransient}
}
