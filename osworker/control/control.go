package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/loadpool/loadpool/outcome"
)

// Output is what a command printed and its exit status.
type Output struct {
	Stdout, Stderr []byte
	// Exit is the exit status; -1 when the command ended without one
	// (killed by a signal, or the channel closed early).
	Exit int
}

// OK reports whether the command exited with status 0.
func (o Output) OK() bool { return o.Exit == 0 }

// Conn runs commands on one computer. It is safe for concurrent use.
type Conn interface {
	// Run runs cmd (a shell command line) and waits for it. A non-zero
	// exit is reported in Output.Exit, not as an error.
	Run(ctx context.Context, cmd string) (Output, error)
	Close() error
}

// Dialer opens a Conn to a computer.
type Dialer interface {
	Dial(ctx context.Context, t Target) (Conn, error)
}

// Target is the computer to reach and how to trust it.
type Target struct {
	// Address is host:port.
	Address string
	// Computer is the computer's name.
	Computer string
	HostKey  HostKeyPolicy
	// Control is the enrolment's control method ("" or "ssh", "qga"):
	// Methods picks the dialer by it.
	Control string
	// Attributes are the enrolment's provisioner attributes (the qga
	// dialer reads the libvirt domain name from them).
	Attributes map[string]string
}

// HostKeyPolicy says which host key to accept, first rule that applies:
//  1. Pinned set (the operator's key, enrolled): only that key, always.
//  2. Learned set (the key learned after the last load that reimaged the
//     computer, kept in its enrolment) and this attempt did not reimage
//     it (Reloaded false): only that key.
//  3. Otherwise (a reload window, or no key known at all): the first key
//     this step sees is learned into Step, and every later dial of the
//     step accepts only that key.
//
// A key other than the expected one is a *HostKeyMismatchError.
type HostKeyPolicy struct {
	// Pinned is the enrolment's host_key in authorized_keys form.
	Pinned string
	// Learned is the enrolment's learned host key (nil: none).
	Learned *HostKeyRecord
	// JobID and Attempt identify the step; Reloaded says that this
	// attempt's load reimaged the computer (a new host key is expected).
	JobID    string
	Attempt  int
	Reloaded bool
	// Step is this step's memory of the key it learned (rule 3): one
	// store per step, read back by the runtime for the step's result.
	// Nil: the step cannot learn, so rule 3 refuses to dial.
	Step HostKeyStore
}

// ErrNotAnswering wraps every error that means "the computer does not
// answer yet": refused, timed out, closed during the handshake. A wait
// loop keeps polling on it.
var ErrNotAnswering = errors.New("computer is not answering yet")

// ErrAuth wraps an authentication refusal (always Permanent too).
var ErrAuth = outcome.WithReason(errors.New("SSH authentication refused"), outcome.ReasonAuth)

// HostKeyMismatchError is a host key that is not the one expected. It is
// always returned wrapped with outcome.Permanent.
type HostKeyMismatchError struct {
	Computer string
	// Want and Got are SHA256 fingerprints ("SHA256:...").
	Want, Got string
	// Source says where Want came from: "pinned at enrolment", "learned
	// by job J attempt N at T" or "learned earlier in this step by ...".
	Source string
}

// Reason is the result's machine reason.
func (e *HostKeyMismatchError) Reason() string { return "host-key-mismatch" }

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("host key of computer %s changed: got %s, want %s (%s); "+
		"if the computer was legitimately reimaged outside loadpool, load it again with reload always so that its new key is learned "+
		"(or enrol the new key with vcl.computer.set host_key), else investigate",
		e.Computer, e.Got, e.Want, e.Source)
}
