package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// DefaultClientTimeout bounds a Client call whose ctx has no deadline.
const DefaultClientTimeout = 30 * time.Second

// Client calls the coordinator service (job.submit/get/list/cancel). An
// error reply comes back as *APIError.
type Client struct {
	nc  *nats.Conn
	sub messages.Subjects
}

// NewClient returns a client of the coordinators on nc.
func NewClient(nc *nats.Conn, s messages.Subjects) *Client {
	return &Client{nc: nc, sub: s}
}

// Submit sends a job; the reply is its record (the existing one when the
// id was already submitted with the same spec).
func (c *Client) Submit(ctx context.Context, spec messages.JobSpec) (messages.JobRecord, error) {
	var rec messages.JobRecord
	return rec, c.do(ctx, c.sub.JobSubmit(), messages.Encode(spec), &rec)
}

// Get returns a job's record.
func (c *Client) Get(ctx context.Context, id string) (messages.JobRecord, error) {
	var rec messages.JobRecord
	return rec, c.do(ctx, c.sub.JobGet(), messages.Encode(messages.GetRequest{ID: id}), &rec)
}

// List returns up to r.Limit jobs (DefaultListLimit when 0), the last
// changed first, following job.list's pages from r.After.
func (c *Client) List(ctx context.Context, r messages.ListRequest) ([]messages.JobRecord, error) {
	limit := r.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	jobs := []messages.JobRecord{}
	for {
		r.Limit = limit - len(jobs)
		page, err := c.ListPage(ctx, r)
		if err != nil {
			return jobs, err
		}
		jobs = append(jobs, page.Jobs...)
		if page.Next == "" || len(jobs) >= limit {
			return jobs, nil
		}
		r.After = page.Next
	}
}

// ListPage returns one page of job.list: its Next continues it.
func (c *Client) ListPage(ctx context.Context, r messages.ListRequest) (messages.ListReply, error) {
	var reply messages.ListReply
	err := c.do(ctx, c.sub.JobList(), messages.Encode(r), &reply)
	return reply, err
}

// Cancel cancels a job; a job that has already ended comes back unchanged.
func (c *Client) Cancel(ctx context.Context, id, reason string) (messages.JobRecord, error) {
	var rec messages.JobRecord
	return rec, c.do(ctx, c.sub.JobCancel(), messages.Encode(messages.GetRequest{ID: id, Reason: reason}), &rec)
}

// do sends one raw request and decodes the reply into out.
func (c *Client) do(ctx context.Context, subject string, body []byte, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultClientTimeout)
		defer cancel()
	}
	msg, err := c.nc.RequestWithContext(ctx, subject, body)
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%s: the request body of %d bytes is larger than the NATS server accepts (max_payload %d bytes); the coordinator takes at most %d: send a smaller body", subject, len(body), c.nc.MaxPayload(), messages.MaxBodyBytes)
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%s: no coordinator answers: start one (loadpool coordinator) or check the subject prefix", subject)
	case err != nil:
		return fmt.Errorf("%s: %w", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return decodeAPIError(code, msg)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return fmt.Errorf("%s: unreadable reply: %w", subject, err)
	}
	return nil
}

func decodeAPIError(code string, msg *nats.Msg) error {
	n, err := strconv.Atoi(code)
	if err != nil {
		n = 500
	}
	var body messages.ErrorBody
	if json.Unmarshal(msg.Data, &body) != nil || body.Error == "" {
		body.Error = msg.Header.Get(micro.ErrorHeader)
	}
	return &APIError{Code: n, Message: body.Error}
}
