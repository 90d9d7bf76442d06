package webui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/internal/headless"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/loadpool/loadpool/progress"
	"github.com/loadpool/loadpool/stepworker"
	"github.com/loadpool/loadpool/webui"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var subj = messages.Subjects{Prefix: "vcl"}

// rig is a pipeline (embedded NATS, coordinator, loader pool "fake", OS
// pool "linux") with the web page in front of it.
type rig struct {
	nc      *nats.Conn
	cl      *coordinator.Client
	url     string
	release chan struct{}
	// power carries the reply of the power reset with evidence that the
	// post-load of ui-retry's attempt 2 asks for, as an OS worker whose
	// wait ran out does (power is owned: only during the job's post-load).
	power chan messages.PowerReply
}

var profile = messages.WaitProfile{Name: "linux", InitialDelay: messages.Duration(100 * time.Millisecond),
	Poll: messages.Duration(50 * time.Millisecond), AnswerTimeout: messages.Duration(400 * time.Millisecond),
	ReadyTimeout: messages.Duration(600 * time.Millisecond), OnTimeout: "retry"}

func newRig(t *testing.T) *rig {
	srv := natstest.New(t)
	quiet := slog.New(slog.DiscardHandler)
	settings := pool.Config{Concurrency: 8, Grace: time.Second}
	r := &rig{nc: natstest.Connect(t, srv.URL()), release: make(chan struct{}), power: make(chan messages.PowerReply, 1)}
	co, err := coordinator.New(natstest.Connect(t, srv.URL()), coordinator.Config{Subjects: subj, Logger: quiet, Settings: settings, Evidence: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	f := &loaderworker.Fake{LoadFunc: func(ctx context.Context, req messages.Request, _ progress.Progress) (loaderworker.LoadReport, error) {
		switch {
		case req.JobID == "ui-slow":
			select {
			case <-r.release:
			case <-ctx.Done():
				return loaderworker.LoadReport{}, ctx.Err()
			}
		case req.JobID == "ui-retry" && req.Attempt == 1:
			return loaderworker.LoadReport{}, errors.New("clone task failed: datastore busy")
		}
		return loaderworker.LoadReport{Detail: "cloned " + req.Image.Name, Reloaded: true}, nil
	}}
	lw, err := loaderworker.New(natstest.Connect(t, srv.URL()), loaderworker.Config{Subjects: subj, Name: "fake", Evidence: true, Logger: quiet, Settings: settings}, shooter{f})
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	ow, err := stepworker.New(natstest.Connect(t, srv.URL()), stepworker.Config{Subjects: subj, Step: messages.StepPostload, Pool: "linux", Logger: quiet, Settings: settings},
		func(ctx context.Context, req messages.Request, p progress.Progress) (stepworker.Report, error) {
			p.Event("waiting for " + req.Computer.Name + " to answer SSH")
			if req.JobID == "ui-retry" && req.Attempt == 2 {
				r.power <- r.powerWithEvidence(t, req.JobID, req.Attempt, req.Computer.Name)
			}
			select { // a post-load that takes a visible while
			case <-time.After(300 * time.Millisecond):
			case <-ctx.Done():
				return stepworker.Report{}, ctx.Err()
			}
			return stepworker.Report{Detail: "configured " + req.Computer.Name, Profile: &profile}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := ow.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ow.Stop)
	js, err := jetstream.New(r.nc)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the coordinator's evidence bucket", func() bool {
		_, err := js.ObjectStore(context.Background(), subj.EvidenceBucket())
		return err == nil
	})
	ui, err := webui.New(r.nc, webui.Config{Subjects: subj, Logger: quiet, Evidence: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ui.Serve("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ui.Stop)
	r.url = ui.URL()
	r.cl = coordinator.NewClient(r.nc, subj)
	return r
}

// shooter is a provisioner whose power actions keep a console screenshot
// and a serial log (as a VMware loader keeps the VM's screen).
type shooter struct{ *loaderworker.Fake }

func (shooter) ReadEvidence(_ context.Context, req messages.PowerRequest, _ messages.PowerReply) ([]loaderworker.Artifact, error) {
	img := image.NewRGBA(image.Rect(0, 0, 320, 200))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{0, 0, 170, 255}}, image.Point{}, draw.Src) // a blue screen
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return []loaderworker.Artifact{{Name: "screenshot.png", ContentType: "image/png", Data: buf.Bytes()},
		{Name: "serial.log", ContentType: "text/plain", Data: []byte("[    0.000000] Linux version 6.1 on " + req.Computer.Name + "\n")}}, nil
}

// powerWithEvidence asks the loader for a reset with evidence, as an OS
// worker does when a wait runs out.
func (r *rig) powerWithEvidence(t *testing.T, job string, attempt int, computer string) messages.PowerReply {
	body := messages.Encode(messages.PowerRequest{JobID: job, Attempt: attempt, Action: messages.PowerReset, Evidence: true,
		Computer: messages.Computer{Name: computer, Provisioner: "fake", Type: messages.TypeVirtualMachine}})
	m, err := r.nc.Request(subj.Power("fake"), body, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep messages.PowerReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		t.Fatalf("power reply %s: %v", m.Data, err)
	}
	return rep
}

func (r *rig) submit(t *testing.T, id, computer string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.cl.AddComputer(ctx, messages.Computer{Name: computer, Provisioner: "fake", Type: messages.TypeVirtualMachine}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cl.Submit(ctx, messages.JobSpec{ID: id, Computer: messages.Computer{Name: computer},
		Image: messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"}}); err != nil {
		t.Fatal(err)
	}
}

// screenshot saves the page where a person can look at it
// ($LOADPOOL_SCREENSHOTS, else the system's temporary directory).
func screenshot(t *testing.T, p *headless.Page, name string) {
	dir := os.Getenv("LOADPOOL_SCREENSHOTS")
	if dir == "" {
		dir = os.TempDir()
	}
	file := filepath.Join(dir, name)
	if err := p.Screenshot(file); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Size() < 5000 {
		t.Fatalf("screenshot %s: %v, %v bytes: the page did not render", file, err, fi)
	}
	t.Logf("screenshot: %s", file)
}

// evalUntil polls a JavaScript expression in the page until it yields want.
func evalUntil(t *testing.T, p *headless.Page, what, expr, want string) {
	t.Helper()
	var got string
	poll.Until(t, what+" (last: "+fmt.Sprint(&got)+")", func() bool {
		got = ""
		if err := p.Eval(expr, &got); err != nil {
			t.Fatal(err)
		}
		return got == want
	})
}

// The page in a real browser during a run: the list shows the jobs and
// computers as they are, a finished job's timeline has one bar per step
// with the wait profile's budgets behind the post-load, and a running
// job's page fills in live as its steps end.
func TestPageInBrowser(t *testing.T) {
	b := headless.Start(t)
	r := newRig(t)
	r.submit(t, "ui-retry", "vm-01")
	r.submit(t, "ui-slow", "vm-02")

	list, err := b.Open(r.url, 1300, 700)
	if err != nil {
		t.Fatal(err)
	}
	rows := `[...document.querySelectorAll("#jobs tbody tr")].map(tr => tr.dataset.job + "=" + tr.dataset.state).sort().join(" ")`
	evalUntil(t, list, "the job list", rows, "ui-retry=ready ui-slow=loading")
	comps := `[...document.querySelectorAll("#computers tbody tr")].map(tr => tr.dataset.computer + "=" + tr.dataset.state).sort().join(" ")`
	evalUntil(t, list, "the computer list", comps, "vm-01=inuse vm-02=reloading")
	evalUntil(t, list, "the live marker", `document.getElementById("live").textContent`, "live")

	var rep messages.PowerReply
	select {
	case rep = <-r.power:
	case <-time.After(30 * time.Second):
		t.Fatal("the post-load of ui-retry attempt 2 asked for no power reset")
	}
	if want := "ui-retry/2/screenshot.png,ui-retry/2/serial.log"; rep.Evidence != want {
		t.Fatalf("power reply names evidence %q (detail %q), want %q", rep.Evidence, rep.Detail, want)
	}
	resp, err := http.Get(r.url + "evidence/ui-retry/2/screenshot.png")
	if err != nil {
		t.Fatal(err)
	}
	shot, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(shot, []byte("\x89PNG")) {
		t.Fatalf("GET the screenshot: %s %q, %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(shot))
	}

	job, err := b.Open(r.url+"job/ui-retry", 1100, 520)
	if err != nil {
		t.Fatal(err)
	}
	bars := `[...document.querySelectorAll("#timeline rect.bar")].map(b => b.dataset.attempt + ":" + b.dataset.step + ":" + b.dataset.outcome).join(" ")`
	evalUntil(t, job, "ui-retry's timeline", bars, "1:load:retry 2:load:ready 2:postload:ready")
	evalUntil(t, job, "the budgets behind the post-load", `String(document.querySelectorAll("#timeline rect.budget").length)`, "2")
	evalUntil(t, job, "the evidence links", `[...document.querySelectorAll("#steps a.evidence")].map(a => a.textContent).join(" ")`, "screenshot.png serial.log")
	evalUntil(t, job, "the steps table", `String(document.querySelectorAll("#steps tbody tr").length)`, "3")
	evalUntil(t, job, "the job's past events (why it took two attempts)",
		`String([...document.querySelectorAll("#events li")].some(li => li.textContent.includes("starting attempt 2 of 3")))`, "true")
	screenshot(t, job, "loadpool-ui-job.png")

	slow, err := b.Open(r.url+"job/ui-slow", 1100, 400)
	if err != nil {
		t.Fatal(err)
	}
	evalUntil(t, slow, "ui-slow's running load", bars, "1:load:running")
	close(r.release)
	evalUntil(t, slow, "ui-slow's timeline filled in live", bars, "1:load:ready 1:postload:ready")
	evalUntil(t, list, "the job list after the run", rows, "ui-retry=ready ui-slow=ready")
	evalUntil(t, list, "the computer list after the run", comps, "vm-01=inuse vm-02=inuse")
	evalUntil(t, list, "the events", `String(document.querySelectorAll("#events li").length > 3)`, "true")
	screenshot(t, list, "loadpool-ui-list.png")
}
