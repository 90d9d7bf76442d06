package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// hostKeyCheck verifies one dial's host key against the policy; failure
// keeps the reason so classify can tell a mismatch from a network error.
type hostKeyCheck struct {
	ctx context.Context
	t   Target
	// want is the one key accepted and source where it came from; nil
	// while the step may still learn a key.
	want   ssh.PublicKey
	source string
	// learn: this step learns the first key it sees (HostKeyPolicy.Step).
	learn   bool
	failure error
}

// newHostKeyCheck parses the policy (no I/O: a bad key fails at once,
// before any connection). See HostKeyPolicy for the order of precedence.
func newHostKeyCheck(ctx context.Context, t Target) (*hostKeyCheck, error) {
	h := &hostKeyCheck{ctx: ctx, t: t}
	p := t.HostKey
	switch {
	case p.Pinned != "":
		k, err := parseKey(p.Pinned)
		if err != nil {
			return nil, permanentf("the host_key enrolled for %s is not an SSH public key in authorized_keys form (\"ssh-ed25519 AAAA...\"): %v; fix the enrolment (vcl.computer.set)", t.Computer, err)
		}
		h.want, h.source = k, "pinned at enrolment"
	case p.Learned != nil && !p.Reloaded:
		k, err := parseKey(p.Learned.Key)
		if err != nil {
			return nil, permanentf("the host key learned for %s in its enrolment is unreadable (%v): load the computer with reload always so that its key is learned again", t.Computer, err)
		}
		h.want, h.source = k, learnedBy(*p.Learned, "")
	case p.Step == nil:
		return nil, permanentf("no host key is known for %s and this step has no store to learn one: pin its key at enrolment", t.Computer)
	default:
		h.learn = true
	}
	return h, nil
}

func parseKey(s string) (ssh.PublicKey, error) {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	return k, err
}

func learnedBy(r HostKeyRecord, what string) string {
	return fmt.Sprintf("learned %sby job %s attempt %d at %s", what, r.JobID, r.Attempt, r.Recorded.UTC().Format(time.RFC3339))
}

// load reads what this step learned already (nothing to read when a key
// is expected from the enrolment).
func (h *hostKeyCheck) load() error {
	if !h.learn {
		return nil
	}
	rec, _, err := h.t.HostKey.Step.Get(h.ctx, h.t.Computer)
	switch {
	case errors.Is(err, ErrNoRecord):
		return nil
	case err != nil:
		return fmt.Errorf("%w: host key of this step: %v", ErrNotAnswering, err)
	}
	return h.expect(rec)
}

// expect makes rec, learned by this step, the one key accepted.
func (h *hostKeyCheck) expect(rec HostKeyRecord) error {
	k, err := parseKey(rec.Key)
	if err != nil {
		return fmt.Errorf("host key learned by this step for %s is unreadable: %v", h.t.Computer, err)
	}
	h.want, h.source = k, learnedBy(rec, "earlier in this step ")
	return nil
}

// algorithms restricts the negotiation to the expected key's type, so a
// server with several host keys offers the one we can check.
func (h *hostKeyCheck) algorithms() []string {
	if h.want == nil {
		return nil
	}
	if h.want.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{h.want.Type()}
}

func (h *hostKeyCheck) callback(_ string, _ net.Addr, key ssh.PublicKey) error {
	h.failure = h.verify(key)
	return h.failure
}

func (h *hostKeyCheck) verify(key ssh.PublicKey) error {
	if h.want != nil {
		if !bytes.Equal(h.want.Marshal(), key.Marshal()) {
			return h.mismatch(h.want, key)
		}
		return nil
	}
	return h.record(key)
}

// record learns key: the first key this step sees.
func (h *hostKeyCheck) record(key ssh.PublicKey) error {
	p := h.t.HostKey
	rec := HostKeyRecord{Key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))),
		JobID: p.JobID, Attempt: p.Attempt, Recorded: time.Now().UTC()}
	err := p.Step.Put(h.ctx, h.t.Computer, rec, 0)
	if errors.Is(err, ErrConflict) {
		// Another dial of the same step learned first: check against it.
		got, _, gerr := p.Step.Get(h.ctx, h.t.Computer)
		if gerr != nil {
			return fmt.Errorf("%w: host key of this step: %v", ErrNotAnswering, gerr)
		}
		if err := h.expect(got); err != nil {
			return err
		}
		return h.verify(key)
	}
	if err != nil {
		return fmt.Errorf("%w: host key of this step: %v", ErrNotAnswering, err)
	}
	h.want, h.source = key, learnedBy(rec, "earlier in this step ")
	return nil
}

func (h *hostKeyCheck) mismatch(want, got ssh.PublicKey) error {
	return &HostKeyMismatchError{Computer: h.t.Computer, Want: ssh.FingerprintSHA256(want),
		Got: ssh.FingerprintSHA256(got), Source: h.source}
}

func permanentf(format string, args ...any) error {
	return permanent(fmt.Errorf(format, args...))
}
