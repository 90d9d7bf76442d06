//go:build unix

package devlab

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// portHold keeps a computer's loopback port while the computer is off: a
// TCP socket bound to it but not listening, so connections are refused
// (as by a powered-off machine's absent sshd) and no other socket, ours
// or another process's, can take the port meanwhile.
type portHold struct {
	fd   int
	addr string
}

// holdPort binds addr ("127.0.0.1:0" picks a free port).
func holdPort(addr string) (*portHold, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	in := sa.(*syscall.SockaddrInet4)
	return &portHold{fd: fd, addr: netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)).String()}, nil
}

// listen turns the held socket into a listener; the hold is used up.
func (p *portHold) listen() (net.Listener, error) {
	if err := syscall.Listen(p.fd, 4096); err != nil {
		p.close()
		return nil, fmt.Errorf("listen %s: %w", p.addr, err)
	}
	f := os.NewFile(uintptr(p.fd), p.addr)
	ln, err := net.FileListener(f)
	f.Close()
	p.fd = -1
	return ln, err
}

func (p *portHold) close() {
	if p.fd >= 0 {
		syscall.Close(p.fd)
		p.fd = -1
	}
}
