package xcat

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

// Timeouts returns VCL's two limits for an image: the stall timeout (its
// reload time, at least minStall) and the overall timeout (twice its
// reload time, at least minOverall).
func Timeouts(img messages.Image, minStall, minOverall time.Duration) (stall, overall time.Duration) {
	reload := time.Duration(img.ReloadMinutes) * time.Minute
	return max(reload, minStall), max(2*reload, minOverall)
}

// seen is what one poll read about a node.
type seen struct {
	status, statustime, bootstate string
}

// watch polls the node until booted (ready), failed (retry) or a timeout
// (retry); booted with the boot state still "install ..." is the old OS
// booted from disk (retry). Any change of status or boot state counts as progress and
// resets the stall timer; a failed read does not end the watch (the
// timeouts bound it) but is named in the timeout's detail.
func (p *Provisioner) watch(ctx context.Context, req messages.Request, prog progress.Progress, before map[string]string) (loaderworker.LoadReport, error) {
	node, img := NodeOf(req.Computer), req.Image.Name
	stall, overall := Timeouts(req.Image, p.cfg.MinStall, p.cfg.MinOverall)
	start := time.Now()
	lastChange, last := start, seen{status: before["status"], statustime: before["statustime"]}
	moved := false // the status changed since power boot
	var lastErr error
	for {
		if !sleep(ctx, p.cfg.Poll) {
			return loaderworker.LoadReport{}, context.Cause(ctx)
		}
		now, err := p.read(ctx, node)
		switch {
		case err != nil && !retryable(err):
			return loaderworker.LoadReport{}, err
		case err != nil:
			lastErr = err
			p.log.Info("reading the node's status failed; still waiting", "node", node, "err", err)
		case now != last:
			moved = moved || now.status != last.status || now.statustime != last.statustime
			prog.Event(fmt.Sprintf("xCAT: node %s status %q, bootstate %q (%v since power boot)", node, now.status, now.bootstate, time.Since(start).Round(100*time.Millisecond)))
			last, lastChange, lastErr = now, time.Now(), nil
		}
		if moved && last.status == "booted" && strings.HasPrefix(last.bootstate, "install ") {
			return loaderworker.LoadReport{}, fmt.Errorf("xCAT node %s reported status booted but its bootstate is still %q: the install never ran, the node booted the OS on its disk; make its firmware boot from the network first (loadpool sends nextboot net only to mgt ipmi and openbmc)", node, last.bootstate)
		}
		if moved && last.status == "booted" {
			return loaderworker.LoadReport{Reloaded: true,
				Detail: fmt.Sprintf("xCAT installed osimage %s on node %s in %v (status booted)", img, node, time.Since(start).Round(100*time.Millisecond))}, nil
		}
		if moved && last.status == "failed" {
			return loaderworker.LoadReport{}, fmt.Errorf("xCAT node %s reported status failed while installing osimage %s (bootstate %q): the installer's %%post or a postscript failed: xCAT's logs on the management node say which", node, img, last.bootstate)
		}
		if d := time.Since(start); d >= overall {
			return loaderworker.LoadReport{}, &TimeoutError{Which: "overall", Node: node, Limit: overall, Last: last.status, LastErr: lastErr}
		}
		if time.Since(lastChange) >= stall {
			return loaderworker.LoadReport{}, &TimeoutError{Which: "stall", Node: node, Limit: stall, Last: last.status, LastErr: lastErr}
		}
	}
}

// read is one poll: status, statustime and the boot state.
func (p *Provisioner) read(ctx context.Context, node string) (seen, error) {
	attrs, err := p.c.nodeAttrs(ctx, node, "status", "statustime")
	if err != nil {
		return seen{}, err
	}
	bs, err := p.c.bootstate(ctx, node)
	if err != nil {
		return seen{}, err
	}
	return seen{status: attrs["status"], statustime: attrs["statustime"], bootstate: bs}, nil
}

// sleep waits d; false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
