package coordinator

import (
	"context"

	"github.com/loadpool/loadpool/messages"
)

// AddComputer enrols one computer; the reply is its enrolment (the
// existing one when it was enrolled with the same fields).
func (c *Client) AddComputer(ctx context.Context, comp messages.Computer) (messages.Enrollment, error) {
	var e messages.Enrollment
	return e, c.do(ctx, c.sub.ComputerAdd(), messages.Encode(comp), &e)
}

// AddComputers enrols many computers in one request (its body must fit
// messages.MaxBodyBytes: ImportComputers splits a long list).
func (c *Client) AddComputers(ctx context.Context, comps []messages.Computer) (messages.AddReply, error) {
	var r messages.AddReply
	return r, c.do(ctx, c.sub.ComputerAdd(), messages.Encode(messages.ComputerAdd{Computers: comps}), &r)
}

// ImportComputers enrols comps in as many requests as the body limit
// needs, in order; it stops at the first error, with what was done so far.
func (c *Client) ImportComputers(ctx context.Context, comps []messages.Computer) (messages.AddReply, error) {
	var total messages.AddReply
	const budget = messages.MaxBodyBytes - 1024
	var batch []messages.Computer
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		r, err := c.AddComputers(ctx, batch)
		total.Added += r.Added
		total.Unchanged += r.Unchanged
		batch, size = nil, 0
		return err
	}
	for _, comp := range comps {
		n := len(messages.Encode(comp)) + 1
		if size+n > budget {
			if err := flush(); err != nil {
				return total, err
			}
		}
		batch = append(batch, comp)
		size += n
	}
	return total, flush()
}

// GetComputer returns a computer's enrolment and state.
func (c *Client) GetComputer(ctx context.Context, name string) (messages.Enrollment, error) {
	return c.computer(ctx, c.sub.ComputerGet(), messages.ComputerRequest{Name: name})
}

// ListComputers returns one page of the inventory, by name.
func (c *Client) ListComputers(ctx context.Context, r messages.ComputerListRequest) (messages.ComputerListReply, error) {
	var reply messages.ComputerListReply
	return reply, c.do(ctx, c.sub.ComputerList(), messages.Encode(r), &reply)
}

// SetComputer changes enrolment fields of a computer no live job holds.
func (c *Client) SetComputer(ctx context.Context, s messages.ComputerSet) (messages.Enrollment, error) {
	var e messages.Enrollment
	return e, c.do(ctx, c.sub.ComputerSet(), messages.Encode(s), &e)
}

// RemoveComputer removes a computer no live job holds; the reply is what
// was removed.
func (c *Client) RemoveComputer(ctx context.Context, name string) (messages.Enrollment, error) {
	return c.computer(ctx, c.sub.ComputerRemove(), messages.ComputerRequest{Name: name})
}

// DrainComputer takes a computer out of service (a live job finishes
// first).
func (c *Client) DrainComputer(ctx context.Context, name, reason string) (messages.Enrollment, error) {
	return c.computer(ctx, c.sub.ComputerDrain(), messages.ComputerRequest{Name: name, Reason: reason})
}

// UndrainComputer puts a drained computer back in service.
func (c *Client) UndrainComputer(ctx context.Context, name string) (messages.Enrollment, error) {
	return c.computer(ctx, c.sub.ComputerUndrain(), messages.ComputerRequest{Name: name})
}

// ReleaseComputer ends the reservation of a computer in use; used false
// says the reservation never used it, which clears the taint.
func (c *Client) ReleaseComputer(ctx context.Context, name string, used bool) (messages.Enrollment, error) {
	return c.computer(ctx, c.sub.ComputerRelease(), messages.ComputerRequest{Name: name, Used: &used})
}

func (c *Client) computer(ctx context.Context, subject string, r messages.ComputerRequest) (messages.Enrollment, error) {
	var e messages.Enrollment
	return e, c.do(ctx, subject, messages.Encode(r), &e)
}
