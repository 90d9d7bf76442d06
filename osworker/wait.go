package osworker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/control"
)

// ProbeCommand is the trivial command WaitForAnswer runs; the computer
// answers when it prints ProbeWord.
const (
	ProbeCommand = "echo loadpool"
	ProbeWord    = "loadpool"
	// probeRunTimeout bounds the probe command once connected.
	probeRunTimeout = 15 * time.Second
)

// TimeoutError is a wait that ran out; the step answers retry with reason
// "timeout" and the error's text as detail.
type TimeoutError struct{ Detail string }

func (e *TimeoutError) Error() string { return e.Detail }

// Reason is the machine reason of the result.
func (e *TimeoutError) Reason() string { return "timeout" }

// WaitForAnswer waits until the computer answers SSH and runs ProbeCommand:
// InitialDelay, then a probe every Poll (jittered backoff from Poll/4 up to
// Poll) until AnswerTimeout (counted after the initial delay) runs out.
// With OnTimeout "power-reset" it then resets the computer through its
// loader (with evidence) and waits once more with ResetInitialDelay and
// ResetAnswerTimeout. From ResetFirstFromAttempt on, it resets before the
// first wait. A Permanent dial error (host key mismatch, auth refused)
// ends it at once. The caller closes the returned Conn.
func WaitForAnswer(ctx context.Context, env *Env, req messages.Request) (control.Conn, error) {
	return waitForAnswer(ctx, env, req.Attempt)
}

// waitForAnswer is WaitForAnswer. It stays on the stack for the whole wait
// (in each of 10,000 waits a process may hold), so the events and the
// power reset are in callees and the request is not passed down.
func waitForAnswer(ctx context.Context, env *Env, attempt int) (control.Conn, error) {
	p := &env.Profile
	if p.ResetFirstFromAttempt > 0 && attempt >= p.ResetFirstFromAttempt {
		resetFirst(ctx, env, attempt)
	}
	announceWait(env)
	conn, last, err := answerPhase(ctx, env, p.InitialDelay.D(), p.AnswerTimeout.D())
	if conn != nil || err != nil {
		return conn, err
	}
	return answerAfterTimeout(ctx, env, last)
}

func resetFirst(ctx context.Context, env *Env, attempt int) {
	if err := powerReset(ctx, env, fmt.Sprintf("attempt %d: power reset before the first wait (profile %s)", attempt, env.Profile.Name), false); err != nil {
		env.Event("power reset before the first wait failed: %v; waiting anyway", err)
	}
}

func announceWait(env *Env) {
	p := &env.Profile
	env.Event("waiting for %s to answer %s (profile %s: first probe after %s, give up after %s)",
		env.Target.Computer, answerVia(env.Target), p.Name, p.InitialDelay.D(), p.AnswerTimeout.D())
}

// answerAfterTimeout ends a first wait that ran out: a TimeoutError, or
// with OnTimeout "power-reset" a reset and a second wait.
func answerAfterTimeout(ctx context.Context, env *Env, last error) (control.Conn, error) {
	p := &env.Profile
	msg := fmt.Sprintf("no %s answer within %s (profile %s)", answerWord(env.Target), p.AnswerTimeout.D(), p.Name)
	if p.OnTimeout != messages.OnTimeoutPowerReset {
		return nil, &TimeoutError{Detail: msg + lastSeen(last)}
	}
	if err := powerReset(ctx, env, msg+": power reset", true); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		env.Event("%s: power reset failed: %v", msg, err)
		return nil, &TimeoutError{Detail: fmt.Sprintf("%s, power reset failed: %v", msg, err)}
	}
	delay, rtimeout := p.ResetInitialDelay.D(), p.ResetAnswerTimeout.D()
	env.Event("waiting again after the power reset (first probe after %s, give up after %s)", delay, rtimeout)
	conn, last, err := answerPhase(ctx, env, delay, rtimeout)
	if conn != nil || err != nil {
		return conn, err
	}
	return nil, &TimeoutError{Detail: msg + ", power reset did not help" + lastSeen(last)}
}

func lastSeen(err error) string {
	if err == nil {
		return ""
	}
	return " (last: " + err.Error() + ")"
}

// powerReset calls the loader and reports it as an event.
func powerReset(ctx context.Context, env *Env, why string, evidence bool) error {
	rep, err := env.Power(ctx, messages.PowerReset, evidence)
	if err != nil {
		return err
	}
	ev := ""
	if rep.Evidence != "" {
		ev = "; screen saved at " + rep.Evidence
	}
	if rep.Detail != "" {
		ev += " (" + rep.Detail + ")"
	}
	env.Event("%s: done by %s, power %s%s", why, orUnknown(rep.Worker), orUnknown(rep.State), ev)
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// answerPhase sleeps delay, then probes until timeout. It returns a Conn,
// or the last "not answering" error with a nil error when time ran out,
// or an error that ends the wait (Permanent, or ctx).
func answerPhase(ctx context.Context, env *Env, delay, timeout time.Duration) (control.Conn, error, error) {
	clk := env.clock()
	if err := sleep(ctx, clk, delay); err != nil {
		return nil, nil, err
	}
	deadline := clk.Now().Add(timeout)
	interval := max(env.Profile.Poll.D()/4, time.Millisecond)
	var last error
	for {
		conn, err := probeAside(ctx, env, deadline.Sub(clk.Now()))
		if err == nil {
			announceAnswer(env)
			return conn, nil, nil
		}
		if outcome.IsPermanent(err) || ctx.Err() != nil {
			return nil, nil, stopErr(ctx, err)
		}
		last = err
		left := deadline.Sub(clk.Now())
		if left <= 0 {
			return nil, last, nil
		}
		wait := jitter(interval)
		interval = min(interval*2, env.Profile.Poll.D())
		if err := sleep(ctx, clk, min(wait, left)); err != nil {
			return nil, nil, err
		}
	}
}

func announceAnswer(env *Env) {
	env.Event("%s answers %s", env.Target.Computer, answerWord(env.Target))
}

// probeAside runs probe on a goroutine of its own and waits for it. The
// dial and the SSH handshake need a deep stack: run on the step's
// goroutine, which lives for the whole wait, they would grow its stack at
// every probe (Go shrinks a stack at a GC, when under a quarter of it is in
// use), and 10,000 waits would hold 10,000 grown stacks. Aside, only the
// probes running at this moment hold one.
func probeAside(ctx context.Context, env *Env, left time.Duration) (control.Conn, error) {
	type answer struct {
		conn control.Conn
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		conn, err := probe(ctx, env, left)
		done <- answer{conn, err}
	}()
	a := <-done
	return a.conn, a.err
}

// probe dials once, with a dial deadline that never passes the phase's
// end, and runs ProbeCommand under its own deadline.
func probe(ctx context.Context, env *Env, left time.Duration) (control.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, max(left, 10*time.Millisecond))
	conn, err := env.Dial(dctx)
	cancel()
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, probeRunTimeout)
	defer cancel()
	out, err := conn.Run(rctx, ProbeCommand)
	if err == nil && (!out.OK() || !strings.Contains(string(out.Stdout), ProbeWord)) {
		err = fmt.Errorf("%w: %q answered exit %d, %q", control.ErrNotAnswering, ProbeCommand, out.Exit, firstLine(out.Stdout))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

func sleep(ctx context.Context, clk Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-clk.After(d):
		return nil
	}
}

// jitter picks a duration in [0.75d, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// CheckFunc looks at the computer once: done, a short description of the
// state it saw (progress; a change counts as a sign of life), or an error
// (Permanent ends the wait at once; others are remembered and polled on).
type CheckFunc func(ctx context.Context) (done bool, progress string, err error)

// WaitUntil polls check every Profile.Poll until it is done, within
// Profile.ReadyTimeout. When the progress string has not changed for
// Profile.StallTimeout (if set) it gives up early. Giving up is a
// *TimeoutError (retry) naming desc, the profile and the last state seen.
// Each new state is reported as an event.
func WaitUntil(ctx context.Context, env *Env, desc string, check CheckFunc) error {
	p, clk := env.Profile, env.clock()
	start := clk.Now()
	deadline, changed := start.Add(p.ReadyTimeout.D()), start
	progress, seen := "", false
	var last error
	for {
		cctx, cancel := context.WithDeadline(ctx, maxTime(deadline, clk.Now().Add(p.Poll.D())))
		done, prog, err := check(cctx)
		cancel()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err != nil && outcome.IsPermanent(err) {
			return err
		}
		if done && err == nil {
			return nil
		}
		last = err
		now := clk.Now()
		if err == nil && (!seen || prog != progress) {
			env.Event("%s: %s", desc, prog)
			progress, changed, seen = prog, now, true
		}
		if te := waitExpired(desc, p, start, now, deadline, changed, progress, last); te != nil {
			return te
		}
		if err := sleep(ctx, clk, min(jitter(p.Poll.D()), deadline.Sub(now))); err != nil {
			return err
		}
	}
}

func waitExpired(desc string, p messages.WaitProfile, start, now, deadline, changed time.Time, progress string, last error) error {
	state := fmt.Sprintf("last state %q", progress)
	if last != nil {
		state += "; last error: " + last.Error()
	}
	if p.StallTimeout > 0 && now.Sub(changed) >= p.StallTimeout.D() {
		return &TimeoutError{Detail: fmt.Sprintf("%s: no progress for %s (%s; profile %s)", desc, p.StallTimeout, state, p.Name)}
	}
	if !now.Before(deadline) {
		return &TimeoutError{Detail: fmt.Sprintf("%s: not done within %s (%s; profile %s)", desc, p.ReadyTimeout, state, p.Name)}
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// IsTimeout reports whether err is a wait that ran out.
func IsTimeout(err error) bool {
	var te *TimeoutError
	return errors.As(err, &te)
}

// answerWord names how the computer is reached: "SSH" or the enrolment's
// other control method.
func answerWord(t control.Target) string {
	if t.Control == "" || t.Control == control.MethodSSH {
		return "SSH"
	}
	if t.Control == messages.ControlQGA {
		return "guest agent"
	}
	return t.Control
}

func answerVia(t control.Target) string {
	if w := answerWord(t); w != "SSH" {
		return "over the " + w
	}
	return "SSH at " + t.Address
}
