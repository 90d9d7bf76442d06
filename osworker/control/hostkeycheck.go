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
	ctx     context.Context
	store   HostKeyStore
	t       Target
	pinned  ssh.PublicKey
	rec     HostKeyRecord
	rev     uint64
	found   bool
	failure error
}

// newHostKeyCheck parses the policy (no I/O: a bad pinned key fails at
// once, before any connection).
func newHostKeyCheck(ctx context.Context, store HostKeyStore, t Target) (*hostKeyCheck, error) {
	h := &hostKeyCheck{ctx: ctx, store: store, t: t}
	if t.HostKey.Pinned != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(t.HostKey.Pinned))
		if err != nil {
			return nil, permanentf("image.host_key of %s is not an SSH public key in authorized_keys form (\"ssh-ed25519 AAAA...\"): %v", t.Computer, err)
		}
		h.pinned = k
		return h, nil
	}
	if store == nil {
		return nil, permanentf("no host key store configured and image.host_key is empty: cannot verify %s", t.Computer)
	}
	return h, nil
}

// load reads the trust-on-first-use record (nothing to read when pinned).
func (h *hostKeyCheck) load() error {
	if h.pinned != nil {
		return nil
	}
	rec, rev, err := h.store.Get(h.ctx, h.t.Computer)
	switch {
	case errors.Is(err, ErrNoRecord):
	case err != nil:
		return fmt.Errorf("%w: host key store: %v", ErrNotAnswering, err)
	default:
		h.rec, h.rev, h.found = rec, rev, true
	}
	return nil
}

// algorithms restricts the negotiation to the expected key's type, so a
// server with several host keys offers the one we can check.
func (h *hostKeyCheck) algorithms() []string {
	var k ssh.PublicKey
	switch {
	case h.pinned != nil:
		k = h.pinned
	case h.found && !h.newWindow():
		k, _, _, _, _ = ssh.ParseAuthorizedKey([]byte(h.rec.Key))
	}
	if k == nil {
		return nil
	}
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{k.Type()}
}

// newWindow: this attempt reimaged the computer and the record is older
// than it, so the first key seen replaces the record.
func (h *hostKeyCheck) newWindow() bool {
	p := h.t.HostKey
	if !p.Reloaded {
		return false
	}
	return !h.found || h.rec.JobID != p.JobID || h.rec.Attempt != p.Attempt
}

func (h *hostKeyCheck) callback(_ string, _ net.Addr, key ssh.PublicKey) error {
	h.failure = h.verify(key)
	return h.failure
}

func (h *hostKeyCheck) verify(key ssh.PublicKey) error {
	if h.pinned != nil {
		if !bytes.Equal(h.pinned.Marshal(), key.Marshal()) {
			return h.mismatch(h.pinned, key, "pinned by the image")
		}
		return nil
	}
	if h.found && !h.newWindow() {
		want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.rec.Key))
		if err != nil {
			return fmt.Errorf("host key record of %s is corrupt (%v): delete it", h.t.Computer, err)
		}
		if !bytes.Equal(want.Marshal(), key.Marshal()) {
			return h.mismatch(want, key, fmt.Sprintf("recorded by job %s attempt %d at %s", h.rec.JobID, h.rec.Attempt, h.rec.Recorded.UTC().Format(time.RFC3339)))
		}
		return nil
	}
	return h.record(key)
}

func (h *hostKeyCheck) record(key ssh.PublicKey) error {
	rec := HostKeyRecord{
		Key:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))),
		JobID: h.t.HostKey.JobID, Attempt: h.t.HostKey.Attempt, Recorded: time.Now().UTC(),
	}
	err := h.store.Put(h.ctx, h.t.Computer, rec, h.rev)
	if errors.Is(err, ErrConflict) {
		// Another dial of the same step recorded first: check against it.
		got, rev, gerr := h.store.Get(h.ctx, h.t.Computer)
		if gerr != nil {
			return fmt.Errorf("%w: host key store: %v", ErrNotAnswering, gerr)
		}
		h.rec, h.rev, h.found = got, rev, true
		if h.newWindow() {
			return fmt.Errorf("%w: host key record of %s changed meanwhile", ErrNotAnswering, h.t.Computer)
		}
		return h.verify(key)
	}
	if err != nil {
		return fmt.Errorf("%w: host key store: %v", ErrNotAnswering, err)
	}
	h.rec, h.found = rec, true
	return nil
}

func (h *hostKeyCheck) mismatch(want, got ssh.PublicKey, source string) error {
	return &HostKeyMismatchError{Computer: h.t.Computer, Want: ssh.FingerprintSHA256(want),
		Got: ssh.FingerprintSHA256(got), Source: source}
}

func permanentf(format string, args ...any) error {
	return permanent(fmt.Errorf(format, args...))
}
