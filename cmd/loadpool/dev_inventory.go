//go:build dev

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/messages"
)

// The demo's lab inventory: every simulated computer is enrolled through
// vcl.computer.add before the first job; after the samples the demo
// drains one computer (a job for it is refused) and releases another
// unused (the next job on it skips the reload).

const (
	demoDrained     = "vm-03"
	demoDrainReason = "disk replaced: waiting for the new one"
	demoReleased    = "vm-01"
	// demoEnrolShown bounds the add commands printed; more are enrolled
	// all the same.
	demoEnrolShown = 12
)

// enrol enrolls every demo computer and prints the commands an operator
// would type for them.
func (d *devLab) enrol(ctx context.Context, cl *coordinator.Client, w io.Writer, mu *sync.Mutex) error {
	mu.Lock()
	fmt.Fprintf(w, "Enrolling the lab: what an operator types once per computer (many at once: loadpool computer import FILE)\n")
	for i, c := range d.enrolled {
		if i == demoEnrolShown && len(d.enrolled) > demoEnrolShown+1 {
			fmt.Fprintf(w, "  ... and %d more like these\n", len(d.enrolled)-i)
			break
		}
		fmt.Fprintf(w, "  %s\n", addCommand(c))
	}
	mu.Unlock()
	r, err := cl.ImportComputers(ctx, d.enrolled)
	if err != nil {
		return fmt.Errorf("enrolling the demo computers: %w", explain(err))
	}
	mu.Lock()
	fmt.Fprintf(w, "enrolled %d computers through %s: %d added, %d unchanged\n\n", len(d.enrolled), d.subj.ComputerAdd(), r.Added, r.Unchanged)
	mu.Unlock()
	return nil
}

// addCommand is the `loadpool computer add` command that enrolls c.
func addCommand(c messages.Computer) string {
	s := fmt.Sprintf("loadpool computer add %s --provisioner %s --type %s", c.Name, c.Provisioner, c.Type)
	if c.Address != "" {
		s += " --address " + c.Address
	}
	if c.Control != "" {
		s += " --control " + c.Control
	}
	for _, k := range slices.Sorted(maps.Keys(c.Attributes)) {
		s += " --attr " + k + "=" + c.Attributes[k]
	}
	if c.HostKey != "" {
		s += " --host-key '" + c.HostKey + "'"
	}
	return s
}

// linuxJob is a job for one of the simulated Linux computers: it names
// the computer, nothing else about it.
func linuxJob(id, computer, image string) messages.JobSpec {
	return messages.JobSpec{ID: id, Computer: messages.Computer{Name: computer},
		Image: messages.Image{Name: image, OSFamily: "linux", OSVersion: "24.04"}}
}

// inventoryStory prints the inventory, then drains one computer and
// releases another; it returns how many steps went otherwise than
// expected.
func (d *devLab) inventoryStory(ctx context.Context, cl *coordinator.Client, w io.Writer, mu *sync.Mutex) (int, error) {
	all, err := allComputers(ctx, cl, messages.ComputerListRequest{}, 0)
	if err != nil {
		return 0, fmt.Errorf("listing the inventory: %w", explain(err))
	}
	mu.Lock()
	fmt.Fprintf(w, "\nThe lab inventory after the samples:\n$ loadpool computers\n")
	_ = printComputers(w, all)
	mu.Unlock()
	bad := 0
	if d.computer(demoDrained) != nil {
		bad += d.drainStory(ctx, cl, w, mu)
	}
	if d.computer(demoReleased) != nil {
		bad += d.releaseStory(ctx, cl, w, mu)
	}
	return bad, nil
}

func (d *devLab) drainStory(ctx context.Context, cl *coordinator.Client, w io.Writer, mu *sync.Mutex) int {
	say := locked(w, mu)
	say("\nDrain: an operator takes %s out of service; a job for it is refused with the reason.\n", demoDrained)
	say("$ loadpool computer drain %s --reason %q\n", demoDrained, demoDrainReason)
	e, err := cl.DrainComputer(ctx, demoDrained, demoDrainReason)
	if err != nil {
		say("UNEXPECTED: drain failed: %v\n", explain(err))
		return 1
	}
	say("computer %s drained: %s\n", e.Name, describeState(e))
	say("$ loadpool submit --id demo-drained --computer %s --image ubuntu-24.04 --os-family linux\n", demoDrained)
	_, err = cl.Submit(ctx, linuxJob("demo-drained", demoDrained, "ubuntu-24.04"))
	var api *coordinator.APIError
	switch {
	case errors.As(err, &api) && api.Code == 409 && strings.Contains(api.Message, demoDrainReason):
		say("refused, as expected: the coordinator answered 409: %s\n", api.Message)
		return 0
	case err == nil:
		say("UNEXPECTED: the coordinator accepted a job for a drained computer\n")
	default:
		say("UNEXPECTED (wanted 409 with the reason): %v\n", explain(err))
	}
	return 1
}

func (d *devLab) releaseStory(ctx context.Context, cl *coordinator.Client, w io.Writer, mu *sync.Mutex) int {
	say := locked(w, mu)
	say("\nRelease: the reservation of %s ended without using it, so its taint is cleared and the next job\n"+
		"for the image it runs skips the reload (a used computer is always reloaded).\n", demoReleased)
	say("$ loadpool computer release %s --used=false\n", demoReleased)
	e, err := cl.ReleaseComputer(ctx, demoReleased, false)
	if err != nil {
		say("UNEXPECTED: release failed: %v\n", explain(err))
		return 1
	}
	say("computer %s released (used: false): %s\n", e.Name, describeState(e))
	mu.Lock()
	fmt.Fprintf(w, "$ loadpool computer show %s\n", demoReleased)
	printEnrollment(w, e)
	mu.Unlock()
	spec := linuxJob("demo-reuse", demoReleased, "ubuntu-24.04")
	say("sample demo-reuse: ubuntu-24.04 on %s again, reload if-needed\n", demoReleased)
	if _, err := cl.Submit(ctx, spec); err != nil {
		say("UNEXPECTED: submit refused: %v\n", explain(err))
		return 1
	}
	rec, err := waitEnded(ctx, cl, spec.ID)
	if err != nil {
		say("UNEXPECTED: %v\n", err)
		return 1
	}
	load := lastLoad(rec)
	skipped := load != nil && load.Reloaded != nil && !*load.Reloaded
	mark := "as expected"
	if rec.State != messages.StateReady || !skipped {
		mark = "UNEXPECTED (wanted ready without a reload)"
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(w, "\nsample %s ended %s after %d attempt(s): %s\n", rec.ID, rec.State, rec.Attempt, mark)
	printRecord(w, rec)
	if load != nil {
		fmt.Fprintf(w, "  load step: %s (reloaded %s)\n", load.Detail, reloadedText(load.Reloaded))
	}
	if mark != "as expected" {
		return 1
	}
	return 0
}

func lastLoad(rec messages.JobRecord) *messages.StepRecord {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		if rec.Steps[i].Step == messages.StepLoad {
			return &rec.Steps[i]
		}
	}
	return nil
}

func reloadedText(r *bool) string {
	if r == nil {
		return "unknown"
	}
	return fmt.Sprint(*r)
}

// printInventoryTips prints the commands a user can paste to do the same.
func (d *devLab) printInventoryTips(w io.Writer, url string) {
	fmt.Fprintf(w, "\nThe inventory yourself (export LOADPOOL_NATS_URL=%s for loadpool):\n", url)
	for _, l := range []string{
		"loadpool computers",
		"loadpool computer show " + demoReleased,
		"loadpool computer drain vm-02 --reason \"bad NIC\"",
		"loadpool computer undrain " + demoDrained,
		"loadpool computer release " + demoReleased + " --used=true     (its next job reloads it)",
		"nats req " + d.subj.ComputerList() + " '{}'",
		"nats req " + d.subj.ComputerGet() + " '{\"name\":\"" + demoReleased + "\"}'",
		"nats kv ls " + d.subj.InventoryBucket(),
		"nats sub '" + d.subj.ComputerEvent(">") + "'",
	} {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

// printComputerEvent prints one change of a computer's state.
func printComputerEvent(w io.Writer, ev messages.ComputerEvent) {
	state := ev.State
	if ev.Tainted {
		state += ",tainted"
	}
	fmt.Fprintf(w, "%s  computer %-9s %-19s %s  [%s]\n", ev.Time.Local().Format(time.TimeOnly), ev.Computer, state, ev.Message, ev.Source)
}

func locked(w io.Writer, mu *sync.Mutex) func(format string, a ...any) {
	return func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format, a...)
	}
}
