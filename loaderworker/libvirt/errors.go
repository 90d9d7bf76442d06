package libvirt

import (
	"errors"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/loadpool/loadpool/libvirtd"
	"github.com/loadpool/loadpool/outcome"
)

// classify decides, in this one place, what an error of a load or a power
// action means: wrapped with outcome.Permanent (fail, with a sentence
// that says what to fix) when trying again cannot help — no such image, a
// bad enrolment attribute, a missing tool, a definition libvirt refuses —
// or returned as is (retry): libvirtd unreachable, a busy domain (its
// state change lock), a guest that failed to start, a deadline.
func classify(err error, uri string) error {
	if err == nil {
		return nil
	}
	var mine interface{ mine() }
	if errors.As(err, &mine) {
		return outcome.Permanent(err)
	}
	switch libvirtd.Code(err) {
	case golibvirt.ErrXMLError, golibvirt.ErrXMLDetail, golibvirt.ErrConfigUnsupported, golibvirt.ErrNoSupport, golibvirt.ErrXMLInvalidSchema:
		return outcome.Permanent(outcome.WithReason(fmt.Errorf("libvirtd at %s refused the domain definition (%w): check LOADPOOL_LIBVIRT_DOMAIN_TYPE (kvm needs a working /dev/kvm; qemu emulates) and the computer's attributes", uri, err), outcome.ReasonConfig))
	case golibvirt.ErrOperationTimeout:
		return outcome.WithReason(fmt.Errorf("the domain is busy (%w): another operation holds it; trying again may help", err), outcome.ReasonTransient)
	}
	var un *libvirtd.UnreachableError
	if errors.As(err, &un) {
		return outcome.WithReason(err, outcome.ReasonTransient)
	}
	return err
}

// toolError: a host tool the provisioner runs is missing or broken.
type toolError struct {
	tool, fix string
	err       error
}

func (e *toolError) Error() string  { return fmt.Sprintf("%s: %v: %s", e.tool, e.err, e.fix) }
func (e *toolError) Unwrap() error  { return e.err }
func (e *toolError) mine()          {}
func (e *toolError) Reason() string { return outcome.ReasonConfig }

// noDomainError: a power action for a computer that has no domain.
type noDomainError struct{ computer, domain string }

func (e *noDomainError) Error() string {
	return fmt.Sprintf("computer %s has no libvirt domain %q: load an image onto it first, or fix its %q attribute", e.computer, e.domain, AttrDomain)
}
func (e *noDomainError) mine()          {}
func (e *noDomainError) Reason() string { return outcome.ReasonNotFound }
