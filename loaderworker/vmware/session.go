package vmware

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"sync"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// connect opens the process's one vSphere session. Every call made
// through the returned client has its own deadline, and a call that vCenter
// refuses with NotAuthenticated (the session expired or was terminated)
// logs in again once and is repeated.
func connect(ctx context.Context, cfg Config) (*govmomi.Client, *relogin, error) {
	u, err := soap.ParseURL(cfg.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("vmware: URL (LOADPOOL_VSPHERE_URL) %q: %w", redactURL(cfg.URL), err)
	}
	u.User = nil // never carry credentials in the URL (they end up in errors)
	sc := soap.NewClient(u, cfg.Insecure)
	// Keep a connection per concurrent call: net/http keeps 2 idle per
	// host, and every new one costs vCenter a TLS handshake.
	sc.DefaultTransport().MaxIdleConnsPerHost = idleConns
	cctx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
	defer cancel()
	vc, err := vim25.NewClient(cctx, sc)
	if err != nil {
		return nil, nil, &loginError{url: u.String(), user: cfg.User, err: err}
	}
	rt := &relogin{inner: sc, sm: *vc.ServiceContent.SessionManager,
		user: url.UserPassword(cfg.User, cfg.Password), timeout: cfg.CallTimeout, log: cfg.Logger}
	vc.RoundTripper = rt
	gc := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := gc.Login(cctx, rt.user); err != nil {
		return nil, nil, &loginError{url: u.String(), user: cfg.User, err: err}
	}
	return gc, rt, nil
}

// idleConns is how many idle connections to vCenter the session keeps.
const idleConns = 64

// relogin is the client's soap.RoundTripper: it bounds every call by
// timeout (long polls of the property collector are bounded by the
// caller's task deadline instead) and logs in again when vCenter answers
// NotAuthenticated.
type relogin struct {
	inner   soap.RoundTripper
	sm      types.ManagedObjectReference
	user    *url.Userinfo
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	gen     uint64 // session generation: bumped by every re-login
	tries   uint64 // re-login attempts
	lastErr error  // of the last attempt
	logins  int    // successful re-logins
}

// RoundTrip implements soap.RoundTripper. A refused call on a property
// collector or filter is not repeated: those die with their session, so
// it answers a *sessionLost for the caller to start over (see renew).
func (r *relogin) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	gen, tries := r.state()
	err := r.call(ctx, req, res)
	if !retriable(req) || !fault.Is(err, &types.NotAuthenticated{}) && !(err == nil && missingAuth(res)) {
		return err
	}
	if sessionScoped(req) {
		return &sessionLost{gen: gen, tries: tries, err: err}
	}
	if lerr := r.login(ctx, gen, tries); lerr != nil {
		return lerr
	}
	reflect.ValueOf(res).Elem().SetZero() // forget the first answer's fault
	return r.call(ctx, req, res)
}

func (r *relogin) call(ctx context.Context, req, res soap.HasFault) error {
	if !longPoll(req) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	return r.inner.RoundTrip(ctx, req, res)
}

func (r *relogin) state() (gen, tries uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen, r.tries
}

// renew logs in again after a call was refused with lost (once for all
// the calls refused together, as login says).
func (r *relogin) renew(ctx context.Context, lost *sessionLost) error {
	return r.login(ctx, lost.gen, lost.tries)
}

// sessionLost: vCenter refused a call on an object of the session (a
// property collector or filter) because the session is gone, and the
// object with it. The session generation and login attempts seen when
// the call began let renew log in once for all such calls.
type sessionLost struct {
	gen, tries uint64
	err        error
}

func (e *sessionLost) Error() string { return "the vSphere session was lost: " + e.err.Error() }
func (e *sessionLost) Unwrap() error { return e.err }

// login logs in again, once for all the calls that were refused
// together: unless another call renewed the session since this one
// started (seenGen), or tried and failed (seenTries; its error is
// answered, so a changed password costs one refused login, not one per
// call in flight, which could lock the account).
func (r *relogin) login(ctx context.Context, seenGen, seenTries uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != seenGen {
		return nil
	}
	if r.tries != seenTries && r.lastErr != nil {
		return r.lastErr
	}
	r.tries++
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	pass, _ := r.user.Password()
	_, err := methods.Login(ctx, r.inner, &types.Login{This: r.sm, UserName: r.user.Username(), Password: pass})
	r.lastErr = err
	if err != nil {
		return err
	}
	r.gen++
	r.logins++
	r.log.Info("vSphere session was lost; logged in again", "user", r.user.Username())
	return nil
}

// Logins reports how many times the session was renewed.
func (r *relogin) Logins() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logins
}

// retriable: calls that must not trigger a re-login themselves.
func retriable(req soap.HasFault) bool {
	switch req.(type) {
	case *methods.LoginBody, *methods.LogoutBody:
		return false
	}
	return true
}

// sessionScoped: calls on a property collector or filter that the
// session created (a task wait's); after a re-login they would only find
// nothing.
func sessionScoped(req soap.HasFault) bool {
	switch req.(type) {
	case *methods.WaitForUpdatesExBody, *methods.WaitForUpdatesBody, *methods.CheckForUpdatesBody,
		*methods.CancelWaitForUpdatesBody, *methods.CreateFilterBody, *methods.DestroyPropertyFilterBody,
		*methods.DestroyPropertyCollectorBody:
		return true
	}
	return false
}

// longPoll: property-collector waits that legitimately block for as long
// as a task runs.
func longPoll(req soap.HasFault) bool {
	switch req.(type) {
	case *methods.WaitForUpdatesExBody, *methods.WaitForUpdatesBody:
		return true
	}
	return false
}

// missingAuth reports whether a property retrieval answered, instead of a
// fault, NotAuthenticated for the properties it could not read (the
// simulator does; vCenter may).
func missingAuth(res soap.HasFault) bool {
	var objs []types.ObjectContent
	switch r := res.(type) {
	case *methods.RetrievePropertiesExBody:
		if r.Res != nil && r.Res.Returnval != nil {
			objs = r.Res.Returnval.Objects
		}
	case *methods.RetrievePropertiesBody:
		if r.Res != nil {
			objs = r.Res.Returnval
		}
	}
	for _, o := range objs {
		for _, m := range o.MissingSet {
			if fault.Is(m.Fault.Fault, &types.NotAuthenticated{}) {
				return true
			}
		}
	}
	return false
}
