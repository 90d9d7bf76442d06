package qga

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// socketCommand sends one command on QEMU's guest agent socket (one JSON
// object per line each way) on a connection of its own, bounded by ctx.
func socketCommand(ctx context.Context, path, execute string, args any) (json.RawMessage, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	} else {
		_ = nc.SetDeadline(time.Now().Add(DefaultTimeout))
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	body := map[string]any{"execute": execute}
	if args != nil {
		body["arguments"] = args
	}
	b, _ := json.Marshal(body)
	if _, err := nc.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(nc).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("%s: no answer on the agent socket: %w", execute, err)
	}
	return decodeReturn(execute, line)
}

// decodeReturn reads an agent reply: its "return" member, or its "error"
// as an *AgentError.
func decodeReturn(execute string, b []byte) (json.RawMessage, error) {
	var reply struct {
		Return json.RawMessage `json:"return"`
		Error  *AgentError     `json:"error"`
	}
	if err := json.Unmarshal(b, &reply); err != nil {
		return nil, fmt.Errorf("%s answered %q: %w", execute, b, err)
	}
	if reply.Error != nil {
		reply.Error.Command = execute
		return nil, reply.Error
	}
	return reply.Return, nil
}

// AgentError is an error the guest agent answered.
type AgentError struct {
	Command string `json:"-"`
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("the guest agent refused %s: %s (%s)", e.Command, e.Desc, e.Class)
}
