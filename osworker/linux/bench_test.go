package linux_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/control"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/stepworker/steptest"
	"golang.org/x/crypto/ssh"
)

type countingDialer struct {
	control.Dialer
	n atomic.Int64
}

func (d *countingDialer) Dial(ctx context.Context, t control.Target) (control.Conn, error) {
	d.n.Add(1)
	return d.Dialer.Dial(ctx, t)
}

// BenchmarkWorker1000 is one OS-worker process (the real runtime on an
// embedded NATS server) with 1,000 post-load steps waiting at once for
// 1,000 simulated Linux computers that boot slowly, then getting them
// ready. It reports heap and stack per concurrent step while all of them
// poll (before/after, GC'd), and goroutines per step. Run it with
// -benchtime=1x.
func BenchmarkWorker1000(b *testing.B) {
	const n = 1000
	for range b.N {
		runWorker1000(b, n)
	}
}

func runWorker1000(b *testing.B, n int) {
	wire := steptest.New(b)
	ctx := context.Background()
	client := benchSigner(b)
	lab, err := devlab.NewLab(n, "lin", devlab.Config{Authorized: client.PublicKey(), BootDelay: 4 * time.Second},
		func() devlab.Shell { return &devlab.Linux{Starting: 100 * time.Millisecond} })
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	sd, _ := control.NewSSHDialer(control.SSHConfig{Signers: []ssh.Signer{client}, Timeout: 30 * time.Second})
	d := &countingDialer{Dialer: sd}
	w, err := osworker.New(natstest.Connect(b, wire.URL()), osworker.Config{Subjects: steptest.Subjects, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Profiles: []byte(`[{"family": "linux", "set": {"initial_delay": "10ms", "poll": "500ms", "answer_timeout": "2m", "ready_timeout": "2m"}}]`), Settings: pool.Config{Concurrency: n, MaxAckPending: n, Grace: time.Second}},
		linux.Module{}, d)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	before, g0 := memNow()
	if err := lab.BootAll("img"); err != nil {
		b.Fatal(err)
	}
	for i, c := range lab.Computers {
		req := messages.Request{JobID: fmt.Sprintf("bench-%d", i), Attempt: 1, Step: messages.StepPostload, Reloaded: true,
			Computer: messages.Computer{Name: c.Name(), Provisioner: "lab", Type: messages.TypeBlade, Address: c.Addr()},
			Image:    messages.Image{Name: "img", OSFamily: "linux"}}
		wire.Publish(req)
	}
	for w.Running() < n || d.n.Load() < 2*int64(n) { // all running, each probed about twice
		runtime.Gosched()
	}
	during, g1 := memNow()
	for range n {
		if r := wire.Result(2 * time.Minute); r.Outcome != messages.OutcomeReady {
			b.Fatalf("%s: %s %s", r.JobID, r.Outcome, r.Detail)
		}
	}
	b.ReportMetric(float64(during.heap-before.heap)/float64(n), "heap-bytes/step")
	b.ReportMetric(float64(during.stack-before.stack)/float64(n), "stack-bytes/step")
	b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/step")
}

type mem struct{ heap, stack int64 }

func memNow() (mem, int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse)}, runtime.NumGoroutine()
}

// benchSigner is a new client key, loaded from its file as the daemon
// loads LOADPOOL_SSH_KEY.
func benchSigner(b *testing.B) ssh.Signer {
	b.Helper()
	path := filepath.Join(b.TempDir(), "id_ed25519")
	if _, err := devlab.WriteKey(path); err != nil {
		b.Fatal(err)
	}
	k, err := control.LoadSigner(path)
	if err != nil {
		b.Fatal(err)
	}
	return k
}
