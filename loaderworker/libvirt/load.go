package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/loadpool/loadpool/libvirtd"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/progress"
)

// Load puts req.Image on the computer's domain: destroy it, a fresh qcow2
// overlay on the image's base disk, define it with the enrolment's
// settings and the computer's identity (fw_cfg), start it. With reload
// if-needed a running domain whose metadata names the image is left alone.
func (p *Provisioner) Load(ctx context.Context, req messages.Request, prog progress.Progress) (loaderworker.LoadReport, error) {
	rep, err := p.load(ctx, req, prog)
	return rep, classify(err, p.lv.URI())
}

func (p *Provisioner) load(ctx context.Context, req messages.Request, prog progress.Progress) (loaderworker.LoadReport, error) {
	m, err := machineOf(req.Computer)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	img, err := findImage(p.cfg.Images, req.Image.Name)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	var rep loaderworker.LoadReport
	err = p.call(ctx, func(l *golibvirt.Libvirt) error {
		dom, found, err := lookup(l, m.domain)
		if err != nil {
			return err
		}
		if found && req.Reload != messages.ReloadAlways {
			if t, on := loaded(l, dom); on && t.Image == img.name {
				rep.Detail = fmt.Sprintf("skipped: domain %s already runs %s (loaded by job %s attempt %d)", m.domain, img.name, t.Job, t.Attempt)
				return nil
			}
		}
		if found {
			prog.Event(fmt.Sprintf("destroying domain %s", m.domain))
			if err := remove(l, dom); err != nil {
				return err
			}
		}
		dir := paths{dir: filepath.Join(p.cfg.StateDir, m.domain)}
		prog.Event(fmt.Sprintf("new overlay on %s for %s", img.disk, m.domain))
		if err := p.overlay(ctx, dir, img); err != nil {
			return err
		}
		spec := newSpec(p.cfg.DomainType, m, img, dir, p.cfg.AuthorizedKeys, tag{Image: img.name, Job: req.JobID, Attempt: req.Attempt})
		xmlDef, err := spec.render()
		if err != nil {
			return err
		}
		if dom, err = l.DomainDefineXML(xmlDef); err != nil {
			return fmt.Errorf("defining domain %s: %w", m.domain, err)
		}
		prog.Event(fmt.Sprintf("starting domain %s (%d MiB, %d vCPU, %s)", m.domain, m.memory, m.vcpus, p.cfg.DomainType))
		if err := l.DomainCreate(dom); err != nil {
			return fmt.Errorf("starting domain %s: %w", m.domain, err)
		}
		rep = loaderworker.LoadReport{Reloaded: true, Detail: fmt.Sprintf("loaded %s on domain %s (overlay on %s) and started it", img.name, m.domain, img.disk)}
		return nil
	})
	return rep, err
}

// lookup finds a domain by name; found is false when there is none.
func lookup(l *golibvirt.Libvirt, name string) (golibvirt.Domain, bool, error) {
	dom, err := l.DomainLookupByName(name)
	if libvirtd.IsNoDomain(err) {
		return dom, false, nil
	}
	if err != nil {
		return dom, false, fmt.Errorf("looking up domain %s: %w", name, err)
	}
	return dom, true, nil
}

// loaded reads a domain's tag; on is true when it runs and has one.
func loaded(l *golibvirt.Libvirt, dom golibvirt.Domain) (tag, bool) {
	if running, err := isOn(l, dom); err != nil || !running {
		return tag{}, false
	}
	s, err := l.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{MetadataNS}, golibvirt.DomainAffectCurrent)
	if err != nil {
		return tag{}, false
	}
	t, err := parseTag(s)
	return t, err == nil && t.Image != ""
}

// isOn reports whether a domain is running (or paused, or shutting down).
func isOn(l *golibvirt.Libvirt, dom golibvirt.Domain) (bool, error) {
	st, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return false, fmt.Errorf("reading the state of domain %s: %w", dom.Name, err)
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainShutoff, golibvirt.DomainCrashed, golibvirt.DomainNostate:
		return false, nil
	}
	return true, nil
}

// remove destroys (hard power-off) and undefines a domain.
func remove(l *golibvirt.Libvirt, dom golibvirt.Domain) error {
	on, err := isOn(l, dom)
	if err != nil {
		return err
	}
	if on {
		if err := l.DomainDestroy(dom); err != nil && libvirtd.Code(err) != golibvirt.ErrOperationInvalid {
			return fmt.Errorf("destroying domain %s: %w", dom.Name, err)
		}
	}
	flags := golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
		golibvirt.DomainUndefineCheckpointsMetadata | golibvirt.DomainUndefineNvram
	if err := l.DomainUndefineFlags(dom, flags); err != nil && !libvirtd.IsNoDomain(err) {
		return fmt.Errorf("undefining domain %s: %w", dom.Name, err)
	}
	return nil
}

// overlay makes the domain's directory and a fresh qcow2 overlay backed by
// the image's base disk.
func (p *Provisioner) overlay(ctx context.Context, dir paths, img image) error {
	if err := os.MkdirAll(dir.dir, 0o755); err != nil {
		return &toolError{tool: "state directory", err: err, fix: "make LOADPOOL_LIBVIRT_STATE_DIR writable by the loader"}
	}
	p.giveToQEMU(dir.dir)
	if err := os.Remove(dir.overlay()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the old overlay: %w", err)
	}
	cmd := exec.CommandContext(ctx, p.cfg.QEMUImg, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img.disk, dir.overlay())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return &toolError{tool: p.cfg.QEMUImg, err: err, fix: "install qemu-utils (apt-get install --no-install-recommends qemu-utils)"}
	case errors.As(err, &ee) && ctx.Err() == nil:
		return &toolError{tool: "qemu-img create", err: fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out))),
			fix: fmt.Sprintf("check the base disk %s of image %s (qemu-img check)", img.disk, img.name)}
	case err != nil:
		return fmt.Errorf("qemu-img create: %w", err)
	}
	return nil
}

// giveToQEMU makes QEMU's user own dir, so that QEMU can write screen
// dumps there. Best effort: without the user (QEMU runs as root, or
// libvirtd is configured otherwise) nothing changes.
func (p *Provisioner) giveToQEMU(dir string) {
	u, err := user.Lookup(p.cfg.QEMUUser)
	if err != nil {
		return
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 == nil && err2 == nil {
		_ = os.Chown(dir, uid, gid)
	}
}
