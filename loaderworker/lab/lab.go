// Package lab is the provisioner of VCL's standalone lab computers: machines
// that are installed by hand and never reimaged by loadpool. Its load
// confirms that the computer is one of the lab's and has the requested
// image, and answers ready without touching it (Reloaded is false); asked
// for an image the computer does not have, it answers fail. Lab computers
// have no power control: power actions answer "unknown" for status and an
// error (fail) for the rest, so an OS worker's hung wait ends in retry.
//
// The inventory is a JSON file (LOADPOOL_LAB_INVENTORY):
//
//	{"computers": [{"name": "lab-01", "images": ["ubuntu-22.04", "win7-lab"]}]}
//
// It is read when the provisioner is made and again by Reload, so an
// operator can add computers without a restart.
package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/loadpool/loadpool/outcome"
	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

// Name is the provisioner token of lab computers.
const Name = "lab"

var _ loaderworker.Provisioner = (*Provisioner)(nil)

// Inventory is the lab's list of computers and their installed images.
type Inventory struct {
	Computers []Computer `json:"computers"`
}

// Computer is one lab computer.
type Computer struct {
	Name   string   `json:"name"`
	Images []string `json:"images"`
}

// Validate checks every entry; errors name the entry.
func (inv Inventory) Validate() error {
	seen := map[string]bool{}
	for i, c := range inv.Computers {
		if err := messages.ValidComputerName(fmt.Sprintf("computers[%d].name", i), c.Name); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("computers[%d].name: %q is listed twice", i, c.Name)
		}
		seen[c.Name] = true
		if len(c.Images) == 0 {
			return fmt.Errorf("computers[%d].images: list at least one image installed on %s", i, c.Name)
		}
	}
	return nil
}

// ParseInventory decodes and validates an inventory file's contents.
func ParseInventory(data []byte) (Inventory, error) {
	var inv Inventory
	if err := messages.Decode(data, &inv, true); err != nil {
		return Inventory{}, err
	}
	return inv, inv.Validate()
}

// Provisioner answers for the lab's computers.
type Provisioner struct {
	path string
	mu   sync.RWMutex
	inv  map[string][]string
}

// New makes a provisioner over a fixed inventory.
func New(inv Inventory) (*Provisioner, error) {
	if err := inv.Validate(); err != nil {
		return nil, fmt.Errorf("lab inventory: %w", err)
	}
	p := &Provisioner{}
	p.set(inv)
	return p, nil
}

// Open reads the inventory from a file.
func Open(path string) (*Provisioner, error) {
	p := &Provisioner{path: path}
	return p, p.Reload()
}

// Reload reads the inventory file again; on error the old inventory stays.
func (p *Provisioner) Reload() error {
	if p.path == "" {
		return errors.New("lab: no inventory file to reload")
	}
	data, err := os.ReadFile(p.path)
	if err != nil {
		return fmt.Errorf("lab inventory: %w (set LOADPOOL_LAB_INVENTORY to a readable JSON file)", err)
	}
	inv, err := ParseInventory(data)
	if err != nil {
		return fmt.Errorf("lab inventory %s: %w", p.path, err)
	}
	p.set(inv)
	return nil
}

func (p *Provisioner) set(inv Inventory) {
	m := make(map[string][]string, len(inv.Computers))
	for _, c := range inv.Computers {
		m[c.Name] = slices.Clone(c.Images)
	}
	p.mu.Lock()
	p.inv = m
	p.mu.Unlock()
}

func (p *Provisioner) images(name string) ([]string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	im, ok := p.inv[name]
	return im, ok
}

// Load confirms the computer and its image.
func (p *Provisioner) Load(ctx context.Context, req messages.Request, pr progress.Progress) (loaderworker.LoadReport, error) {
	c := req.Computer
	if c.Type != messages.TypeLab {
		return loaderworker.LoadReport{}, outcome.Permanent(outcome.WithReason(fmt.Errorf("%s is of type %q: the lab provisioner only serves computers of type %q", c.Name, c.Type, messages.TypeLab), outcome.ReasonBadRequest))
	}
	images, ok := p.images(c.Name)
	if !ok {
		return loaderworker.LoadReport{}, outcome.Permanent(outcome.WithReason(fmt.Errorf("%s is not in the lab inventory: add it to the inventory file or use another provisioner", c.Name), outcome.ReasonNotFound))
	}
	if !slices.Contains(images, req.Image.Name) {
		return loaderworker.LoadReport{}, outcome.Permanent(outcome.WithReason(fmt.Errorf("lab computer %s does not have image %s (it has %s); lab computers are never reimaged", c.Name, req.Image.Name, strings.Join(images, ", ")), outcome.ReasonNotFound))
	}
	pr.Event(fmt.Sprintf("lab computer %s has image %s: nothing to load", c.Name, req.Image.Name))
	return loaderworker.LoadReport{Detail: fmt.Sprintf("lab computer %s already has %s (lab computers are never reimaged)", c.Name, req.Image.Name)}, nil
}

// Power has nothing to act on: lab computers are not under loadpool's power control.
func (p *Provisioner) Power(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error) {
	if _, ok := p.images(req.Computer.Name); !ok {
		return messages.PowerReply{}, outcome.Permanent(fmt.Errorf("%s is not in the lab inventory", req.Computer.Name))
	}
	if req.Action == messages.PowerStatus {
		return messages.PowerReply{State: "unknown", Detail: "lab computers have no remote power control"}, nil
	}
	return messages.PowerReply{}, outcome.Permanent(fmt.Errorf("cannot %s lab computer %s: lab computers have no remote power control; ask someone in the lab", req.Action, req.Computer.Name))
}
