package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// Limits of computer.add and computer.list.
const (
	DefaultComputerPage = 100
	MaxComputerPage     = 10000
	// MaxComputersPerAdd bounds one bulk add (the body limit bounds it
	// first for all but the smallest enrolments).
	MaxComputersPerAdd = 2000
	// listReserve is kept free of a list reply's max payload for the
	// envelope and headers.
	listReserve = 1024
)

// addComputers enrols one computer (the reply is its enrolment) or many
// (the reply counts them). An existing name with the same enrolment is a
// no-op; with a different one the request is refused (409) and the others
// of the request stay enrolled (importing the same file again is safe).
func (c *Coordinator) addComputers(ctx context.Context, data []byte) (any, error) {
	comps, err := messages.DecodeComputerAdd(data)
	if err != nil {
		return nil, badInput(err)
	}
	if len(comps) > MaxComputersPerAdd {
		return nil, badInput(fmt.Errorf("computers: %d in one request; at most %d (loadpool computer import splits a file)", len(comps), MaxComputersPerAdd))
	}
	seen := map[string]bool{}
	for i, comp := range comps {
		prefix := "computer"
		if len(comps) > 1 {
			prefix = fmt.Sprintf("computers[%d]", i)
		}
		if err := comp.ValidateEnrollment(prefix); err != nil {
			return nil, badInput(err)
		}
		if seen[comp.Name] {
			return nil, badInput(fmt.Errorf("%s.name: %s is given twice", prefix, comp.Name))
		}
		seen[comp.Name] = true
	}
	if len(comps) == 1 {
		e, _, err := c.addOne(ctx, comps[0])
		return e, err
	}
	return c.addMany(ctx, comps)
}

// addConcurrency is how many enrolments of one bulk add are written at
// once (each is a KV create and an event: round trips, not CPU).
const addConcurrency = 16

// addMany enrols comps, addConcurrency at once. On a refusal the others
// still finish; the first refusal is the reply, with the counts.
func (c *Coordinator) addMany(ctx context.Context, comps []messages.Computer) (messages.AddReply, error) {
	var (
		mu    sync.Mutex
		reply messages.AddReply
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, addConcurrency)
	)
	for _, comp := range comps {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, added, err := c.addOne(ctx, comp)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && first == nil:
				first = err
			case err != nil:
			case added:
				reply.Added++
			default:
				reply.Unchanged++
			}
		})
	}
	wg.Wait()
	if first != nil {
		return reply, fmt.Errorf("%w (this request enrolled %d and found %d unchanged)", first, reply.Added, reply.Unchanged)
	}
	return reply, nil
}

func (c *Coordinator) addOne(ctx context.Context, comp messages.Computer) (messages.Enrollment, bool, error) {
	e := messages.Enrollment{Computer: comp, State: messages.ComputerAvailable, Since: time.Now().UTC()}
	rev, err := c.writeComputer(ctx, e, 0)
	if err == nil {
		c.settle(ctx, c.computerEvent(e, "enrolled", rev))
		return e, true, nil
	}
	if !errors.Is(err, errConflict) {
		return e, false, err
	}
	have, _, err := c.readComputer(ctx, comp.Name)
	if err != nil {
		return have, false, err
	}
	if !messages.SameEnrollment(have.Computer, comp) {
		return have, false, stateRefusal("computer %s is already enrolled with other fields (provisioner %s, type %s, address %q): change it with computer.set, or remove it first",
			comp.Name, have.Provisioner, have.Type, have.Address)
	}
	return have, false, nil
}

func decodeComputerRequest(data []byte, field string) (messages.ComputerRequest, error) {
	var r messages.ComputerRequest
	if err := messages.Decode(data, &r, true); err != nil {
		return r, badInput(err)
	}
	if r.Name == "" {
		return r, badInput(errors.New(`name: is required ({"name": "vm-017"})`))
	}
	if err := messages.ValidComputerName("name", r.Name); err != nil {
		return r, badInput(err)
	}
	if r.Reason != "" && field != "reason" {
		return r, badInput(errors.New("reason: only computer.drain takes a reason"))
	}
	if r.Used != nil && field != "used" {
		return r, badInput(errors.New("used: only computer.release takes used"))
	}
	if len(r.Reason) > maxComputerReason || strings.ContainsAny(r.Reason, "\r\n\x00") {
		return r, badInput(fmt.Errorf("reason: must be one line of at most %d bytes", maxComputerReason))
	}
	return r, nil
}

func (c *Coordinator) getComputer(ctx context.Context, data []byte) (any, error) {
	r, err := decodeComputerRequest(data, "")
	if err != nil {
		return nil, err
	}
	e, _, err := c.readComputer(ctx, r.Name)
	return e, err
}

// listComputers pages the inventory by name from the index; a page never
// exceeds the server's max payload.
func (c *Coordinator) listComputers(_ context.Context, data []byte) (any, error) {
	var r messages.ComputerListRequest
	if len(bytes.TrimSpace(data)) > 0 {
		if err := messages.Decode(data, &r, true); err != nil {
			return nil, badInput(err)
		}
	}
	switch {
	case r.State != "" && !messages.ValidComputerState(r.State):
		return nil, badInput(fmt.Errorf("state: must be one of %s, not %q", strings.Join(messages.ComputerStates, ", "), r.State))
	case r.Provisioner != "" && messages.ValidToken("provisioner", r.Provisioner) != nil:
		return nil, badInput(messages.ValidToken("provisioner", r.Provisioner))
	case r.After != "" && messages.ValidComputerName("after", r.After) != nil:
		return nil, badInput(messages.ValidComputerName("after", r.After))
	case r.Limit < 0 || r.Limit > MaxComputerPage:
		return nil, badInput(fmt.Errorf("limit: must be between 1 and %d (0 means %d), not %d", MaxComputerPage, DefaultComputerPage, r.Limit))
	}
	if r.Limit == 0 {
		r.Limit = DefaultComputerPage
	}
	budget := int(c.nc.MaxPayload()) - listReserve
	out, next := c.inv.page(r.State, r.Provisioner, r.After, r.Limit, budget)
	return messages.ComputerListReply{Computers: out, Next: next}, nil
}

// heldBy returns the live job that holds the computer ("" when none): the
// job the leader's enrolment names as holding it, if its record is live.
func (c *Coordinator) heldBy(ctx context.Context, name string) (string, error) {
	e, _, err := c.readComputer(ctx, name)
	if err != nil {
		return "", err
	}
	holder := heldJob(e)
	if holder == "" {
		return "", nil
	}
	rec, _, err := c.read(ctx, holder)
	switch {
	case errors.Is(err, errUnknownJob):
		return holder, nil // a submit in progress, or one that died: not free yet
	case err != nil:
		return "", err
	case messages.Terminal(rec.State):
		return "", nil
	}
	return holder, nil
}

func (c *Coordinator) refuseIfHeld(ctx context.Context, name, what string) error {
	job, err := c.heldBy(ctx, name)
	if err != nil {
		return err
	}
	if job != "" {
		return stateRefusal("computer %s is held by job %s: %s it after the job ends, or cancel the job", name, job, what)
	}
	return nil
}

func (c *Coordinator) setComputer(ctx context.Context, data []byte) (any, error) {
	var s messages.ComputerSet
	if err := messages.Decode(data, &s, true); err != nil {
		return nil, badInput(err)
	}
	if err := messages.ValidComputerName("name", s.Name); err != nil {
		return nil, badInput(err)
	}
	if err := c.refuseIfHeld(ctx, s.Name, "change"); err != nil {
		return nil, err
	}
	return c.changeComputer(ctx, s.Name, func(e messages.Enrollment) (messages.Enrollment, string, error) {
		next := e
		next.Computer = s.Apply(e.Computer)
		probe := next.Computer
		probe.LearnedHostKey = nil
		if err := probe.ValidateEnrollment("computer"); err != nil {
			return e, "", badInput(err)
		}
		if e.State == messages.ComputerReloading {
			return e, "", stateRefusal("computer %s is reloading for job %s: change it after the job ends", e.Name, e.Job)
		}
		if messages.SameEnrollment(next.Computer, e.Computer) && (next.LearnedHostKey == nil) == (e.LearnedHostKey == nil) {
			return e, "", nil
		}
		// A changed placement or key means the image on it is unknown.
		next.Image, next.Tainted = "", true
		return next, "enrolment changed", nil
	})
}

func (c *Coordinator) removeComputer(ctx context.Context, data []byte) (any, error) {
	r, err := decodeComputerRequest(data, "")
	if err != nil {
		return nil, err
	}
	if err := c.refuseIfHeld(ctx, r.Name, "remove"); err != nil {
		return nil, err
	}
	for range maxCASRounds {
		e, rev, err := c.readComputer(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		if e.State == messages.ComputerReloading {
			return nil, stateRefusal("computer %s is reloading for job %s: remove it after the job ends", e.Name, e.Job)
		}
		dctx, cancel := context.WithTimeout(ctx, opTimeout)
		err = c.inventory.Delete(dctx, r.Name, jetstream.LastRevision(rev))
		cancel()
		if isRevisionErr(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("remove %s from KV: %w", r.Name, err)
		}
		c.inv.drop(r.Name, rev+1)
		c.settle(ctx, c.computerEvent(e, "removed from the inventory", rev+1))
		return e, nil
	}
	return nil, fmt.Errorf("computer %s: gave up after %d lost compare-and-set rounds", r.Name, maxCASRounds)
}

func (c *Coordinator) drainComputer(ctx context.Context, data []byte) (any, error) {
	r, err := decodeComputerRequest(data, "reason")
	if err != nil {
		return nil, err
	}
	if r.Reason == "" {
		r.Reason = "drained by an operator"
	}
	return c.changeComputer(ctx, r.Name, func(e messages.Enrollment) (messages.Enrollment, string, error) {
		if e.State == messages.ComputerMaintenance && e.Reason == r.Reason {
			return e, "", nil
		}
		msg := "drained: " + r.Reason
		if e.State == messages.ComputerReloading {
			msg += " (job " + e.Job + " finishes first)"
		}
		e.State, e.Reason, e.Since = messages.ComputerMaintenance, r.Reason, time.Now().UTC()
		return e, msg, nil
	})
}

// undrainComputer puts a drained computer back: reloading while its job
// still runs, else what its last job left (inuse, failed, or available).
func (c *Coordinator) undrainComputer(ctx context.Context, data []byte) (any, error) {
	r, err := decodeComputerRequest(data, "")
	if err != nil {
		return nil, err
	}
	holder, err := c.heldBy(ctx, r.Name)
	if err != nil {
		return nil, err
	}
	last := ""
	return c.changeComputer(ctx, r.Name, func(e messages.Enrollment) (messages.Enrollment, string, error) {
		if e.State != messages.ComputerMaintenance {
			return e, "", stateRefusal("computer %s is %s, not in maintenance: nothing to undrain", e.Name, e.State)
		}
		if holder == "" && e.Job != "" && last == "" {
			if rec, _, err := c.read(ctx, e.Job); err == nil {
				last = rec.State
			}
		}
		switch {
		case holder != "":
			e.State, e.Job, e.JobEnded = messages.ComputerReloading, holder, ""
		case last == messages.StateReady:
			e.State = messages.ComputerInUse
		case last == messages.StateFailed:
			e.State = messages.ComputerFailed
		default:
			e.State = messages.ComputerAvailable
		}
		e.Reason, e.Since = "", time.Now().UTC()
		return e, "undrained", nil
	})
}

// releaseComputer ends the reservation of a computer in use: available
// again; used false (the reservation never used it) clears the taint.
func (c *Coordinator) releaseComputer(ctx context.Context, data []byte) (any, error) {
	r, err := decodeComputerRequest(data, "used")
	if err != nil {
		return nil, err
	}
	if r.Used == nil {
		return nil, badInput(errors.New(`used: is required: true when the reservation used the computer (it will be reloaded), false when it never did ({"name": "vm-017", "used": false})`))
	}
	return c.changeComputer(ctx, r.Name, func(e messages.Enrollment) (messages.Enrollment, string, error) {
		if e.State != messages.ComputerInUse {
			return e, "", stateRefusal("computer %s is %s, not in use: only a computer handed to a reservation (inuse) can be released", e.Name, e.State)
		}
		e.State, e.Since = messages.ComputerAvailable, time.Now().UTC()
		msg := "released (used: the next job reloads it)"
		if !*r.Used {
			e.Tainted = false
			msg = "released unused (taint cleared: the next job may skip the reload)"
		}
		return e, msg, nil
	})
}
