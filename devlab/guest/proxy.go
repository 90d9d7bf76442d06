package guest

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Proxy is a unix socket in front of libvirtd's: every byte goes to the
// real daemon, and a test can break or delay the next connections — real
// faults of the connection between a provisioner and libvirtd.
type Proxy struct {
	path string
	ln   net.Listener
	mu   sync.Mutex
	drop int
	wait time.Duration
	wg   sync.WaitGroup
}

// NewProxy listens in a temporary directory; closed at cleanup.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	p := &Proxy{path: filepath.Join(t.TempDir(), "libvirt-sock")}
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// URI is the libvirt URI of the proxy.
func (p *Proxy) URI() string { return "qemu:///system?socket=" + p.path }

// DropNext makes the next n connections close at once (libvirtd
// unreachable, as far as the client can tell).
func (p *Proxy) DropNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop = n
}

// DelayNext makes the next connection wait d before its first byte is
// forwarded (a libvirtd slow to answer).
func (p *Proxy) DelayNext(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wait = d
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		drop, wait := p.drop > 0, p.wait
		if drop {
			p.drop--
		}
		p.wait = 0
		p.mu.Unlock()
		if drop {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.pipe(c, wait)
	}
}

func (p *Proxy) pipe(c net.Conn, wait time.Duration) {
	defer p.wg.Done()
	defer c.Close()
	if wait > 0 {
		<-time.After(wait)
	}
	up, err := net.Dial("unix", Socket)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}
