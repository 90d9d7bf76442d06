//go:build !unix

package devlab

import "net"

// portHold on systems without raw sockets: the port is only remembered,
// so another socket may take it while the computer is off.
type portHold struct {
	addr string
}

func holdPort(addr string) (*portHold, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	return &portHold{addr: ln.Addr().String()}, nil
}

func (p *portHold) listen() (net.Listener, error) { return net.Listen("tcp", p.addr) }

func (p *portHold) close() {}
