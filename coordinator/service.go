package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/loadpool/loadpool/internal/service"
	"github.com/loadpool/loadpool/messages"
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

// startService serves the job.* and computer.* endpoints as the service
// ServiceName. Each request runs in one of c.slots (shared with the
// results) on one of the Handlers goroutines, and `nats micro stats`
// times it until its reply is sent (see package internal/service).
func (c *Coordinator) startService() error {
	svc, err := service.New(c.nc, service.Config{
		Name: ServiceName, Version: Version,
		Description: "loadpool coordinator: job intake, attempt loop, locks, lab inventory",
		Metadata:    map[string]string{"coordinator": c.cfg.Name, "prefix": c.sub.Prefix},
		Slots:       c.slots,
		Go:          func(f func()) { c.work <- f },
	})
	if err != nil {
		return fmt.Errorf("coordinator: service: %w", err)
	}
	c.svc = svc
	for _, ep := range []struct {
		name string
		h    func(context.Context, []byte) (any, error)
	}{
		{"submit", func(ctx context.Context, b []byte) (any, error) { return c.submit(ctx, b) }},
		{"get", func(ctx context.Context, b []byte) (any, error) { return c.get(ctx, b) }},
		{"list", func(ctx context.Context, b []byte) (any, error) { return c.list(ctx, b) }},
		{"cancel", func(ctx context.Context, b []byte) (any, error) { return c.cancelJob(ctx, b) }},
	} {
		if err := svc.AddEndpoint(ep.name, c.sub.JobGroup()+"."+ep.name, c.endpoint(ep.name, ep.h)); err != nil {
			return fmt.Errorf("coordinator: endpoint %s: %w", ep.name, err)
		}
	}
	for _, ep := range []struct {
		name string
		h    func(context.Context, []byte) (any, error)
	}{
		{"add", c.addComputers}, {"get", c.getComputer}, {"list", c.listComputers}, {"set", c.setComputer},
		{"remove", c.removeComputer}, {"drain", c.drainComputer}, {"undrain", c.undrainComputer},
		{"release", c.releaseComputer},
	} {
		if err := svc.AddEndpoint("computer-"+ep.name, c.sub.ComputerGroup()+"."+ep.name, c.endpoint("computer."+ep.name, ep.h)); err != nil {
			return fmt.Errorf("coordinator: endpoint computer.%s: %w", ep.name, err)
		}
	}
	return nil
}

// endpoint wraps a handler: in-flight accounting, deadline, error reply.
// It runs in its own goroutine (package internal/service).
func (c *Coordinator) endpoint(name string, h func(context.Context, []byte) (any, error)) service.Handler {
	return func(req *service.Request) {
		if !c.enter() {
			c.reply(req, name, nil, &APIError{503, "coordinator is stopping: try again (another coordinator will answer)"})
			return
		}
		defer c.leave()
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		defer cancel()
		v, err := c.guarded(name, h)(ctx, req.Data())
		if err != nil {
			c.reply(req, name, nil, apiError(err))
			return
		}
		c.reply(req, name, v, nil)
	}
}

func (c *Coordinator) reply(req *service.Request, name string, v any, e *APIError) {
	var err error
	if e == nil {
		err = req.Respond(messages.Encode(v))
	} else {
		lvl := c.log.Info
		if e.Code >= 500 {
			lvl = c.log.Warn
		}
		lvl("request refused", "endpoint", name, "code", e.Code, "error", e.Message)
		desc := strings.NewReplacer("\r", " ", "\n", " ").Replace(e.Message)
		err = req.Error(strconv.Itoa(e.Code), desc, messages.Encode(messages.ErrorBody{Error: e.Message}))
	}
	if err != nil {
		c.log.Warn("reply not sent", "endpoint", name, "err", err)
	}
}
