package devlab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// handshakeTimeout bounds a client's handshake on the server side.
const handshakeTimeout = 30 * time.Second

func (c *Computer) serverConfig(key ssh.Signer) *ssh.ServerConfig {
	want := c.cfg.Authorized.Marshal()
	sc := &ssh.ServerConfig{
		ServerVersion: c.cfg.Banner,
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), want) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	sc.AddHostKey(key)
	return sc
}

func (c *Computer) accept(ln net.Listener, gen int) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.gen != gen {
			c.mu.Unlock()
			conn.Close()
			return
		}
		ph, sc := c.phase, c.server
		switch {
		case ph == phaseFlaky && c.cfg.Flaky == ModeAcceptClose:
			conn.Close()
		case ph == phaseFlaky && c.cfg.Flaky == ModeSilent:
			c.conns[conn] = struct{}{}
			go c.silent(conn)
		default:
			c.conns[conn] = struct{}{}
			go c.serve(conn, sc, gen)
		}
		c.mu.Unlock()
	}
}

// silent reads and discards until the computer closes the connection.
func (c *Computer) silent(conn net.Conn) {
	_, _ = io.Copy(io.Discard, conn)
	c.forget(conn)
}

func (c *Computer) forget(conn net.Conn) {
	conn.Close()
	c.mu.Lock()
	delete(c.conns, conn)
	c.mu.Unlock()
}

func (c *Computer) serve(conn net.Conn, sc *ssh.ServerConfig, gen int) {
	defer c.forget(conn)
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	sconn, chans, reqs, err := ssh.NewServerConn(conn, sc)
	if err != nil {
		return
	}
	_ = conn.SetDeadline(time.Time{})
	defer sconn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go c.session(ch, creqs, gen)
	}
}

func (c *Computer) session(ch ssh.Channel, reqs <-chan *ssh.Request, gen int) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "env", "pty-req":
			_ = req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			c.exec(ch, p.Command, gen)
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func (c *Computer) exec(ch ssh.Channel, cmd string, gen int) {
	c.mu.Lock()
	if c.gen != gen {
		c.mu.Unlock()
		return
	}
	off := c.off
	r := c.cfg.Shell.Exec(cmd, &c.st)
	c.cmds = append(c.cmds, Command{Boot: c.st.Boots, Cmd: cmd, Exit: r.Exit})
	c.mu.Unlock()
	if r.Delay > 0 {
		t := time.NewTimer(r.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-off:
			return
		}
	}
	_, _ = io.WriteString(ch, r.Stdout)
	_, _ = io.WriteString(ch.Stderr(), r.Stderr)
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(r.Exit)}))
}

// String describes the computer for logs.
func (c *Computer) String() string { return fmt.Sprintf("%s@%s", c.cfg.Name, c.addr) }
