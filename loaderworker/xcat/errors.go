package xcat

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/loadpool/loadpool/outcome"
)

// Kinds of failure. An *Error wraps exactly one of them; test with
// errors.Is. Every kind but ErrTransient answers fail.
var (
	// ErrUnknownNode: xCAT has no node of that name.
	ErrUnknownNode = errors.New("xCAT does not know the node")
	// ErrUnknownImage: xCAT has no osimage of that name.
	ErrUnknownImage = errors.New("xCAT does not know the osimage")
	// ErrAuth: xCAT refused the account even with a fresh token (bad
	// password, or the policy table denies it).
	ErrAuth = errors.New("xCAT refused the credentials")
	// ErrNodeConfig: the node or image is not set up for provisioning (no
	// MAC, no provmethod, no nodetype.os, a deprecated state).
	ErrNodeConfig = errors.New("xCAT cannot provision the node as defined")
	// ErrRequest: xCAT cannot serve the request at all (400, 404, 405): a
	// wrong URL or an xCAT version this client does not know.
	ErrRequest = errors.New("xCAT rejected the request")
	// ErrTLS: the server's certificate is not trusted: a configuration
	// error that another try will not fix.
	ErrTLS = errors.New("xCAT's TLS certificate is not trusted")
	// ErrTransient: 5xx, a timeout, a refused connection, or a 403 for an
	// error that may pass (a BMC that did not answer).
	ErrTransient = errors.New("transient xCAT error")
)

// Error is what xCAT answered (or failed to answer) to one call.
type Error struct {
	// Op is what was asked ("power boot", "bootstate osimage=img").
	Op string
	// Node is the node the call was about ("" for tokens and osimages).
	Node string
	// Status is the HTTP status; 0 when no answer arrived (Err says why).
	Status int
	// Code is xCAT's errorcode ("1" from xcatd, "2" or "3" from the CGI).
	Code string
	// Msgs is what xCAT said, in its words.
	Msgs []string
	Err  error
	kind error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("xCAT " + e.Op)
	if e.Node != "" {
		b.WriteString(" of node " + e.Node)
	}
	switch {
	case e.Status == 0:
		fmt.Fprintf(&b, ": no answer: %v", e.Err)
	case len(e.Msgs) > 0:
		fmt.Fprintf(&b, ": HTTP %d: %s", e.Status, strings.Join(e.Msgs, "; "))
	default:
		fmt.Fprintf(&b, ": HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if hint := hints[e.kind]; hint != "" {
		b.WriteString(" (" + hint + ")")
	}
	return b.String()
}

// Unwrap gives the kind and the transport error.
func (e *Error) Unwrap() []error { return []error{e.kind, e.Err} }

var hints = map[error]string{
	ErrAuth:        "check LOADPOOL_XCAT_USER and LOADPOOL_XCAT_PASSWORD against xCAT's passwd table (key xcat) and its policy table",
	ErrUnknownNode: "define the node in xCAT, or enrol the computer's xCAT node name as its attribute node (vcl.computer.set)",
	ErrRequest:     "check LOADPOOL_XCAT_URL: it must end in /xcatws",
	ErrTLS:         "trust the xCAT CA with LOADPOOL_XCAT_CA_FILE (http://<MN>/install/postscripts/ca/ca-cert.pem), or set LOADPOOL_XCAT_INSECURE=true",
}

// kindOf classifies an answer (or the transport error err when no answer
// came): the one place that decides which xCAT errors can pass and which
// cannot.
func kindOf(status int, msgs []string, err error) error {
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case status == 0 && (errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &host) || errors.As(err, &verify)):
		return ErrTLS
	case status == 0 || status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		return ErrTransient
	case status == http.StatusUnauthorized:
		return ErrAuth
	case status == http.StatusForbidden:
		return kindOf403(strings.Join(msgs, "\n"))
	}
	return ErrRequest
}

func kindOf403(text string) error {
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(text, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("of type 'osimage'", "Cannot find the OS image"):
		return ErrUnknownImage
	case has("of type 'node'", "Invalid nodes and/or groups in noderange"):
		return ErrUnknownNode
	case has("Permission denied", "Authentication failure"):
		return ErrAuth
	case has("No MAC address", "must be set", "not defined for", "deprecated"):
		return ErrNodeConfig
	}
	return ErrTransient
}

// retryable reports whether another try of the same call may help.
func retryable(err error) bool {
	return errors.Is(err, ErrTransient)
}

// decide maps an error of Load or Power onto the step's outcome: the one
// place where xCAT's failures become fail (Permanent) or retry (plain).
func decide(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownNode), errors.Is(err, ErrUnknownImage):
		return outcome.Permanent(outcome.WithReason(err, outcome.ReasonNotFound))
	case errors.Is(err, ErrAuth):
		return outcome.Permanent(outcome.WithReason(err, outcome.ReasonAuth))
	case errors.Is(err, ErrNodeConfig):
		return outcome.Permanent(outcome.WithReason(err, outcome.ReasonConfig))
	case errors.Is(err, ErrRequest):
		return outcome.Permanent(outcome.WithReason(err, outcome.ReasonBadRequest))
	case errors.Is(err, ErrTLS):
		return outcome.Permanent(outcome.WithReason(err, ReasonTLS))
	case errors.Is(err, ErrTransient):
		return outcome.WithReason(err, outcome.ReasonTransient)
	}
	return err
}

// ReasonTLS is the machine reason of an untrusted certificate.
const ReasonTLS = "tls-untrusted"

// TimeoutError is an install that ran out of time: retry.
type TimeoutError struct {
	// Which is "stall" (no status change for Limit) or "overall".
	Which string
	Node  string
	Limit time.Duration
	// Last is the last status seen; LastErr the last failed status read.
	Last    string
	LastErr error
}

// Reason is the result's machine reason.
func (e *TimeoutError) Reason() string { return outcome.ReasonTimeout }

func (e *TimeoutError) Error() string {
	s := fmt.Sprintf("stall timeout: node %s showed no status change for %v (last status %q)", e.Node, e.Limit, e.Last)
	if e.Which == "overall" {
		s = fmt.Sprintf("overall timeout: node %s did not finish installing within %v (last status %q)", e.Node, e.Limit, e.Last)
	}
	if e.LastErr != nil {
		s += "; last read failed: " + e.LastErr.Error()
	}
	return s
}

// backoff waits before try n+1 (1-based n): Backoff doubled per try, at
// most MaxBackoff; false when ctx ends first.
func (c *client) backoff(ctx context.Context, n int) bool {
	d := c.cfg.Backoff << min(n-1, 16)
	if d > c.cfg.MaxBackoff || d <= 0 {
		d = c.cfg.MaxBackoff
	}
	return sleep(ctx, d)
}
