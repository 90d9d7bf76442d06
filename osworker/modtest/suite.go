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
//   - host key mismatch: the computer's key changes outside a reload
//     window: fail, naming both fingerprints;
//   - attempt number visible: attempt 3 gets the attempt factor twice and,
//     with reset_first_from_attempt 3, a power reset before the first wait;
//   - post-load again: a second post-load of a ready computer that was
//     not reloaded is ready again (modules are idempotent).
func Run(t *testing.T, f Fixture) {
	cases := []struct {
		name string
		run  func(h *Harness)
	}{
		{"slow boot then ready", caseSlowBoot},
		{"never answers: retry after reset", caseNeverAnswers},
		{"host key mismatch: fail", caseHostKeyMismatch},
		{"attempt number visible", caseAttempt},
		{"post-load again is ready", caseIdempotent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(NewHarness(t, f, ""))
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
	for _, w := range []string{"no SSH answer within 2s", "profile", "power reset did not help"} {
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

func caseHostKeyMismatch(h *Harness) {
	c := h.Computer("moved-01", devlab.Config{})
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	h.Want(h.PostLoad(h.Request(c, "job-first", 1)), messages.OutcomeReady)
	old := c.HostKey()
	// Reimaged behind loadpool's back: a later job that did not reload it
	// must not trust the new key.
	if err := c.Boot(h.F.Image.Name); err != nil {
		h.T.Fatal(err)
	}
	req := h.Request(c, "job-second", 1)
	req.Reloaded = false
	res := h.PostLoad(req)
	h.Want(res, messages.OutcomeFail)
	for _, w := range []string{"moved-01", ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(c.HostKey())} {
		if !strings.Contains(res.Detail, w) {
			h.T.Errorf("detail %q does not name %q", res.Detail, w)
		}
	}
	if res.Reason != "host-key-mismatch" {
		h.T.Errorf("reason %q, want host-key-mismatch", res.Reason)
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
