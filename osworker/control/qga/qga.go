package qga

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/loadpool/loadpool/libvirtd"
	"github.com/loadpool/loadpool/osworker/control"
)

// Method is the enrolment's control name for this package.
const Method = "qga"

// Enrolment attributes the dialer reads.
const (
	// AttrDomain names the libvirt domain (the libvirt provisioner's too).
	AttrDomain = "domain"
	// AttrSocket, when set, is the path of QEMU's guest agent socket
	// (-chardev socket,path=...): the agent is reached there directly,
	// without libvirtd.
	AttrSocket = "qga_socket"
)

// Defaults of Config.
const (
	DefaultTimeout = 15 * time.Second
	DefaultPoll    = 200 * time.Millisecond
)

// Config configures a Dialer.
type Config struct {
	// URI of libvirtd (default qemu:///system).
	URI string
	// Timeout bounds Dial's guest-ping (default 15s).
	Timeout time.Duration
	// Poll is the interval of guest-exec-status (default 200ms).
	Poll time.Duration
}

// Env is the environment of the qga control (prefix LOADPOOL_): the
// libvirt provisioner's URI setting.
type Env struct {
	URI string `envconfig:"LIBVIRT_URI"`
}

// Dialer reaches computers through their guest agent.
type Dialer struct {
	cfg Config
	lv  *libvirtd.Client
}

var _ control.Dialer = (*Dialer)(nil)

// New checks cfg.
func New(cfg Config) (*Dialer, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	lv, err := libvirtd.New(cfg.URI)
	if err != nil {
		return nil, fmt.Errorf("qga: LOADPOOL_LIBVIRT_URI: %v", err)
	}
	return &Dialer{cfg: cfg, lv: lv}, nil
}

// Dial implements control.Dialer: the agent answers guest-ping.
func (d *Dialer) Dial(ctx context.Context, t control.Target) (control.Conn, error) {
	c := &conn{d: d, computer: t.Computer, domain: t.Computer, socket: t.Attributes[AttrSocket]}
	if name := t.Attributes[AttrDomain]; name != "" {
		c.domain = name
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	err := c.call(ctx, func(send sender) error {
		_, err := send("guest-ping", nil)
		return err
	})
	if err != nil {
		return nil, c.classify(ctx, "guest-ping", err)
	}
	return c, nil
}

// conn is one computer's agent. Every Run has its own libvirtd connection.
type conn struct {
	d                *Dialer
	computer, domain string
	socket           string // QEMU's agent socket; "" means through libvirtd
}

// Close implements control.Conn (nothing is held between commands).
func (c *conn) Close() error { return nil }

// sender sends one agent command and returns its "return" member.
type sender func(execute string, args any) (json.RawMessage, error)

// call runs fn with a sender on the computer's agent: through libvirtd
// (one connection for fn), or on QEMU's socket (one connection per
// command).
func (c *conn) call(ctx context.Context, fn func(send sender) error) error {
	if c.socket != "" {
		return fn(func(execute string, args any) (json.RawMessage, error) {
			return socketCommand(ctx, c.socket, execute, args)
		})
	}
	return c.d.lv.Do(ctx, func(l *golibvirt.Libvirt) error {
		return fn(func(execute string, args any) (json.RawMessage, error) {
			return c.command(ctx, l, execute, args)
		})
	})
}

// Run implements control.Conn.
func (c *conn) Run(ctx context.Context, cmd string) (control.Output, error) {
	var out control.Output
	err := c.call(ctx, func(send sender) error {
		raw, err := send("guest-exec", map[string]any{"path": "/bin/sh", "arg": []string{"-c", cmd}, "capture-output": true})
		if err != nil {
			return err
		}
		var started struct {
			PID int `json:"pid"`
		}
		if err := json.Unmarshal(raw, &started); err != nil {
			return fmt.Errorf("guest-exec answered %s: %w", raw, err)
		}
		out, err = c.wait(ctx, send, started.PID)
		return err
	})
	if err != nil {
		return out, c.classify(ctx, fmt.Sprintf("run %q", cmd), err)
	}
	return out, nil
}

// status is guest-exec-status's answer.
type status struct {
	Exited   bool   `json:"exited"`
	ExitCode *int   `json:"exitcode"`
	Signal   *int   `json:"signal"`
	OutData  string `json:"out-data"`
	ErrData  string `json:"err-data"`
}

// wait polls guest-exec-status until pid has exited.
func (c *conn) wait(ctx context.Context, send sender, pid int) (control.Output, error) {
	tick := time.NewTicker(c.d.cfg.Poll)
	defer tick.Stop()
	for {
		raw, err := send("guest-exec-status", map[string]any{"pid": pid})
		if err != nil {
			return control.Output{Exit: -1}, err
		}
		var st status
		if err := json.Unmarshal(raw, &st); err != nil {
			return control.Output{Exit: -1}, fmt.Errorf("guest-exec-status answered %s: %w", raw, err)
		}
		if st.Exited {
			return st.output()
		}
		select {
		case <-ctx.Done():
			return control.Output{Exit: -1}, context.Cause(ctx)
		case <-tick.C:
		}
	}
}

func (st status) output() (control.Output, error) {
	o := control.Output{Exit: -1}
	var err error
	if o.Stdout, err = base64.StdEncoding.DecodeString(st.OutData); err != nil {
		return o, fmt.Errorf("guest-exec-status out-data: %w", err)
	}
	if o.Stderr, err = base64.StdEncoding.DecodeString(st.ErrData); err != nil {
		return o, fmt.Errorf("guest-exec-status err-data: %w", err)
	}
	if st.ExitCode != nil && st.Signal == nil {
		o.Exit = *st.ExitCode
	}
	return o, nil
}

// command sends one agent command through libvirtd.
func (c *conn) command(ctx context.Context, l *golibvirt.Libvirt, execute string, args any) (json.RawMessage, error) {
	dom, err := l.DomainLookupByName(c.domain)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"execute": execute}
	if args != nil {
		body["arguments"] = args
	}
	b, _ := json.Marshal(body)
	timeout := int32(c.d.cfg.Timeout / time.Second)
	if dl, ok := ctx.Deadline(); ok {
		timeout = int32(max(time.Until(dl)/time.Second, 1))
	}
	res, err := l.QEMUDomainAgentCommand(dom, string(b), timeout, 0)
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, errors.New(execute + ": the agent answered nothing")
	}
	return decodeReturn(execute, []byte(res[0]))
}

// classify turns an error into ErrNotAnswering where waiting may help: the
// domain is missing or not running, the agent is not (yet) connected or
// does not answer, libvirtd is unreachable, the step's deadline for this
// try passed.
func (c *conn) classify(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var un *libvirtd.UnreachableError
	var op *net.OpError
	switch {
	case errors.As(err, &un), errors.Is(err, context.DeadlineExceeded):
	case errors.As(err, &op), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, os.ErrDeadlineExceeded):
		// the agent socket: refused, missing, closed
	case libvirtd.IsNoDomain(err):
	default:
		switch libvirtd.Code(err) {
		case golibvirt.ErrOperationInvalid, golibvirt.ErrAgentUnresponsive, golibvirt.ErrAgentUnsynced,
			golibvirt.ErrAgentCommandTimeout, golibvirt.ErrOperationTimeout, golibvirt.ErrOperationFailed:
		default:
			return fmt.Errorf("%s: guest agent of domain %s: %s: %w", c.computer, c.domain, what, err)
		}
	}
	return fmt.Errorf("%w: %s: guest agent of domain %s: %s: %v", control.ErrNotAnswering, c.computer, c.domain, what, err)
}
