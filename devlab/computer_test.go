package devlab_test

import (
	"bytes"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"golang.org/x/crypto/ssh"
)

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func run(t *testing.T, c *devlab.Computer, s ssh.Signer, cmd string) (string, error) {
	t.Helper()
	var hostKey ssh.PublicKey
	cl, err := ssh.Dial("tcp", c.Addr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { hostKey = k; return nil }, Timeout: 2 * time.Second})
	if err != nil {
		return "", err
	}
	defer cl.Close()
	if !bytes.Equal(hostKey.Marshal(), c.HostKey().Marshal()) {
		t.Fatal("the server's host key is not Computer.HostKey()")
	}
	sess, err := cl.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.Output(cmd)
	return string(out), err
}

func TestComputerPowerAndBoot(t *testing.T) {
	t.Parallel()
	s := labtest.Signer(t)
	c, err := devlab.NewComputer(devlab.Config{Name: "c1", Shell: &devlab.Linux{}, Authorized: s.PublicKey(), BootDelay: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !refused(c.Addr()) {
		t.Fatal("a computer that was never booted must refuse connections")
	}
	if err := c.Reset(); err == nil {
		t.Fatal("Reset before Boot must fail")
	}
	if err := c.Boot("img-a"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "up", c.Answering)
	if out, err := run(t, c, s, "echo hi"); err != nil || out != "hi\n" {
		t.Fatalf("echo = %q, %v", out, err)
	}
	k1 := c.HostKey()
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "up after reset", c.Answering)
	if !bytes.Equal(k1.Marshal(), c.HostKey().Marshal()) {
		t.Fatal("a power reset must keep the host key")
	}
	if err := c.Boot("img-b"); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k1.Marshal(), c.HostKey().Marshal()) {
		t.Fatal("a reimage must make a new host key")
	}
	poll.Until(t, "up after reimage", c.Answering)
	st := c.Snapshot()
	if st.Image != "img-b" || st.Boots != 3 {
		t.Fatalf("state %+v", st)
	}
	cmds := c.Commands()
	if len(cmds) != 1 || cmds[0].Cmd != "echo hi" || cmds[0].Boot != 1 {
		t.Fatalf("commands %+v", cmds)
	}
	c.PowerOff()
	if !refused(c.Addr()) {
		t.Fatal("a powered-off computer must refuse connections")
	}
}

func TestComputerModes(t *testing.T) {
	t.Parallel()
	s := labtest.Signer(t)
	tests := []struct {
		name string
		cfg  devlab.Config
		prep func(c *devlab.Computer)
		want func(t *testing.T, c *devlab.Computer)
	}{
		{name: "never answers", prep: func(c *devlab.Computer) { c.NeverAnswer(true) },
			want: func(t *testing.T, c *devlab.Computer) {
				if !refused(c.Addr()) || c.Answering() || !c.PoweredOn() {
					t.Fatal("want powered on, refusing")
				}
			}},
		{name: "accept then close", cfg: devlab.Config{Flaky: devlab.ModeAcceptClose, FlakyFor: time.Hour},
			want: func(t *testing.T, c *devlab.Computer) {
				poll.Until(t, "listening", func() bool { return !refused(c.Addr()) })
				if _, err := run(t, c, s, "echo"); err == nil {
					t.Fatal("handshake succeeded while sshd is flaky")
				}
			}},
		{name: "silent", cfg: devlab.Config{Flaky: devlab.ModeSilent, FlakyFor: time.Hour},
			want: func(t *testing.T, c *devlab.Computer) {
				poll.Until(t, "listening", func() bool { return !refused(c.Addr()) })
				conn, err := net.Dial("tcp", c.Addr())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if n, err := conn.Read(make([]byte, 64)); n != 0 || !isTimeout(err) {
					t.Fatalf("silent mode spoke: %d bytes, %v", n, err)
				}
			}},
		{name: "hung boot then reset", prep: func(c *devlab.Computer) { c.HangBoots(1) },
			want: func(t *testing.T, c *devlab.Computer) {
				if !refused(c.Addr()) {
					t.Fatal("hung boot answers")
				}
				if err := c.Reset(); err != nil {
					t.Fatal(err)
				}
				poll.Until(t, "up after reset", c.Answering)
			}},
		{name: "wrong client key", want: func(t *testing.T, c *devlab.Computer) {
			poll.Until(t, "up", c.Answering)
			if _, err := run(t, c, labtest.Signer(t), "echo"); err == nil {
				t.Fatal("an unauthorized key logged in")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.Name, cfg.Shell, cfg.Authorized = "m", &devlab.Linux{}, s.PublicKey()
			c, err := devlab.NewComputer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.prep != nil {
				tc.prep(c)
			}
			if err := c.Boot("img"); err != nil {
				t.Fatal(err)
			}
			tc.want(t, c)
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestLab(t *testing.T) {
	t.Parallel()
	s := labtest.Signer(t)
	lab, err := devlab.NewLab(20, "lab", devlab.Config{Authorized: s.PublicKey()}, func() devlab.Shell { return &devlab.Linux{} })
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	seen := map[string]bool{}
	for _, c := range lab.Computers {
		if seen[c.Addr()] {
			t.Fatalf("two computers share %s", c.Addr())
		}
		seen[c.Addr()] = true
	}
	if err := lab.BootAll("img"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "all up", func() bool { return lab.Answering() == 20 })
	if _, err := devlab.NewLab(0, "x", devlab.Config{}, nil); err == nil {
		t.Fatal("NewLab(0) must fail")
	}
}

func TestComputerResetDropsSessions(t *testing.T) {
	t.Parallel()
	s := labtest.Signer(t)
	c, err := devlab.NewComputer(devlab.Config{Name: "c2", Shell: &devlab.Linux{Starting: time.Hour}, Authorized: s.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Boot("img"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "up", c.Answering)
	cl, err := ssh.Dial("tcp", c.Addr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
		HostKeyCallback: ssh.FixedHostKey(c.HostKey()), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sess, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Run("systemctl is-system-running --wait") }() // blocks for an hour
	poll.Until(t, "command received", func() bool { return len(c.Commands()) == 1 })
	c.HangBoots(1)
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a command survived the power reset")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session outlived the power reset")
	}
	if !refused(c.Addr()) {
		t.Fatal("a computer whose boot hangs must refuse connections")
	}
}
