package osworker

import (
	"context"
	"errors"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/control"
)

// Session is a module's connection to its computer for one step. Run
// redials once when the computer dropped the connection (a reboot during
// boot, or Windows setup rebooting between passes).
type Session struct {
	env  *Env
	conn control.Conn
	// Timeout bounds each command (0: only the step's context).
	Timeout time.Duration
}

// Open waits for the computer to answer (WaitForAnswer, with its profile,
// power reset and events) and returns a Session on that connection. The
// caller closes it.
func Open(ctx context.Context, env *Env, req messages.Request) (*Session, error) {
	conn, err := waitForAnswer(ctx, env, req.Attempt)
	if err != nil {
		return nil, err
	}
	return &Session{env: env, conn: conn}, nil
}

// Run runs cmd; a connection the computer dropped is redialled once.
func (s *Session) Run(ctx context.Context, cmd string) (control.Output, error) {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	out, err := s.conn.Run(ctx, cmd)
	if err == nil || !errors.Is(err, control.ErrNotAnswering) || ctx.Err() != nil {
		return out, err
	}
	c, derr := s.env.Dial(ctx)
	if derr != nil {
		return out, derr
	}
	s.conn.Close()
	s.conn = c
	return s.conn.Run(ctx, cmd)
}

// Close closes the connection.
func (s *Session) Close() error { return s.conn.Close() }
