package libvirtd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// DefaultURI is the system QEMU driver on this host.
const DefaultURI = "qemu:///system"

// DefaultConnectTimeout bounds connecting to libvirtd.
const DefaultConnectTimeout = 10 * time.Second

// Client connects to one libvirtd. The zero value is not usable: use New.
// It is safe for concurrent use (each Do has its own connection).
type Client struct {
	uri *url.URL
}

// New checks uri ("qemu:///system", "qemu:///system?socket=/path",
// "qemu+tcp://host/system", "qemu+tls://host/system"); empty means
// DefaultURI.
func New(uri string) (*Client, error) {
	if uri == "" {
		uri = DefaultURI
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("libvirt URI %q is not a libvirt URI such as %s", uri, DefaultURI)
	}
	return &Client{uri: u}, nil
}

// URI is the client's URI, for messages.
func (c *Client) URI() string { return c.uri.Redacted() }

// UnreachableError is a failure to connect to libvirtd.
type UnreachableError struct {
	URI string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("libvirtd at %s is unreachable (%v): start it (libvirtd -d, or systemctl start libvirtd) or check LOADPOOL_LIBVIRT_URI", e.URI, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Do runs fn on a fresh connection bounded by ctx (see the package doc).
func (c *Client) Do(ctx context.Context, fn func(l *golibvirt.Libvirt) error) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	l, err := c.connect(ctx)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn(l) }()
	select {
	case err = <-done:
		_ = l.Disconnect()
		return err
	case <-ctx.Done():
		_ = l.Disconnect() // unblocks every call still waiting on l
		<-done
		return context.Cause(ctx)
	}
}

func (c *Client) connect(ctx context.Context) (*golibvirt.Libvirt, error) {
	ch := make(chan dialed, 1)
	go func() {
		l, err := golibvirt.ConnectToURI(c.uri)
		ch <- dialed{l, err}
	}()
	t := time.NewTimer(DefaultConnectTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, &UnreachableError{URI: c.URI(), Err: r.err}
		}
		return r.l, nil
	case <-t.C:
		go closeLate(ch)
		return nil, &UnreachableError{URI: c.URI(), Err: errors.New("no answer within " + DefaultConnectTimeout.String())}
	case <-ctx.Done():
		go closeLate(ch)
		return nil, context.Cause(ctx)
	}
}

type dialed struct {
	l   *golibvirt.Libvirt
	err error
}

// closeLate closes a connection that was made after its caller gave up.
func closeLate(ch <-chan dialed) {
	if r := <-ch; r.err == nil {
		_ = r.l.Disconnect()
	}
}

// Code is libvirt's error number of err (0 when err is not a libvirt
// error), for classification with errors.As under the hood.
func Code(err error) golibvirt.ErrorNumber {
	var e golibvirt.Error
	if errors.As(err, &e) {
		return golibvirt.ErrorNumber(e.Code)
	}
	return 0
}

// IsNoDomain reports whether err says the domain does not exist.
func IsNoDomain(err error) bool { return Code(err) == golibvirt.ErrNoDomain }
