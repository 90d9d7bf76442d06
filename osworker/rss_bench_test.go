package osworker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkTenThousandWaits measures the resident memory of a real OS-worker
// process holding 100, 1,000 and 10,000 post-load waits at once (issue 12:
// 10,000 in at most 300 MB). Run it with
//
//	go test -run '^$' -bench TenThousandWaits -benchtime 1x ./osworker/
//
// It builds the product binary (cmd/loadpool, no dev tag) and runs
// `loadpool os --family linux` against an embedded NATS server on a random
// loopback port, with LOADPOOL_CONCURRENCY and the consumer's MaxAckPending
// (made as the coordinator makes it with LOADPOOL_MAX_ACK_PENDING) set to
// the number of waits, and the built-in Linux wait profile. Each request's
// computer is a loopback port that accepts TCP and closes it at once, as a
// hypervisor's port forward does while the guest's sshd is not up: every
// wait really polls (SSH dial, handshake cut short, back-off). Once the
// consumer counts every request pending, the worker's status endpoint
// counts every step running and every computer has been dialled at least
// twice, it samples the process's VmRSS over one lease-renewal period and
// reads VmHWM (/proc/<pid>/status), then aborts every job, waits until the
// worker has given every request up and stops it with SIGTERM. Figures:
// rss-MB (largest VmRSS while holding), hwm-MB, idle-MB (VmRSS once bound,
// before any request) and rss-KB/wait ((rss - idle) / waits). Needs
// Linux and a file limit above the number of waits.
func BenchmarkTenThousandWaits(b *testing.B) {
	bin := buildLoadpool(b)
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("waits=%d", n), func(b *testing.B) {
			for range b.N {
				holdWaits(b, bin, n)
			}
		})
	}
}

// buildLoadpool builds the product binary into a temporary directory.
func buildLoadpool(b *testing.B) string {
	b.Helper()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc (Linux)")
	}
	bin := filepath.Join(b.TempDir(), "loadpool")
	cmd := exec.Command("go", "build", "-tags=", "-o", bin, "../cmd/loadpool")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ../cmd/loadpool: %v\n%s", err, out)
	}
	return bin
}

func holdWaits(b *testing.B, bin string, n int) {
	b.StopTimer()
	srv := natstest.New(b)
	nc := natstest.Connect(b, srv.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	subj := messages.Subjects{Prefix: messages.DefaultPrefix}
	cons := makePool(b, js, subj, n)
	lab := newBootingLab(b, n)
	w := startWorker(b, bin, srv.URL(), n)
	waitFor(b, w, "the worker to bind and pull", time.Minute, func() bool { return pulling(cons) && workerRunning(nc, subj) == 0 })
	idle := w.status("VmRSS")
	b.StartTimer()
	for i, addr := range lab.addrs() {
		publish(b, js, subj, postload(i, addr))
	}
	waitFor(b, w, fmt.Sprintf("%d waits held and polling", n), 5*time.Minute, func() bool {
		return ackPending(cons) == n && workerRunning(nc, subj) == n && lab.dialledAtLeast(2)
	})
	rss := w.sampleRSS(pool.DefaultAckWait / 3)
	hwm := w.status("VmHWM")
	b.StopTimer()
	for i := range n {
		abort(b, nc, subj, i)
	}
	waitFor(b, w, "every request given up", 2*time.Minute, func() bool { return ackPending(cons) == 0 && workerRunning(nc, subj) == 0 })
	w.stop(b)
	b.ReportMetric(float64(rss)/1024, "rss-MB")
	b.ReportMetric(float64(hwm)/1024, "hwm-MB")
	b.ReportMetric(float64(idle)/1024, "idle-MB")
	b.ReportMetric(float64(rss-idle)/float64(n), "rss-KB/wait")
}

// makePool makes the streams and the linux pool's consumer as the
// coordinator does, with LOADPOOL_MAX_ACK_PENDING=n.
func makePool(b *testing.B, js jetstream.JetStream, subj messages.Subjects, n int) jetstream.Consumer {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := (pool.Topology{Subjects: subj}).Ensure(ctx, js); err != nil {
		b.Fatal(err)
	}
	c, err := pool.Config{MaxAckPending: n}.Consumer(subj, messages.StepPostload, "linux").Ensure(ctx, js, false)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func postload(i int, addr string) messages.Request {
	return messages.Request{JobID: fmt.Sprintf("rss-%d", i), Attempt: 1, Step: messages.StepPostload, Reloaded: true,
		Computer: messages.Computer{Name: fmt.Sprintf("boot-%05d", i), Provisioner: "lab", Type: messages.TypeVirtualMachine, Address: addr},
		Image:    messages.Image{Name: "img", OSFamily: "linux"}}
}

func publish(b *testing.B, js jetstream.JetStream, subj messages.Subjects, req messages.Request) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subj.PostloadRequest("linux"), messages.Encode(req)); err != nil {
		b.Fatal(err)
	}
}

func abort(b *testing.B, nc *nats.Conn, subj messages.Subjects, i int) {
	b.Helper()
	id := fmt.Sprintf("rss-%d", i)
	if err := nc.Publish(subj.Abort(id), messages.Encode(messages.Abort{JobID: id, Reason: "benchmark over"})); err != nil {
		b.Fatal(err)
	}
}

func ackPending(c jetstream.Consumer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		return -1
	}
	return info.NumAckPending
}

// pulling: a worker waits on the consumer with a pull request.
func pulling(c jetstream.Consumer) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	return err == nil && info.NumWaiting > 0
}

// workerRunning asks the worker's status endpoint (-1: no answer).
func workerRunning(nc *nats.Conn, subj messages.Subjects) int {
	msg, err := nc.Request(subj.Status(messages.StepPostload, "linux"), nil, 5*time.Second)
	if err != nil {
		return -1
	}
	var st messages.WorkerStatus
	if json.Unmarshal(msg.Data, &st) != nil {
		return -1
	}
	return st.Running
}

// waitFor polls cond every 100ms until it holds; it fails after within or
// when the worker exits.
func waitFor(b *testing.B, w *workerProc, what string, within time.Duration, cond func() bool) {
	b.Helper()
	end := time.Now().Add(within)
	for !cond() {
		if w.exited() || time.Now().After(end) {
			b.Fatalf("waiting for %s: gave up (worker exited: %v); its log:\n%s", what, w.exited(), w.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bootingLab is n computers that accept TCP and close it at once: sshd is
// not up yet behind a port forward. Each counts the dials it saw.
type bootingLab struct {
	ls    []net.Listener
	dials []atomic.Int64
	wg    sync.WaitGroup
}

func newBootingLab(b *testing.B, n int) *bootingLab {
	b.Helper()
	lab := &bootingLab{dials: make([]atomic.Int64, n)}
	b.Cleanup(lab.close)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatalf("listener %d of %d: %v (raise the file limit: ulimit -n)", i+1, n, err)
		}
		lab.ls = append(lab.ls, l)
		lab.wg.Go(func() { lab.serve(l, &lab.dials[i]) })
	}
	return lab
}

func (lab *bootingLab) serve(l net.Listener, dials *atomic.Int64) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		dials.Add(1)
		c.Close()
	}
}

func (lab *bootingLab) addrs() []string {
	out := make([]string, len(lab.ls))
	for i, l := range lab.ls {
		out[i] = l.Addr().String()
	}
	return out
}

func (lab *bootingLab) dialledAtLeast(k int64) bool {
	for i := range lab.dials {
		if lab.dials[i].Load() < k {
			return false
		}
	}
	return true
}

func (lab *bootingLab) close() {
	for _, l := range lab.ls {
		l.Close()
	}
	lab.wg.Wait()
}

// workerProc is `loadpool os --family linux` running as its own process.
type workerProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startWorker(b *testing.B, bin, url string, n int) *workerProc {
	b.Helper()
	dir := b.TempDir()
	w := &workerProc{log: filepath.Join(dir, "worker.log"), done: make(chan struct{})}
	logf, err := os.Create(w.log)
	if err != nil {
		b.Fatal(err)
	}
	w.cmd = exec.Command(bin, "os", "--family", "linux")
	w.cmd.Env = append(os.Environ(), "LOADPOOL_NATS_URL="+url, "LOADPOOL_DATA_DIR="+dir,
		"LOADPOOL_CONCURRENCY="+strconv.Itoa(n), "LOADPOOL_LOG_FORMAT=json", "LOADPOOL_WORKER_ID=rss-bench")
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	if err := w.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); logf.Close(); close(w.done) }()
	b.Cleanup(func() {
		if !w.exited() {
			_ = w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

func (w *workerProc) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// status is a field of /proc/<pid>/status in kB (0 when unreadable).
func (w *workerProc) status(field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// sampleRSS is the largest VmRSS seen over d, read every 250ms.
func (w *workerProc) sampleRSS(d time.Duration) int64 {
	var top int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		top = max(top, w.status("VmRSS"))
	}
	return top
}

// stop sends SIGTERM and waits for a clean exit.
func (w *workerProc) stop(b *testing.B) {
	b.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(time.Minute):
		b.Fatalf("the worker did not stop within a minute of SIGTERM; its log:\n%s", w.logTail())
	}
	if w.err != nil {
		b.Fatalf("the worker exited with %v; its log:\n%s", w.err, w.logTail())
	}
}

func (w *workerProc) logTail() string {
	data, _ := os.ReadFile(w.log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}
