package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/loadpool/loadpool/internal/microreply"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/micro"
)

// ServiceName is the NATS micro service name of every coordinator.
const ServiceName = "loadpool-coordinator"

// Version of the micro service.
const Version = "0.1.0"

// handlerTimeout bounds one job.* request.
const handlerTimeout = 30 * time.Second

// APIError is an error reply of the coordinator: Code is the micro error
// code (400 bad input, 404 unknown job, 409 computer busy or id conflict,
// 503 not ready), Message the sentence to act on.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// inputError marks a bad request body (400).
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

func badInput(err error) error { return &inputError{err} }

// apiError maps an internal error onto the reply code, in one place.
func apiError(err error) *APIError {
	var in *inputError
	var panicked errPanicked
	switch {
	case errors.As(err, &in):
		return &APIError{400, err.Error()}
	case errors.As(err, &panicked):
		return &APIError{500, err.Error()}
	case errors.Is(err, errUnknownJob):
		return &APIError{404, fmt.Sprintf("%v: check the id (job.list shows the jobs)", err)}
	case errors.Is(err, errUnknownComputer):
		return &APIError{404, strings.TrimPrefix(err.Error(), errUnknownComputer.Error()+": ")}
	case errors.Is(err, errComputerState):
		return &APIError{409, strings.TrimPrefix(err.Error(), errComputerState.Error()+": ")}
	case errors.Is(err, errBusy), errors.Is(err, errIDConflict):
		return &APIError{409, strings.TrimPrefix(strings.TrimPrefix(err.Error(), errBusy.Error()+": "), errIDConflict.Error()+": ")}
	}
	return &APIError{503, fmt.Sprintf("coordinator cannot serve this now (%v): try again shortly; if it persists check the NATS JetStream servers", err)}
}

func (c *Coordinator) startService() error {
	svc, err := micro.AddService(c.nc, micro.Config{
		Name: ServiceName, Version: Version,
		Description: "loadpool coordinator: job intake, attempt loop, locks, lab inventory",
		Metadata:    map[string]string{"coordinator": c.cfg.Name, "prefix": c.sub.Prefix},
		ErrorHandler: func(_ micro.Service, err *micro.NATSError) {
			c.log.Warn("micro service error", "subject", err.Subject, "err", err.Description)
		},
	})
	if err != nil {
		return fmt.Errorf("coordinator: micro service: %w", err)
	}
	c.svc = svc
	g := svc.AddGroup(c.sub.JobGroup())
	eps := []struct {
		name string
		h    func(context.Context, []byte) (any, error)
	}{
		{"submit", func(ctx context.Context, b []byte) (any, error) { return c.submit(ctx, b) }},
		{"get", func(ctx context.Context, b []byte) (any, error) { return c.get(ctx, b) }},
		{"list", func(ctx context.Context, b []byte) (any, error) { return c.list(ctx, b) }},
		{"cancel", func(ctx context.Context, b []byte) (any, error) { return c.cancelJob(ctx, b) }},
	}
	for _, ep := range eps {
		if err := g.AddEndpoint(ep.name, c.endpoint(ep.name, ep.h)); err != nil {
			return fmt.Errorf("coordinator: endpoint %s: %w", ep.name, err)
		}
	}
	cg := svc.AddGroup(c.sub.ComputerGroup())
	for _, ep := range []struct {
		name string
		h    func(context.Context, []byte) (any, error)
	}{
		{"add", c.addComputers}, {"get", c.getComputer}, {"list", c.listComputers}, {"set", c.setComputer},
		{"remove", c.removeComputer}, {"drain", c.drainComputer}, {"undrain", c.undrainComputer},
		{"release", c.releaseComputer},
	} {
		if err := cg.AddEndpoint("computer-"+ep.name, c.endpoint("computer."+ep.name, ep.h), micro.WithEndpointSubject(ep.name)); err != nil {
			return fmt.Errorf("coordinator: endpoint computer.%s: %w", ep.name, err)
		}
	}
	return nil
}

// endpoint wraps a handler: in-flight accounting, deadline, error reply.
func (c *Coordinator) endpoint(name string, h func(context.Context, []byte) (any, error)) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		to := microreply.To(c.nc, req)
		if !c.enter() {
			c.reply(to, name, nil, &APIError{503, "coordinator is stopping: try again (another coordinator will answer)"})
			return
		}
		data := req.Data()
		c.slots <- struct{}{}
		go func() { // answers through to, never through req (see package microreply)
			defer c.leave()
			defer func() { <-c.slots }()
			ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
			defer cancel()
			v, err := c.guarded(name, h)(ctx, data)
			if err != nil {
				c.reply(to, name, nil, apiError(err))
				return
			}
			c.reply(to, name, v, nil)
		}()
	})
}

func (c *Coordinator) reply(to microreply.Target, name string, v any, e *APIError) {
	var err error
	if e == nil {
		err = to.OK(messages.Encode(v))
	} else {
		lvl := c.log.Info
		if e.Code >= 500 {
			lvl = c.log.Warn
		}
		lvl("request refused", "endpoint", name, "code", e.Code, "error", e.Message)
		desc := strings.NewReplacer("\r", " ", "\n", " ").Replace(e.Message)
		err = to.Error(strconv.Itoa(e.Code), desc, messages.Encode(messages.ErrorBody{Error: e.Message}))
	}
	if err != nil {
		c.log.Warn("reply not sent", "endpoint", name, "err", err)
	}
}
