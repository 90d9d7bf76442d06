package libvirt

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/outcome"
)

// Power performs req.Action (reset, on, off, status) on the computer's
// domain and reports its state afterwards. With req.Evidence it first
// saves a screen dump (QEMU monitor screendump; go-libvirt's
// DomainScreenshot is broken) of a running domain and names it and the
// serial console log in the reply's Evidence; a missing screen dump never
// fails the action. Reset of a domain that is off starts it.
func (p *Provisioner) Power(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error) {
	reply := messages.PowerReply{Computer: req.Computer.Name, Action: req.Action, State: "unknown"}
	err := p.power(ctx, req, &reply)
	return reply, classify(err, p.lv.URI())
}

func (p *Provisioner) power(ctx context.Context, req messages.PowerRequest, reply *messages.PowerReply) error {
	m, err := machineOf(req.Computer)
	if err != nil {
		return err
	}
	dir := paths{dir: filepath.Join(p.cfg.StateDir, m.domain)}
	return p.call(ctx, func(l *golibvirt.Libvirt) error {
		dom, found, err := lookup(l, m.domain)
		if err != nil {
			return err
		}
		if !found {
			return &noDomainError{computer: m.computer, domain: m.domain}
		}
		on, err := isOn(l, dom)
		if err != nil {
			return err
		}
		var notes []string
		if req.Evidence {
			var note string
			reply.Evidence, note = screendump(l, dom, dir, on)
			notes = append(notes, note)
		}
		note, err := act(l, dom, req.Action, on)
		if err != nil {
			return err
		}
		if on, err = isOn(l, dom); err != nil {
			return err
		}
		reply.State = map[bool]string{true: "on", false: "off"}[on]
		reply.Detail = strings.Join(append([]string{note}, notes...), "; ")
		return nil
	})
}

// act performs one action on a domain that was on (or not) before.
func act(l *golibvirt.Libvirt, dom golibvirt.Domain, action string, on bool) (string, error) {
	switch action {
	case messages.PowerStatus:
		return map[bool]string{true: "running", false: "shut off"}[on], nil
	case messages.PowerOn:
		if on {
			return "already running", nil
		}
		return "started", wrap("starting", dom, l.DomainCreate(dom))
	case messages.PowerOff:
		if !on {
			return "already shut off", nil
		}
		return "powered off (destroyed)", wrap("destroying", dom, l.DomainDestroy(dom))
	case messages.PowerReset:
		if !on {
			return "was off; started instead of a reset", wrap("starting", dom, l.DomainCreate(dom))
		}
		return "reset", wrap("resetting", dom, l.DomainReset(dom, 0))
	}
	return "", &badActionError{action: action}
}

func wrap(what string, dom golibvirt.Domain, err error) error {
	if err != nil {
		return fmt.Errorf("%s domain %s: %w", what, dom.Name, err)
	}
	return nil
}

// screendump saves the screen of a running domain through the QEMU
// monitor; evidence names the files, note says what happened.
func screendump(l *golibvirt.Libvirt, dom golibvirt.Domain, dir paths, on bool) (evidence, note string) {
	evidence = "console log " + dir.console()
	if !on {
		return evidence, "no screen dump: the domain is off"
	}
	file := dir.screen(time.Now().UTC().Format("20060102T150405.000"))
	cmd, _ := json.Marshal(map[string]any{"execute": "screendump", "arguments": map[string]string{"filename": file, "format": "png"}})
	if _, err := l.QEMUDomainMonitorCommand(dom, string(cmd), 0); err != nil {
		return evidence, fmt.Sprintf("no screen dump: %v", err)
	}
	return "screen " + file + "; " + evidence, "screen saved"
}

// badActionError: a power action this provisioner does not know.
type badActionError struct{ action string }

func (e *badActionError) Error() string {
	return fmt.Sprintf("power action %q is not one of reset, on, off, status", e.action)
}
func (e *badActionError) mine()          {}
func (e *badActionError) Reason() string { return outcome.ReasonBadRequest }
