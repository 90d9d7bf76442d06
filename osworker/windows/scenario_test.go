package windows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/windows"
	"golang.org/x/crypto/ssh"
)

// scale is the time scale of the seed scenario: one real minute is 150ms,
// so every ratio of design.md's table is kept.
const scale = 400

func scaled(p messages.WaitProfile) messages.WaitProfile {
	for _, d := range []*messages.Duration{&p.InitialDelay, &p.Poll, &p.AnswerTimeout, &p.ReadyTimeout,
		&p.StallTimeout, &p.ResetInitialDelay, &p.ResetAnswerTimeout} {
		*d /= scale
	}
	p.Name += " (scaled 1/400)"
	return p
}

// recording is the Windows module, remembering every request it ran.
type recording struct {
	windows.Module
	mu   sync.Mutex
	reqs []messages.Request
}

func (r *recording) PostLoad(ctx context.Context, req messages.Request, env *osworker.Env) (string, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.Module.PostLoad(ctx, req, env)
}

func (r *recording) attempts(job string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, q := range r.reqs {
		if q.JobID == job {
			out = append(out, q.Attempt)
		}
	}
	return out
}

// lab is the whole system on one embedded NATS: coordinator, a loader of
// the simulated provisioner (its power endpoint resets devlab computers)
// and the Windows OS worker.
type lab struct {
	sim    *devlab.Sim
	client *coordinator.Client
	mod    *recording
	key    ssh.Signer
}

func newLab(t *testing.T, images ...string) *lab {
	t.Helper()
	srv := natstest.New(t)
	subj := messages.Subjects{Prefix: "vcl"}
	co, err := coordinator.New(natstest.Connect(t, srv.URL()), coordinator.Config{Subjects: subj, Name: "coordinator/test", MinPoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	l := &lab{sim: devlab.NewSim(images...), mod: &recording{}, key: labtest.Signer(t),
		client: coordinator.NewClient(natstest.Connect(t, srv.URL()), subj)}
	lw, err := loaderworker.New(natstest.Connect(t, srv.URL()), loaderworker.Config{Subjects: subj, Name: devlab.SimName, Settings: pool.Config{Concurrency: 4, Grace: time.Second}}, l.sim)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	ow, err := osworker.New(natstest.Connect(t, srv.URL()), osworker.Config{Subjects: subj, Signer: l.key, DialTimeout: 300 * time.Millisecond, PowerTimeout: 10 * time.Second, Settings: pool.Config{WorkerID: "os/test", Concurrency: 4, Grace: time.Second}}, l.mod, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ow.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ow.Stop)
	return l
}

// computer is a Windows 7 Sysprep computer whose SSH stays closed for 20
// (scaled) minutes of mini-setup after every power-on, then runs 3 more
// minutes of OOBE with SSH up.
func (l *lab) computer(t *testing.T, name string) *devlab.Computer {
	t.Helper()
	c, err := devlab.NewWindowsComputer(devlab.Config{Name: name, Authorized: l.key.PublicKey(),
		BootDelay: 20 * time.Minute / scale}, &devlab.Windows{Version: "7", Sysprep: true, SetupFor: 3 * time.Minute / scale})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l.sim.Add(c)
	return c
}

func (l *lab) submit(t *testing.T, id string, c *devlab.Computer, img messages.Image, p messages.WaitProfile) {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	img.WaitProfile = raw
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	comp := messages.Computer{Name: c.Name(), Provisioner: devlab.SimName, Type: messages.TypeBlade, Address: c.Addr()}
	if _, err := l.client.AddComputer(ctx, comp); err != nil {
		t.Fatal(err)
	}
	_, err = l.client.Submit(ctx, messages.JobSpec{ID: id, MaxAttempts: 2, Reload: messages.ReloadAlways, Image: img,
		Computer: messages.Computer{Name: c.Name()}})
	if err != nil {
		t.Fatal(err)
	}
}

// finished polls the job (bounded) until it is ready or failed.
func (l *lab) finished(t *testing.T, id string) messages.JobRecord {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rec, err := l.client.Get(ctx, id)
		cancel()
		if err == nil && (rec.State == messages.StateReady || rec.State == messages.StateFailed) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not finished within 60s: %+v (%v)", id, rec, err)
		}
	}
	panic("unreachable")
}

func history(rec messages.JobRecord) string {
	var b strings.Builder
	for _, s := range rec.Steps {
		fmt.Fprintf(&b, "%d %s %s %s: %s\n", s.Attempt, s.Step, s.Outcome, s.Reason, s.Detail)
	}
	return b.String()
}

// TestSeedScenario is the seed's problem: a Windows 7 Sysprep computer
// whose mini-setup (20 min) takes longer than the XP/2003 budget (15 s +
// 15 min) allows. With the Windows 7 Sysprep row (60 s + 30 min) it is
// ready on attempt 1. Forced onto the XP budget it times out, is
// power-reset through the loader, times out again (15 s + 10 min) and
// answers retry; the coordinator's attempt 2 (reload, attempt factor 2)
// reaches the OS module as attempt 2 and ends ready.
func TestSeedScenario(t *testing.T) {
	l := newLab(t, "win7-sp1-v3")
	img := messages.Image{Name: "win7-sp1-v3", OSFamily: "windows", OSVersion: "7", Sysprep: true}
	win7 := scaled(windows.Profile("7", messages.TypeBlade, true))
	xp := scaled(windows.Profile("xp", messages.TypeBlade, true))
	forced := win7 // the 6.x power-reset behaviour with XP's budget
	forced.Name = "XP/2003 budget on a Windows 7 Sysprep image (scaled 1/400)"
	forced.InitialDelay, forced.Poll, forced.AnswerTimeout = xp.InitialDelay, xp.Poll, xp.AnswerTimeout
	forced.ReadyTimeout, forced.StallTimeout = xp.ReadyTimeout, xp.StallTimeout
	forced.AttemptFactor = 2

	good, bad := l.computer(t, "win7-good"), l.computer(t, "win7-xp-budget")
	l.submit(t, "seed-win7", good, img, win7)
	l.submit(t, "seed-xp", bad, img, forced)

	rec := l.finished(t, "seed-win7")
	if rec.State != messages.StateReady || rec.Attempt != 1 {
		t.Errorf("Windows 7 profile: state %s on attempt %d, want ready on 1:\n%s", rec.State, rec.Attempt, history(rec))
	}
	if got := l.mod.attempts("seed-win7"); len(got) != 1 {
		t.Errorf("Windows 7 profile: post-load attempts %v, want [1]", got)
	}
	if b := good.Snapshot().Boots; b != 1 {
		t.Errorf("Windows 7 profile: %d boots, want 1 (no power reset)", b)
	}

	rec = l.finished(t, "seed-xp")
	h := history(rec)
	if rec.State != messages.StateReady || rec.Attempt != 2 {
		t.Fatalf("XP budget: state %s on attempt %d, want ready on attempt 2:\n%s", rec.State, rec.Attempt, h)
	}
	var first *messages.StepRecord
	for i, s := range rec.Steps {
		if s.Attempt == 1 && s.Step == messages.StepPostload {
			first = &rec.Steps[i]
		}
	}
	switch {
	case first == nil:
		t.Fatalf("no post-load of attempt 1:\n%s", h)
	case first.Outcome != messages.OutcomeRetry || first.Reason != "timeout":
		t.Errorf("attempt 1 post-load %s/%s, want retry/timeout:\n%s", first.Outcome, first.Reason, h)
	case !strings.Contains(first.Detail, "power reset did not help") || first.Profile == nil || first.Profile.Name != forced.Name:
		t.Errorf("attempt 1 detail %q profile %+v: want the power reset and the forced profile", first.Detail, first.Profile)
	}
	if got := l.mod.attempts("seed-xp"); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("post-load requests carried attempts %v, want [1 2]", got)
	}
	if b := bad.Snapshot().Boots; b != 3 {
		t.Errorf("XP budget: %d boots, want 3 (load, power reset, reload)", b)
	}
}
