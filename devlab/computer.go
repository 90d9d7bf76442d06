package devlab

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Shell is a simulated computer's OS personality: it answers one exec'd
// command line. Exec is called with the computer's lock held, so it may
// read and change st freely but must not block; a command that takes time
// says so in Reply.Delay (the server waits that long before answering,
// without holding the lock).
type Shell interface {
	Exec(cmd string, st *State) Reply
}

// Booter is an optional Shell extension: OnBoot runs at every power-on
// (reimaged is true for Boot, false for Reset) to set up the personality's
// timeline in st.
type Booter interface {
	OnBoot(st *State, reimaged bool)
}

// Reply is a command's answer.
type Reply struct {
	Stdout, Stderr string
	Exit           int
	// Delay before the answer (a blocking command such as --wait).
	Delay time.Duration
}

// State is what a simulated computer's OS holds; the Shell reads and
// changes it under the computer's lock.
type State struct {
	// Name is the computer's name; Image the image loaded by Boot.
	Name, Image string
	// Hostname as the OS reports it.
	Hostname string
	// Boots counts power-ons; PoweredOn is when the last one began; Up
	// is when SSH began to answer (zero while it does not).
	Boots     int
	PoweredOn time.Time
	Up        time.Time
	// Files is the disk: path -> content. Boot (a reimage) empties it.
	Files map[string]string
	// Data is for personalities (timelines, flags).
	Data map[string]any
}

// Since is how long ago SSH came up (0 while it is not up).
func (st *State) Since() time.Duration {
	if st.Up.IsZero() {
		return 0
	}
	return time.Since(st.Up)
}

// Mode is how the SSH port behaves during the "flaky" part of a boot.
type Mode int

// Flaky modes.
const (
	// ModeAcceptClose accepts TCP and closes at once (sshd starting).
	ModeAcceptClose Mode = iota + 1
	// ModeSilent accepts TCP and never speaks (a half-alive host).
	ModeSilent
)

// Config describes a simulated computer.
type Config struct {
	Name string
	// Shell is the OS personality (required).
	Shell Shell
	// Authorized is the one client key accepted.
	Authorized ssh.PublicKey
	// BootDelay: the port stays closed this long after power-on.
	BootDelay time.Duration
	// Flaky and FlakyFor: after BootDelay, the port misbehaves this way
	// for this long before SSH answers.
	Flaky    Mode
	FlakyFor time.Duration
	// Banner is the server version string (default an OpenSSH banner).
	Banner string
	Logger *slog.Logger
}

// Computer is a simulated computer: an x/crypto/ssh server on a loopback
// port that can be off (connection refused), booting, flaky or up, with an
// OS personality (Shell). It models power, boot timing, host keys that
// change at every reimage, and exec'd commands with exit statuses; it does
// not model PTYs, stdin, shells with pipes, SFTP, port forwarding, or
// network failures other than refused/reset/silent.
type Computer struct {
	cfg  Config
	addr string
	log  *slog.Logger

	mu      sync.Mutex
	st      State
	phase   phase
	gen     int // power generation: stale timers check it
	hostKey ssh.Signer
	server  *ssh.ServerConfig
	ln      net.Listener
	hold    *portHold // the port while no listener has it
	conns   map[net.Conn]struct{}
	never   bool
	hangs   int
	cmds    []Command
	timer   *time.Timer
	off     chan struct{} // closed at power-off
	closed  bool
}

type phase int

const (
	phaseOff phase = iota
	phaseBooting
	phaseFlaky
	phaseUp
)

// Command is one command the computer received.
type Command struct {
	Boot int
	Cmd  string
	Exit int
}

// ErrClosed is returned by operations on a closed computer.
var ErrClosed = errors.New("devlab: computer is closed")

// NewComputer reserves a loopback port for a computer that is powered off.
func NewComputer(cfg Config) (*Computer, error) {
	if cfg.Shell == nil {
		return nil, errors.New("devlab: Config.Shell is required (NewLinux(...), or another personality)")
	}
	if cfg.Authorized == nil {
		return nil, errors.New("devlab: Config.Authorized is required: the client public key to accept")
	}
	if cfg.Name == "" {
		cfg.Name = "computer"
	}
	if cfg.Banner == "" {
		cfg.Banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hold, err := holdPort("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devlab: reserve a port: %w", err)
	}
	c := &Computer{cfg: cfg, addr: hold.addr, hold: hold, log: cfg.Logger.With("computer", cfg.Name),
		conns: map[net.Conn]struct{}{}}
	c.st = State{Name: cfg.Name, Hostname: "localhost", Files: map[string]string{}, Data: map[string]any{}}
	return c, nil
}

// Addr is host:port of the computer's SSH port.
func (c *Computer) Addr() string { return c.addr }

// Port is the SSH port.
func (c *Computer) Port() int {
	_, p, _ := net.SplitHostPort(c.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Name is the computer's name.
func (c *Computer) Name() string { return c.cfg.Name }

// Boot reimages the computer with image and powers it on: a fresh disk and
// a NEW host key, like a fresh load.
func (c *Computer) Boot(image string) error {
	key, err := NewSigner()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.powerOffLocked()
	c.hostKey = key
	c.server = c.serverConfig(key)
	c.st.Image = image
	c.st.Files = map[string]string{}
	c.st.Data = map[string]any{}
	c.st.Hostname = "localhost"
	c.powerOnLocked(true)
	return nil
}

// Reset is a power reset: the OS reboots with the same disk and host key.
func (c *Computer) Reset() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.hostKey == nil {
		return errors.New("devlab: reset of a computer that was never booted: call Boot first")
	}
	c.powerOffLocked()
	c.powerOnLocked(false)
	return nil
}

// PowerOff closes the port and every connection (connection refused).
func (c *Computer) PowerOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.powerOffLocked()
}

// NeverAnswer makes every boot from now on keep the port closed.
func (c *Computer) NeverAnswer(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.never = v
}

// HangBoots makes the next n power-ons (Boot or Reset) hang with the port
// closed; a later power reset then boots normally.
func (c *Computer) HangBoots(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hangs = n
}

// HostKey is the current host key (nil before the first Boot).
func (c *Computer) HostKey() ssh.PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hostKey == nil {
		return nil
	}
	return c.hostKey.PublicKey()
}

// Commands returns every command received so far.
func (c *Computer) Commands() []Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Command(nil), c.cmds...)
}

// Snapshot returns a copy of the OS state.
func (c *Computer) Snapshot() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.Files = make(map[string]string, len(c.st.Files))
	for k, v := range c.st.Files {
		st.Files[k] = v
	}
	st.Data = nil
	return st
}

// Answering reports whether SSH is up.
func (c *Computer) Answering() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase == phaseUp
}

// Close powers off for good.
func (c *Computer) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.powerOffLocked()
	if c.hold != nil {
		c.hold.close()
		c.hold = nil
	}
}

func (c *Computer) powerOffLocked() {
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
	if c.hold == nil && !c.closed {
		var err error
		if c.hold, err = holdPort(c.addr); err != nil {
			c.log.Warn("devlab: port not held while off", "addr", c.addr, "err", err)
		}
	}
	c.phase = phaseOff
	c.st.Up = time.Time{}
	if c.off != nil {
		close(c.off)
		c.off = nil
	}
}

func (c *Computer) powerOnLocked(reimaged bool) {
	c.st.Boots++
	c.off = make(chan struct{})
	c.st.PoweredOn = time.Now()
	c.phase = phaseBooting
	if b, ok := c.cfg.Shell.(Booter); ok {
		b.OnBoot(&c.st, reimaged)
	}
	if c.never || c.hangs > 0 {
		if c.hangs > 0 {
			c.hangs--
		}
		return
	}
	c.after(c.cfg.BootDelay, c.flakyLocked)
}

// after runs f (under the lock) after d unless the power changed meanwhile.
func (c *Computer) after(d time.Duration, f func()) {
	gen := c.gen
	c.timer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gen == gen && !c.closed {
			f()
		}
	})
}

func (c *Computer) flakyLocked() {
	if c.cfg.Flaky == 0 || c.cfg.FlakyFor <= 0 {
		c.upLocked()
		return
	}
	if !c.listenLocked() {
		return
	}
	c.phase = phaseFlaky
	c.after(c.cfg.FlakyFor, c.upLocked)
}

func (c *Computer) upLocked() {
	if c.ln == nil && !c.listenLocked() {
		return
	}
	c.phase = phaseUp
	c.st.Up = time.Now()
}

func (c *Computer) listenLocked() bool {
	var err error
	for range 20 {
		if c.hold == nil {
			c.hold, err = holdPort(c.addr)
		}
		if c.hold != nil {
			c.ln, err = c.hold.listen()
			c.hold = nil
		}
		if err == nil {
			go c.accept(c.ln, c.gen)
			return true
		}
		time.Sleep(5 * time.Millisecond) // port briefly busy: not a test synchronisation
	}
	c.log.Error("devlab: cannot reopen the SSH port; the computer stays off", "addr", c.addr, "err", err)
	return false
}
