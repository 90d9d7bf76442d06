package osworker_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/control"
	"golang.org/x/crypto/ssh"
)

// countingDialer counts dial attempts so the benchmark can wait until
// every wait has probed a few times.
type countingDialer struct {
	control.Dialer
	n atomic.Int64
}

func (d *countingDialer) Dial(ctx context.Context, t control.Target) (control.Conn, error) {
	d.n.Add(1)
	return d.Dialer.Dial(ctx, t)
}

type nopProgress struct{}

func (nopProgress) Event(string) {}

// BenchmarkWaitForAnswer1000 runs 1,000 WaitForAnswer at once in one
// process against 1,000 simulated computers that boot slowly (connection
// refused first). It reports the heap held per concurrent wait while all
// of them poll, and the goroutines per wait. Run with -benchtime=1x.
func BenchmarkWaitForAnswer1000(b *testing.B) {
	const n = 1000
	client := labtest.Signer(b)
	for range b.N {
		lab, err := devlab.NewLab(n, "bench", devlab.Config{Authorized: client.PublicKey(), BootDelay: 3 * time.Second},
			func() devlab.Shell { return &devlab.Linux{} })
		if err != nil {
			b.Fatal(err)
		}
		sd, err := control.NewSSHDialer(control.SSHConfig{Signers: []ssh.Signer{client}, Timeout: 20 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		d := &countingDialer{Dialer: sd}
		p := tinyProfile()
		p.Poll, p.AnswerTimeout = messages.Duration(500*time.Millisecond), messages.Duration(2*time.Minute)
		before, g0 := heapNow()
		if err := lab.BootAll("img"); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		var failed atomic.Int64
		for _, c := range lab.Computers {
			env := &osworker.Env{Profile: p, Progress: nopProgress{}, Dialer: d,
				Target: control.Target{Address: c.Addr(), Computer: c.Name(), HostKey: control.HostKeyPolicy{JobID: "bench", Attempt: 1, Reloaded: true, Step: &control.MemHostKeys{}}}}
			wg.Go(func() {
				conn, err := osworker.WaitForAnswer(context.Background(), env, messages.Request{JobID: "bench", Attempt: 1})
				if err != nil {
					failed.Add(1)
					return
				}
				conn.Close()
			})
		}
		for d.n.Load() < 2*n { // every wait has probed about twice
			runtime.Gosched()
		}
		during, g1 := heapNow()
		wg.Wait()
		lab.Close()
		if f := failed.Load(); f > 0 {
			b.Fatalf("%d of %d waits failed", f, n)
		}
		b.ReportMetric(float64(during.heap-before.heap)/n, "heap-bytes/wait")
		b.ReportMetric(float64(during.stack-before.stack)/n, "stack-bytes/wait")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/wait")
	}
}

type mem struct{ heap, stack int64 }

func heapNow() (mem, int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse)}, runtime.NumGoroutine()
}
