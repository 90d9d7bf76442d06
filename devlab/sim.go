package devlab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/loadpool/loadpool/outcome"
	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

// SimName is the provisioner token of the simulated provisioner.
const SimName = "sim"

var _ loaderworker.Provisioner = (*Sim)(nil)

// Sim is a SIMULATED provisioner for the demo and tests: it "loads" an
// image onto a devlab Computer by reimaging and powering it on (Boot: new
// disk, new host key), and never waits for the OS, like a real
// provisioner. Power actions act on the Computer. It models a catalog of
// images (an unknown image is fail), reload if-needed (the computer already
// runs the image and is powered on: skipped), injected transient faults
// and slow loads; it does not model load time beyond what Slow asks for.
type Sim struct {
	mu        sync.Mutex
	computers map[string]*Computer
	images    []string
	faults    map[string]int
	slow      time.Duration
}

// NewSim makes a simulated provisioner that can load images.
func NewSim(images ...string) *Sim {
	return &Sim{computers: map[string]*Computer{}, images: images, faults: map[string]int{}}
}

// Add puts computers under the provisioner's control.
func (s *Sim) Add(cs ...*Computer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		s.computers[c.Name()] = c
	}
}

// AddImage adds an image to the catalog.
func (s *Sim) AddImage(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images = append(s.images, name)
}

// FailNext makes the next n loads of computer fail transiently.
func (s *Sim) FailNext(computer string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[computer] += n
}

// SlowNext makes the next load take at least d.
func (s *Sim) SlowNext(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow = d
}

func (s *Sim) lookup(name string) (*Computer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.computers[name]
	if !ok {
		return nil, outcome.Permanent(fmt.Errorf("simulated provisioner has no computer named %s", name))
	}
	return c, nil
}

// Load reimages the computer with the image and powers it on.
func (s *Sim) Load(ctx context.Context, req messages.Request, p progress.Progress) (loaderworker.LoadReport, error) {
	c, err := s.lookup(req.Computer.Name)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	s.mu.Lock()
	known := slices.Contains(s.images, req.Image.Name)
	fault := s.faults[req.Computer.Name] > 0
	if fault {
		s.faults[req.Computer.Name]--
	}
	slow := s.slow
	s.slow = 0
	s.mu.Unlock()
	if !known {
		return loaderworker.LoadReport{}, outcome.Permanent(outcome.WithReason(fmt.Errorf("image %s is not in the simulated provisioner's catalog (%v)", req.Image.Name, s.catalog()), outcome.ReasonNotFound))
	}
	if fault {
		return loaderworker.LoadReport{}, errors.New("simulated transient fault: the datastore is busy")
	}
	if req.Reload == messages.ReloadIfNeeded && c.Snapshot().Image == req.Image.Name && c.PoweredOn() {
		return loaderworker.LoadReport{Detail: fmt.Sprintf("skipped: %s already runs %s", c.Name(), req.Image.Name)}, nil
	}
	p.Event(fmt.Sprintf("reimaging %s with %s (simulated)", c.Name(), req.Image.Name))
	if slow > 0 {
		select {
		case <-time.After(slow):
		case <-ctx.Done():
			return loaderworker.LoadReport{}, context.Cause(ctx)
		}
	}
	if err := c.Boot(req.Image.Name); err != nil {
		return loaderworker.LoadReport{}, err
	}
	p.Event(fmt.Sprintf("powered %s on", c.Name()))
	return loaderworker.LoadReport{Detail: fmt.Sprintf("reimaged %s with %s and powered it on (simulated)", c.Name(), req.Image.Name), Reloaded: true}, nil
}

func (s *Sim) catalog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.images)
}

// Power acts on the simulated computer.
func (s *Sim) Power(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error) {
	c, err := s.lookup(req.Computer.Name)
	if err != nil {
		return messages.PowerReply{}, err
	}
	switch req.Action {
	case messages.PowerOff:
		c.PowerOff()
	case messages.PowerOn:
		if !c.PoweredOn() {
			err = c.Reset()
		}
	case messages.PowerReset:
		err = c.Reset()
	}
	if err != nil {
		return messages.PowerReply{}, err
	}
	rep := messages.PowerReply{State: "off"}
	if c.PoweredOn() {
		rep.State = "on"
	}
	if req.Evidence {
		rep.Detail = "SIMULATED console screenshot and serial log (ReadEvidence)"
	}
	return rep, nil
}

// PoweredOn reports whether the computer is on (booting, flaky or up).
func (c *Computer) PoweredOn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase != phaseOff
}
