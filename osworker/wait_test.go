package osworker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/control"
	"golang.org/x/crypto/ssh"
)

type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) Event(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, msg)
}

func (e *events) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.all, "\n")
}

func tinyProfile() messages.WaitProfile {
	ms := func(n int) messages.Duration { return messages.Duration(time.Duration(n) * time.Millisecond) }
	return messages.WaitProfile{Name: "test/tiny", InitialDelay: ms(5), Poll: ms(20), AnswerTimeout: ms(2500),
		ReadyTimeout: ms(600), OnTimeout: messages.OnTimeoutPowerReset, ResetInitialDelay: ms(5), ResetAnswerTimeout: ms(1000)}
}

type rig struct {
	comp   *devlab.Computer
	env    *osworker.Env
	ev     *events
	resets int
	mu     sync.Mutex
}

func newRig(t *testing.T, cfg devlab.Config, p messages.WaitProfile) *rig {
	t.Helper()
	client := labtest.Signer(t)
	if cfg.Shell == nil {
		cfg.Shell = &devlab.Linux{}
	}
	cfg.Name, cfg.Authorized = "vm-1", client.PublicKey()
	c, err := devlab.NewComputer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	d, err := control.NewSSHDialer(control.SSHConfig{Signers: []ssh.Signer{client}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{comp: c, ev: &events{}}
	r.env = &osworker.Env{Profile: p, Progress: r.ev, Dialer: d,
		Target: control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: control.HostKeyPolicy{JobID: "j", Attempt: 1, Reloaded: true, Step: &control.MemHostKeys{}}},
		PowerFn: func(ctx context.Context, action string, evidence bool) (messages.PowerReply, error) {
			r.mu.Lock()
			r.resets++
			r.mu.Unlock()
			return messages.PowerReply{Computer: "vm-1", Action: action, State: "on", Evidence: "screen.png"}, c.Reset()
		}}
	return r
}

func (r *rig) resetCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resets
}

func TestWaitForAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        devlab.Config
		hang       int
		never      bool
		onTimeout  string
		resetFirst int
		wantErr    bool
		wantResets int
		detail     []string
	}{
		{name: "slow boot", cfg: devlab.Config{BootDelay: 100 * time.Millisecond, Flaky: devlab.ModeAcceptClose, FlakyFor: 60 * time.Millisecond}},
		{name: "silent sshd while booting", cfg: devlab.Config{BootDelay: 20 * time.Millisecond, Flaky: devlab.ModeSilent, FlakyFor: 100 * time.Millisecond}},
		{name: "hung boot, reset helps", hang: 1, wantResets: 1},
		{name: "never answers, reset does not help", never: true, wantErr: true, wantResets: 1,
			detail: []string{"no SSH answer within 2.5s (profile test/tiny), power reset did not help", "connection refused"}},
		{name: "never answers, retry at once", never: true, onTimeout: messages.OnTimeoutRetry, wantErr: true,
			detail: []string{"no SSH answer within 2.5s (profile test/tiny)"}},
		{name: "reset first from attempt 1", resetFirst: 1, wantResets: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tinyProfile()
			if tc.onTimeout != "" {
				p.OnTimeout = tc.onTimeout
			}
			p.ResetFirstFromAttempt = tc.resetFirst
			r := newRig(t, tc.cfg, p)
			r.comp.NeverAnswer(tc.never)
			r.comp.HangBoots(tc.hang)
			if err := r.comp.Boot("img"); err != nil {
				t.Fatal(err)
			}
			conn, err := osworker.WaitForAnswer(context.Background(), r.env, messages.Request{JobID: "j", Attempt: 1})
			if got := r.resetCount(); got != tc.wantResets {
				t.Errorf("power resets = %d, want %d", got, tc.wantResets)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("err = %v; events:\n%s", err, r.ev.text())
				}
				conn.Close()
				return
			}
			if !osworker.IsTimeout(err) || outcome.Of(err) != messages.OutcomeRetry {
				t.Fatalf("err = %v, want a timeout answering retry", err)
			}
			for _, d := range tc.detail {
				if !strings.Contains(err.Error(), d) {
					t.Errorf("detail %q does not contain %q", err, d)
				}
			}
		})
	}
}

func TestWaitForAnswerHostKeyMismatchFailsAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, devlab.Config{}, tinyProfile())
	r.env.Target.HostKey = control.HostKeyPolicy{Pinned: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGzf3DZ4T0QC7nGn1jk0u8cIzVuM0Tgpq1cJ6t7c8Fz9"}
	if err := r.comp.Boot("img"); err != nil {
		t.Fatal(err)
	}
	_, err := osworker.WaitForAnswer(context.Background(), r.env, messages.Request{JobID: "j", Attempt: 1})
	var mm *control.HostKeyMismatchError
	if !errors.As(err, &mm) || outcome.Of(err) != messages.OutcomeFail || r.resetCount() != 0 {
		t.Fatalf("err = %v (resets %d), want a mismatch answering fail without reset", err, r.resetCount())
	}
}

func TestWaitUntil(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		stall   time.Duration
		states  []string // one per call; the last repeats
		doneAt  int
		err     error
		want    func(error) bool
		mention string
	}{
		{name: "done after progress", states: []string{"a", "b", "c"}, doneAt: 3, want: func(err error) bool { return err == nil }},
		{name: "stall ends early", stall: 50 * time.Millisecond, states: []string{"a", "b", "stuck"}, doneAt: -1,
			want: osworker.IsTimeout, mention: `no progress for 50ms (last state "stuck"`},
		{name: "ready timeout", states: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z"}, doneAt: -1,
			want: osworker.IsTimeout, mention: "not done within 600ms"},
		{name: "permanent fails at once", states: []string{"a"}, doneAt: -1, err: outcome.Permanent(errBoom),
			want: func(err error) bool { return errors.Is(err, errBoom) && outcome.IsPermanent(err) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tinyProfile()
			p.StallTimeout = messages.Duration(tc.stall)
			env := &osworker.Env{Profile: p, Progress: &events{}}
			calls := 0
			err := osworker.WaitUntil(context.Background(), env, "setup", func(ctx context.Context) (bool, string, error) {
				calls++
				s := tc.states[min(calls, len(tc.states))-1]
				return calls == tc.doneAt, s, tc.err
			})
			if !tc.want(err) {
				t.Fatalf("err = %v after %d calls", err, calls)
			}
			if tc.mention != "" && (!strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), "setup")) {
				t.Fatalf("detail %q does not mention %q", err, tc.mention)
			}
		})
	}
}
