package modtest

import (
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"golang.org/x/crypto/ssh"
)

// Run runs every conformance case, each with a fresh harness:
//   - slow boot: the port is closed, then sshd drops connections, then the
//     OS gets ready: ready, with the effective profile in the result;
//   - never answers: retry after the profile's budget, with a power reset
//     through the loader attempted and named in the detail;
//   - host key mismatch: the key learned in a reload window (and reported
//     in the result) is enforced on a later step that did not reload;
//     the computer's key changed outside a reload window: fail, naming
//     both fingerprints and the step that learned the key;
//   - reload learns the new key: a reload window replaces the learned key
//     and reports the new one;
//   - pinned key: a key pinned at enrolment is checked even in a reload
//     window;
//   - attempt number visible: attempt 3 gets the attempt factor twice and,
//     with reset_first_from_attempt 3, a power reset before the first wait;
//   - post-load again: a second post-load of a ready computer that was
//     not reloaded is ready again (modules are idempotent).
func Run(t *testing.T, f Fixture) { RunOver(t, f, MethodSSH) }

// Control methods the suite runs over.
const (
	MethodSSH = "ssh"
	// MethodQGA: every computer is reached through a QEMU guest agent
	// socket in front of it (devlab.Agent) with the qga control; the host
	// key cases do not apply (the agent has no host key).
	MethodQGA = "qga"
)

// RunOver runs the conformance cases with the computers reached by
// method.
func RunOver(t *testing.T, f Fixture, method string) {
	cases := []struct {
		name string
		run  func(h *Harness)
		ssh  bool // SSH only
	}{
		{"slow boot then ready", caseSlowBoot, false},
		{"never answers: retry after reset", caseNeverAnswers, false},
		{"host key mismatch: fail", caseHostKeyMismatch, true},
		{"reload learns the new host key", caseReloadLearns, true},
		{"pinned host key is strict after a reload", casePinned, true},
		{"attempt number visible", caseAttempt, false},
		{"post-load again is ready", caseIdempotent, false},
	}
	for _, c := range cases {
		if c.ssh && method != MethodSSH {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			c.run(NewHarnessOver(t, f, "", method))
		})
	}
}

func slowBoot() devlab.Config {
	return devlab.Config{BootDelay: 150 * time.Millisecond, Flaky: devlab.ModeAcceptClose, FlakyFor: 100 * time.Millisecond}
}

func caseSlowBoot(h *Harness) {
	c := h.Computer("slow-01", slowBoot())
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	req := h.Request(c, "job-slow", 1)
	res := h.PostLoad(req)
	h.Want(res, messages.OutcomeReady)
	if res.Profile.AnswerTimeout.D() != 2*time.Second || res.Profile.Poll.D() != 25*time.Millisecond {
		h.T.Fatalf("result profile %+v: not the operator's profile", res.Profile)
	}
	if h.F.Ready != nil {
		h.F.Ready(h.T, c, req, res)
	}
}

func caseNeverAnswers(h *Harness) {
	c := h.Computer("dead-01", devlab.Config{})
	c.NeverAnswer(true)
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	res := h.PostLoad(h.Request(c, "job-dead", 1))
	h.Want(res, messages.OutcomeRetry)
	word := "SSH"
	if h.method == MethodQGA {
		word = "guest agent"
	}
	for _, w := range []string{"no " + word + " answer within 2s", "profile", "power reset did not help"} {
		if !strings.Contains(res.Detail, w) {
			h.T.Errorf("detail %q does not say %q", res.Detail, w)
		}
	}
	if res.Reason != "timeout" {
		h.T.Errorf("reason %q, want timeout", res.Reason)
	}
	if b := c.Snapshot().Boots; b != 2 {
		h.T.Errorf("the computer booted %d times, want 2 (load + power reset through the loader)", b)
	}
}

func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// wantLearned checks that res reports c's current key, learned by job at
// attempt.
func wantLearned(h *Harness, res messages.Result, c *devlab.Computer, job string, attempt int) {
	h.T.Helper()
	l := res.LearnedHostKey
	if l == nil || l.Key != authorized(c.HostKey()) || l.JobID != job || l.Attempt != attempt || l.Recorded.IsZero() {
		h.T.Fatalf("learned host key %+v, want %s by job %s attempt %d", l, authorized(c.HostKey()), job, attempt)
	}
}

func caseHostKeyMismatch(h *Harness) {
	c := h.Computer("moved-01", devlab.Config{})
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	res := h.PostLoad(h.Request(c, "job-first", 1))
	h.Want(res, messages.OutcomeReady)
	wantLearned(h, res, c, "job-first", 1)
	// Enforced on a later step that did not reload (and nothing learned).
	req := h.Request(c, "job-again", 1)
	req.Reloaded = false
	if res := h.PostLoad(req); res.Outcome != messages.OutcomeReady || res.LearnedHostKey != nil {
		h.T.Fatalf("the learned key, unchanged, without reload: %s (%s), learned %+v; want ready, nothing learned", res.Outcome, res.Detail, res.LearnedHostKey)
	}
	old := c.HostKey()
	// Reimaged behind loadpool's back: a later job that did not reload it
	// must not trust the new key.
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	req = h.Request(c, "job-second", 1)
	req.Reloaded = false
	res = h.PostLoad(req)
	h.Want(res, messages.OutcomeFail)
	for _, w := range []string{"moved-01", ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(c.HostKey()), "learned by job job-first attempt 1"} {
		if !strings.Contains(res.Detail, w) {
			h.T.Errorf("detail %q does not name %q", res.Detail, w)
		}
	}
	if res.Reason != "host-key-mismatch" {
		h.T.Errorf("reason %q, want host-key-mismatch", res.Reason)
	}
	if res.LearnedHostKey != nil {
		h.T.Errorf("a step outside a reload window learned %+v", res.LearnedHostKey)
	}
}

func caseReloadLearns(h *Harness) {
	c := h.Computer("relearn-01", devlab.Config{})
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	h.Want(h.PostLoad(h.Request(c, "job-old", 1)), messages.OutcomeReady)
	old := authorized(c.HostKey())
	if err := c.Boot(h.F.Image.Name); err != nil { // this job's load reimaged it
		h.T.Fatal(err)
	}
	req := h.Request(c, "job-new", 2)
	if req.Computer.LearnedHostKey == nil || req.Computer.LearnedHostKey.Key != old {
		h.T.Fatalf("the enrolment does not carry the old learned key: %+v", req.Computer.LearnedHostKey)
	}
	res := h.PostLoad(req)
	h.Want(res, messages.OutcomeReady)
	wantLearned(h, res, c, "job-new", 2)
}

func casePinned(h *Harness) {
	c := h.Computer("pinned-01", devlab.Config{})
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	req := h.Request(c, "job-pin", 1)
	req.Computer.HostKey = authorized(c.HostKey())
	res := h.PostLoad(req)
	h.Want(res, messages.OutcomeReady)
	if res.LearnedHostKey != nil {
		h.T.Errorf("a pinned computer learned %+v", res.LearnedHostKey)
	}
	old := c.HostKey()
	if err := c.Boot(h.F.Image.Name); err != nil { // reimaged, but the operator pinned the old key
		h.T.Fatal(err)
	}
	req = h.Request(c, "job-pin-2", 1)
	req.Computer.HostKey = authorized(old)
	res = h.PostLoad(req)
	h.Want(res, messages.OutcomeFail)
	for _, w := range []string{"pinned-01", ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(c.HostKey()), "pinned at enrolment"} {
		if !strings.Contains(res.Detail, w) {
			h.T.Errorf("detail %q does not name %q", res.Detail, w)
		}
	}
}

func caseAttempt(h *Harness) {
	c := h.Computer("again-01", devlab.Config{BootDelay: 20 * time.Millisecond})
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	req := h.Request(c, "job-again", 3)
	req.Image.WaitProfile = []byte(`{"reset_first_from_attempt": 3}`)
	res := h.PostLoad(req)
	h.Want(res, messages.OutcomeReady)
	if got, want := res.Profile.AnswerTimeout.D(), 4500*time.Millisecond; got != want {
		h.T.Errorf("attempt 3 answer timeout %s, want %s (2s x 1.5 x 1.5)", got, want)
	}
	if b := c.Snapshot().Boots; b != 2 {
		h.T.Errorf("the computer booted %d times, want 2 (load + reset before the first wait on attempt 3)", b)
	}
	for _, e := range h.Events("job-again") {
		if e.Attempt != 3 {
			h.T.Errorf("event %q carries attempt %d, want 3", e.Message, e.Attempt)
		}
	}
}

func caseIdempotent(h *Harness) {
	c := h.Computer("twice-01", devlab.Config{BootDelay: 20 * time.Millisecond})
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	h.Want(h.PostLoad(h.Request(c, "job-twice", 1)), messages.OutcomeReady)
	// The next attempt found the image loaded (reload if-needed skipped).
	req := h.Request(c, "job-twice", 2)
	req.Reloaded = false
	res := h.PostLoad(req)
	h.Want(res, messages.OutcomeReady)
	if h.F.Ready != nil {
		h.F.Ready(h.T, c, req, res)
	}
}
