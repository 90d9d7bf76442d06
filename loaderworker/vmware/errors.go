package vmware

import (
	"errors"
	"fmt"

	"github.com/loadpool/loadpool/outcome"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// classify decides, in this one place, what an error of a load, a power
// action or a connect means: wrapped with outcome.Permanent (the step
// answers fail, with a sentence that says what to fix) when trying again
// cannot help, or returned as is (retry) when it may: network errors,
// task failures, busy hosts, InvalidState races, transient faults, a
// deadline.
func classify(err error, user string) error {
	if err == nil {
		return nil
	}
	if sentence, reason := explain(err, user); sentence != "" {
		return outcome.Permanent(outcome.WithReason(&explained{sentence: sentence, err: err}, reason))
	}
	return err
}

// Machine reasons of vmware's permanent failures besides outcome's.
const (
	ReasonTLS         = "tls-untrusted"
	ReasonNoPrivilege = "no-privilege"
)

// explain returns the sentence and machine reason of a permanent error, or
// "" for one that may go away.
func explain(err error, user string) (sentence, reason string) {
	var nf *notFoundError
	var cfg *configError
	var bad *badInputError
	var np *types.NoPermission
	switch {
	case errors.As(err, &nf):
		return nf.Error(), outcome.ReasonNotFound
	case errors.As(err, &cfg):
		return cfg.Error(), outcome.ReasonConfig
	case errors.As(err, &bad):
		return bad.Error(), outcome.ReasonBadRequest
	case fault.Is(err, &types.InvalidLogin{}):
		return fmt.Sprintf("vCenter refused the login for user %s: check LOADPOOL_VSPHERE_USER and LOADPOOL_VSPHERE_PASSWORD", user), outcome.ReasonAuth
	case soap.IsCertificateUntrusted(err):
		return "vCenter's TLS certificate is not trusted: install its CA certificate on this host or set LOADPOOL_VSPHERE_INSECURE=true", ReasonTLS
	case asFault(err, &np):
		return fmt.Sprintf("vCenter user %s lacks the privilege %s on %s: grant it to the user's role (or set LOADPOOL_VSPHERE_USER to a user that has it)",
			user, orUnknown(np.PrivilegeId), objectName(np.Object)), ReasonNoPrivilege
	}
	return "", ""
}

func asFault(err error, target **types.NoPermission) bool {
	_, ok := fault.As(err, target)
	return ok && !fault.Is(err, &types.NotAuthenticated{})
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func objectName(ref *types.ManagedObjectReference) string {
	if ref == nil {
		return "the object"
	}
	return ref.String()
}

// explained is a permanent error's sentence with its cause.
type explained struct {
	sentence string
	err      error
}

func (e *explained) Error() string {
	var mine interface{ mine() }
	if errors.As(e.err, &mine) {
		return e.sentence // our own errors are sentences already
	}
	return e.sentence + " (" + e.err.Error() + ")"
}

func (e *explained) Unwrap() error { return e.err }

// notFoundError: what a job names (a template, a snapshot, a VM) does not
// exist in vCenter.
type notFoundError struct {
	what string // "template", "snapshot", "virtual machine"
	name string
	fix  string
	err  error
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("vCenter has no %s named %q: %s", e.what, e.name, e.fix)
}
func (e *notFoundError) Unwrap() error { return e.err }
func (e *notFoundError) mine()         {}

// configError: a configured place (datacenter, folder, pool, datastore) is
// missing or ambiguous.
type configError struct {
	setting string // e.g. "LOADPOOL_VSPHERE_FOLDER"
	value   string
	err     error
}

func (e *configError) Error() string {
	return fmt.Sprintf("vCenter has no single match for %s=%q: fix %s (%v)", e.setting, e.value, e.setting, e.err)
}
func (e *configError) Unwrap() error { return e.err }
func (e *configError) mine()         {}

// loginError: connecting or logging in failed.
type loginError struct {
	url, user string
	err       error
}

func (e *loginError) Error() string {
	return fmt.Sprintf("logging in to %s as %s: %v", e.url, e.user, e.err)
}
func (e *loginError) Unwrap() error { return e.err }

// isFinderMiss reports whether a finder found nothing, or more than one
// thing, where one was expected.
func isFinderMiss(err error) bool {
	var (
		nf  *find.NotFoundError
		mf  *find.MultipleFoundError
		dnf *find.DefaultNotFoundError
		dmf *find.DefaultMultipleFoundError
	)
	return errors.As(err, &nf) || errors.As(err, &mf) || errors.As(err, &dnf) || errors.As(err, &dmf)
}

// badInputError: the job asks for something this provisioner cannot do.
type badInputError struct{ msg string }

func (e *badInputError) Error() string { return e.msg }
func (e *badInputError) mine()         {}
