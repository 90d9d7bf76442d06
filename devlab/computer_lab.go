package devlab

import (
	"fmt"
	"sync"
)

// Lab is a fleet of simulated computers named <prefix>-0001, ... that
// share one configuration, each with its own personality.
type Lab struct {
	Computers []*Computer
}

// NewLab makes n powered-off computers; newShell gives each its own
// personality (cfg.Shell is ignored).
func NewLab(n int, prefix string, cfg Config, newShell func() Shell) (*Lab, error) {
	if n < 1 || newShell == nil {
		return nil, fmt.Errorf("devlab: NewLab needs n >= 1 (got %d) and a newShell function", n)
	}
	l := &Lab{Computers: make([]*Computer, 0, n)}
	for i := range n {
		c := cfg
		c.Name = fmt.Sprintf("%s-%04d", prefix, i+1)
		c.Shell = newShell()
		comp, err := NewComputer(c)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.Computers = append(l.Computers, comp)
	}
	return l, nil
}

// BootAll reimages every computer with image and powers it on.
func (l *Lab) BootAll(image string) error {
	for _, c := range l.Computers {
		if err := c.Boot(image); err != nil {
			return fmt.Errorf("boot %s: %w", c.Name(), err)
		}
	}
	return nil
}

// Answering counts the computers whose SSH is up.
func (l *Lab) Answering() int {
	n := 0
	for _, c := range l.Computers {
		if c.Answering() {
			n++
		}
	}
	return n
}

// Close powers every computer off for good.
func (l *Lab) Close() {
	var wg sync.WaitGroup
	for _, c := range l.Computers {
		wg.Go(c.Close)
	}
	wg.Wait()
}
