package vmware

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// vcenter is a scripted soap.RoundTripper: calls are refused with
// NotAuthenticated until a login succeeds; logins answer loginErr. The
// first n calls wait for each other (so all are in flight before any
// login).
type vcenter struct {
	mu       sync.Mutex
	authed   bool
	logins   int
	loginErr error
	arrived  int
	n        int
	all      chan struct{}
}

func (v *vcenter) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	if _, ok := req.(*methods.LoginBody); ok {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.logins++
		if v.loginErr != nil {
			return v.loginErr
		}
		v.authed = true
		return nil
	}
	v.mu.Lock()
	v.arrived++
	if v.arrived == v.n {
		close(v.all)
	}
	first := v.arrived <= v.n
	authed := v.authed
	v.mu.Unlock()
	if first {
		<-v.all
	}
	if !authed {
		return soap.WrapVimFault(&types.NotAuthenticated{})
	}
	return nil
}

func TestRelogin(t *testing.T) {
	t.Parallel()
	refused := soap.WrapVimFault(&types.InvalidLogin{})
	for _, tc := range []struct {
		name     string
		loginErr error
		logins   int
	}{
		{"renewed once for every call in flight", nil, 1},
		{"a refused login is tried once for every call in flight", refused, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const calls = 4
			vc := &vcenter{loginErr: tc.loginErr, n: calls, all: make(chan struct{})}
			r := &relogin{inner: vc, user: url.UserPassword("vcl", "pw"), timeout: time.Minute,
				log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			errs := make([]error, calls)
			var wg sync.WaitGroup
			for i := range calls {
				wg.Go(func() { errs[i] = r.RoundTrip(t.Context(), &methods.CurrentTimeBody{}, &methods.CurrentTimeBody{}) })
			}
			wg.Wait()
			if vc.logins != tc.logins {
				t.Fatalf("logins = %d, want %d", vc.logins, tc.logins)
			}
			for i, err := range errs {
				if tc.loginErr == nil && err != nil || tc.loginErr != nil && !fault.Is(err, &types.InvalidLogin{}) {
					t.Fatalf("call %d: %v, want %v", i, err, tc.loginErr)
				}
			}
			// A call that starts later tries again.
			before := vc.logins
			_ = r.RoundTrip(t.Context(), &methods.CurrentTimeBody{}, &methods.CurrentTimeBody{})
			if want := before + map[bool]int{true: 1, false: 0}[tc.loginErr != nil]; vc.logins != want {
				t.Fatalf("logins after a later call = %d, want %d", vc.logins, want)
			}
		})
	}
}

type report float32

func (r report) Percentage() float32 { return float32(r) }
func (report) Detail() string        { return "" }
func (report) Error() error          { return nil }

type recorder struct{ msgs []string }

func (r *recorder) Event(m string) { r.msgs = append(r.msgs, m) }

// TestTaskProgress: a task's progress becomes an event every 25 points,
// never at 100% (the step's own events say what is done).
func TestTaskProgress(t *testing.T) {
	t.Parallel()
	var rec recorder
	s := newSink("cloning", &rec)
	ch := s.Sink()
	for _, p := range []float32{0, 10, 25, 30, 60, 99, 100} {
		ch <- report(p)
	}
	close(ch)
	s.wg.Wait()
	want := []string{"cloning: 25%", "cloning: 60%", "cloning: 99%"}
	if !slices.Equal(rec.msgs, want) {
		t.Fatalf("events %q, want %q", rec.msgs, want)
	}
}

// TestSessionScopedCallsAreNotRepeated: a refused call on a property
// collector or filter (dead with its session) answers *sessionLost
// without a login; renew then logs in once for all such calls.
func TestSessionScopedCallsAreNotRepeated(t *testing.T) {
	t.Parallel()
	const calls = 3
	vc := &vcenter{n: calls, all: make(chan struct{})}
	r := &relogin{inner: vc, user: url.UserPassword("vcl", "pw"), timeout: time.Minute,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	losts := make([]*sessionLost, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			err := r.RoundTrip(t.Context(), &methods.WaitForUpdatesExBody{}, &methods.WaitForUpdatesExBody{})
			if !errors.As(err, &losts[i]) || !fault.Is(err, &types.NotAuthenticated{}) {
				t.Errorf("call %d: %v, want a lost session", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() || vc.logins != 0 {
		t.Fatalf("logins = %d, want none before renew", vc.logins)
	}
	for i, lost := range losts {
		if err := r.renew(t.Context(), lost); err != nil {
			t.Fatalf("renew %d: %v", i, err)
		}
	}
	if vc.logins != 1 || r.Logins() != 1 {
		t.Fatalf("logins = %d (counted %d), want 1 for %d waits", vc.logins, r.Logins(), calls)
	}
}
