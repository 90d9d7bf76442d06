package linux_test

// The Linux module through the real OS-worker runtime (osworker.Worker on
// an embedded NATS server, a post-load request published on
// vcl.postload.request.linux, the result read from the results stream)
// against Debian's real OpenSSH server (devlab/sshd). Real: sshd, key
// exchange, public key authentication, host key checking (pinned, or
// trust on first use in the NATS KV bucket), the login shell, exit
// statuses, `hostname`, the files written. Stand-in: systemctl only,
// because PID 1 of the test machine is not systemd (devlab/sshd's
// Options.SystemState). sshd runs inside its own UTS and mount
// namespaces with a private copy of /etc, so the module's hostname and
// /etc writes cannot reach the machine the tests run on; each test
// asserts that too. They skip only when /usr/sbin/sshd is missing or the
// tests do not run as root.

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/devlab/sshd"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/ssh"
)

var realSubjects = steptest.Subjects

// realProfiles keeps waits short but generous for a loaded CI machine;
// on_timeout retry: there is no loader to power-reset through.
const realProfiles = `[{"family": "linux", "set": {"initial_delay": "0s", "poll": "500ms",
	"answer_timeout": "30s", "ready_timeout": "6s", "stall_timeout": "0s", "on_timeout": "retry",
	"attempt_factor": 1, "reset_first_from_attempt": 0}}]`

// realRig is the pool's wire (steptest) + one Linux OS worker.
type realRig struct {
	*steptest.Wire
	t *testing.T
}

func newRealRig(t *testing.T, client ssh.Signer) *realRig {
	t.Helper()
	wire := steptest.New(t)
	w, err := osworker.New(natstest.Connect(t, wire.URL()), osworker.Config{Subjects: realSubjects, Signer: client, DialTimeout: 15 * time.Second, Profiles: []byte(realProfiles), Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Settings: pool.Config{WorkerID: "realsshd/1", Concurrency: 2, Grace: 5 * time.Second}}, linux.Module{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &realRig{Wire: wire, t: t}
}

// postLoad publishes req and returns its result and the job's events.
func (r *realRig) postLoad(req messages.Request) (messages.Result, *realEvents) {
	r.t.Helper()
	ev := &realEvents{changed: make(chan struct{})}
	sub, err := r.Conn().Subscribe(realSubjects.Event(req.JobID), ev.add)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = sub.Unsubscribe() })
	r.PublishRaw(realSubjects.PostloadRequest(linux.Family), messages.Encode(req))
	res := r.Result(2 * time.Minute)
	if res.JobID != req.JobID || res.Step != messages.StepPostload {
		r.t.Fatalf("result of %s/%s, want %s/postload", res.JobID, res.Step, req.JobID)
	}
	return res, ev
}

// wantLearned checks that res reports srv's key, learned by job.
func wantLearned(t *testing.T, res messages.Result, srv *sshd.Server, job string) {
	t.Helper()
	if l := res.LearnedHostKey; l == nil || l.Key != srv.HostKeyLine() || l.JobID != job || l.Recorded.IsZero() {
		t.Errorf("learned host key %+v; want %s learned by %s", l, srv.HostKeyLine(), job)
	}
}

// realEvents collects one job's event messages.
type realEvents struct {
	mu      sync.Mutex
	all     []string
	changed chan struct{}
}

func (e *realEvents) add(m *nats.Msg) {
	var ev messages.Event
	if messages.Decode(m.Data, &ev, false) != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev.Message)
	close(e.changed)
	e.changed = make(chan struct{})
}

// want waits (up to 10s: events travel apart from the result) for an
// event containing each of subs.
func (e *realEvents) want(t *testing.T, subs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, sub := range subs {
		if text, ok := e.waitFor(ctx, sub); !ok {
			t.Errorf("no event contains %q; events:\n%s", sub, text)
		}
	}
}

func (e *realEvents) waitFor(ctx context.Context, sub string) (string, bool) {
	for {
		e.mu.Lock()
		text, ch := strings.Join(e.all, "\n"), e.changed
		e.mu.Unlock()
		if strings.Contains(text, sub) {
			return text, true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return text, false
		}
	}
}

func realRequest(srv *sshd.Server, job string, pinned bool) messages.Request {
	img := messages.Image{Name: "debian-12-real-v3", OSFamily: linux.Family, OSVersion: "12"}
	c := messages.Computer{Name: "lp-real-01", Provisioner: "lab", Type: messages.TypeVirtualMachine, Address: srv.Addr()}
	if pinned {
		c.HostKey = srv.HostKeyLine()
	}
	return messages.Request{JobID: job, Attempt: 1, Step: messages.StepPostload,
		Computer: c, Image: img, Reload: messages.ReloadIfNeeded, Reloaded: true}
}

func TestRealSSHDPostLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		state  string
		pinned bool
		detail string
	}{
		{name: "running, pinned host key", state: "running", pinned: true, detail: "ready: system running"},
		{name: "degraded, host key learned in the reload window", state: "degraded", detail: "ready: system degraded (failed units: none listed)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host := snapshotHost(t)
			srv := sshd.Start(t, sshd.Options{SystemState: tc.state, Hostname: "before-postload"})
			rig := newRealRig(t, srv.Client())
			req := realRequest(srv, "real-job-1", tc.pinned)
			res, ev := rig.postLoad(req)
			wantResult(t, res, messages.OutcomeReady, tc.detail, "hostname lp-real-01, image debian-12-real-v3 recorded")
			ev.want(t, "lp-real-01 answers SSH", "boot finished: "+tc.state, "hostname set to lp-real-01",
				"image debian-12-real-v3 recorded in /etc/loadpool-image")
			checkInside(t, srv, req)
			host.unchanged(t)
			if !tc.pinned {
				wantLearned(t, res, srv, "real-job-1")
			} else if res.LearnedHostKey != nil {
				t.Errorf("a pinned computer learned %+v", res.LearnedHostKey)
			}

			// Again (a redelivered step, or the next job without reload,
			// with the learned key enrolled): nothing is written twice.
			req2 := realRequest(srv, "real-job-2", tc.pinned)
			req2.Reloaded, req2.Computer.LearnedHostKey = false, res.LearnedHostKey
			res, ev = rig.postLoad(req2)
			wantResult(t, res, messages.OutcomeReady, tc.detail)
			ev.want(t, "hostname already lp-real-01", "image debian-12-real-v3 already recorded")
			checkInside(t, srv, req2)
			host.unchanged(t)
		})
	}
}

// TestRealSSHDNoSystemd: without the stand-in, the real systemctl of a
// machine whose PID 1 is not systemd says "offline" (or systemctl is not
// installed at all): there is no systemd to wait for, so the SSH answer
// ends the boot wait, as in Apache VCL's Linux module, and the computer is
// configured.
func TestRealSSHDNoSystemd(t *testing.T) {
	t.Parallel()
	host := snapshotHost(t)
	srv := sshd.Start(t, sshd.Options{})
	rig := newRealRig(t, srv.Client())
	res, _ := rig.postLoad(realRequest(srv, "real-job-offline", true))
	wantResult(t, res, messages.OutcomeReady, "boot not confirmed by systemd")
	if got, err := srv.Hostname(context.Background()); err != nil || got != "lp-real-01" {
		t.Errorf("hostname %q (%v): want lp-real-01", got, err)
	}
	host.unchanged(t)
}

// TestRealSSHDChangedHostKeyFails: the key learned in job-1's reload
// window (reported in its result, kept in the enrolment) no longer matches
// once sshd is restarted at the same address with a new host key; job-2,
// which did not reload, answers fail naming the computer, both
// fingerprints and where the expected key came from. Job-3's load
// reimaged the computer: its reload window learns and reports the new key.
func TestRealSSHDChangedHostKeyFails(t *testing.T) {
	t.Parallel()
	first := sshd.Start(t, sshd.Options{SystemState: "running"})
	rig := newRealRig(t, first.Client())
	res, _ := rig.postLoad(realRequest(first, "real-job-1", false))
	wantResult(t, res, messages.OutcomeReady, "ready: system running")
	learned := res.LearnedHostKey
	wantLearned(t, res, first, "real-job-1")
	first.Stop()
	second := sshd.Start(t, sshd.Options{SystemState: "running", Port: first.Port(), Client: first.Client(), Hostname: "unverified"})
	req := realRequest(second, "real-job-2", false)
	req.Reloaded, req.Computer.LearnedHostKey = false, learned
	res, _ = rig.postLoad(req)
	wantResult(t, res, messages.OutcomeFail, "lp-real-01", ssh.FingerprintSHA256(first.HostKey()),
		ssh.FingerprintSHA256(second.HostKey()), "learned by job real-job-1 attempt 1 at "+learned.Recorded.UTC().Format(time.RFC3339))
	if res.Reason != "host-key-mismatch" || res.LearnedHostKey != nil {
		t.Errorf("reason %q, learned %+v; want host-key-mismatch, nothing learned", res.Reason, res.LearnedHostKey)
	}
	if h, err := second.Hostname(context.Background()); err != nil || h != "unverified" {
		t.Errorf("hostname of the unverified computer = %q, %v: nothing may change before its host key is verified", h, err)
	}
	req = realRequest(second, "real-job-3", false)
	req.Computer.LearnedHostKey = learned // Reloaded: a reload window
	res, _ = rig.postLoad(req)
	wantResult(t, res, messages.OutcomeReady, "ready: system running")
	wantLearned(t, res, second, "real-job-3")
}

// TestRealSSHDPinnedStrictAfterReload: a key pinned at enrolment is the
// only one accepted, even in a reload window.
func TestRealSSHDPinnedStrictAfterReload(t *testing.T) {
	t.Parallel()
	first := sshd.Start(t, sshd.Options{SystemState: "running"})
	pinned := first.HostKeyLine()
	first.Stop()
	second := sshd.Start(t, sshd.Options{SystemState: "running", Port: first.Port(), Client: first.Client(), Hostname: "unverified"})
	rig := newRealRig(t, second.Client())
	req := realRequest(second, "real-job-pin", false)
	req.Computer.HostKey = pinned
	res, _ := rig.postLoad(req)
	wantResult(t, res, messages.OutcomeFail, "lp-real-01", ssh.FingerprintSHA256(first.HostKey()),
		ssh.FingerprintSHA256(second.HostKey()), "pinned at enrolment")
	if res.LearnedHostKey != nil {
		t.Errorf("a pinned computer learned %+v", res.LearnedHostKey)
	}
	if h, err := second.Hostname(context.Background()); err != nil || h != "unverified" {
		t.Errorf("hostname = %q, %v: nothing may change before the host key is verified", h, err)
	}
}

func wantResult(t *testing.T, res messages.Result, o messages.Outcome, detail ...string) {
	t.Helper()
	if res.Outcome != o {
		t.Fatalf("outcome %s (%s; reason %q), want %s", res.Outcome, res.Detail, res.Reason, o)
	}
	for _, d := range detail {
		if !strings.Contains(res.Detail, d) {
			t.Errorf("detail %q does not contain %q", res.Detail, d)
		}
	}
	if res.Profile == nil || res.Profile.ReadyTimeout.D() != 6*time.Second {
		t.Errorf("result profile %+v: want the effective profile (ready_timeout 6s from the operator's file)", res.Profile)
	}
}

// checkInside checks the effects as the computer sees them.
func checkInside(t *testing.T, srv *sshd.Server, req messages.Request) {
	t.Helper()
	if got, err := srv.Hostname(context.Background()); err != nil || got != req.Computer.Name {
		t.Errorf("hostname inside the namespace = %q, %v; want %q", got, err, req.Computer.Name)
	}
	files := map[string]string{linux.ImageFile: req.Image.Name + "\n", "/etc/hostname": req.Computer.Name + "\n"}
	for path, want := range files {
		if b, err := srv.ReadFile(path); err != nil || string(b) != want {
			t.Errorf("%s inside = %q, %v; want %q", path, b, err, want)
		}
	}
}

// hostState is what the module would change if it escaped the namespaces.
type hostState struct {
	hostname       string
	etcHostname    []byte
	image          []byte
	imageNotExists bool
}

func snapshotHost(t *testing.T) hostState {
	t.Helper()
	var h hostState
	var err error
	if h.hostname, err = os.Hostname(); err != nil {
		t.Fatal(err)
	}
	h.etcHostname, _ = os.ReadFile("/etc/hostname")
	h.image, err = os.ReadFile(linux.ImageFile)
	h.imageNotExists = errors.Is(err, fs.ErrNotExist)
	return h
}

func (h hostState) unchanged(t *testing.T) {
	t.Helper()
	now := snapshotHost(t)
	if now.hostname != h.hostname || !bytes.Equal(now.etcHostname, h.etcHostname) {
		t.Errorf("the test machine's hostname changed: %q/%q -> %q/%q", h.hostname, h.etcHostname, now.hostname, now.etcHostname)
	}
	if now.imageNotExists != h.imageNotExists || !bytes.Equal(now.image, h.image) {
		t.Errorf("the test machine's %s changed: %q -> %q", linux.ImageFile, h.image, now.image)
	}
}
