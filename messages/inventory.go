package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Computer states of the lab inventory (design.md "The lab inventory").
const (
	// ComputerAvailable: free (it may be tainted).
	ComputerAvailable = "available"
	// ComputerReloading: a live job holds it.
	ComputerReloading = "reloading"
	// ComputerInUse: its last job ended ready: handed to a reservation.
	ComputerInUse = "inuse"
	// ComputerMaintenance: drained by an operator; no new job (a live job
	// finishes first).
	ComputerMaintenance = "maintenance"
	// ComputerFailed: its last job failed.
	ComputerFailed = "failed"
)

// ComputerStates lists every computer state.
var ComputerStates = []string{ComputerAvailable, ComputerReloading, ComputerInUse, ComputerMaintenance, ComputerFailed}

// LearnedHostKey is a host key an OS worker saw right after a load that
// reimaged the computer: written into the enrolment by the coordinator and
// checked strictly until the next load that reimages it.
type LearnedHostKey struct {
	// Key is in authorized_keys form ("ssh-ed25519 AAAA...").
	Key      string    `json:"key"`
	JobID    string    `json:"job_id"`
	Attempt  int       `json:"attempt"`
	Recorded time.Time `json:"recorded"`
}

// Enrollment is one computer of the lab inventory: the value of
// <prefix>_inventory/<name>. The embedded Computer is what the operator
// enrolled (and the learned host key); the rest is the lifecycle, kept by
// the coordinator.
type Enrollment struct {
	Computer
	State string `json:"state"`
	// Image is the last image loaded and post-loaded on it ("" unknown).
	Image string `json:"image,omitempty"`
	// Job is the live or last job.
	Job string `json:"job,omitempty"`
	// JobEnded is the state Job ended in once its end is recorded here
	// (ready, failed, canceled); empty while Job holds the computer.
	JobEnded string `json:"job_ended,omitempty"`
	// Tainted: handed to a reservation (or left in an unknown state) since
	// its last reload; the next load always reimages it.
	Tainted bool `json:"tainted,omitempty"`
	// Reason is why it is in maintenance or failed.
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// ComputerAdd is the body of computer.add: one computer, or many under
// "computers".
type ComputerAdd struct {
	Computers []Computer `json:"computers"`
}

// DecodeComputerAdd decodes computer.add's body, either form, strictly.
func DecodeComputerAdd(data []byte) ([]Computer, error) {
	var probe map[string]json.RawMessage
	if err := Decode(data, &probe, false); err != nil {
		return nil, err
	}
	if _, bulk := probe["computers"]; bulk {
		var b ComputerAdd
		if err := Decode(data, &b, true); err != nil {
			return nil, err
		}
		if len(b.Computers) == 0 {
			return nil, fieldErr("computers", "is empty: give at least one computer")
		}
		return b.Computers, nil
	}
	var c Computer
	if err := Decode(data, &c, true); err != nil {
		return nil, err
	}
	return []Computer{c}, nil
}

// AddReply is the reply of a bulk computer.add.
type AddReply struct {
	Added     int `json:"added"`
	Unchanged int `json:"unchanged"`
}

// ComputerRequest is the body of computer.get, remove, drain, undrain and
// release.
type ComputerRequest struct {
	Name string `json:"name"`
	// Reason (drain) says why the computer is taken out of service.
	Reason string `json:"reason,omitempty"`
	// Used (release, required): whether the reservation used the
	// computer; false clears the taint, so the next job may skip the
	// reload.
	Used *bool `json:"used,omitempty"`
}

// ComputerSet is the body of computer.set: the fields given replace the
// enrolment's (attributes as a whole); the lifecycle is the
// coordinator's.
type ComputerSet struct {
	Name        string             `json:"name"`
	Provisioner *string            `json:"provisioner,omitempty"`
	Type        *string            `json:"type,omitempty"`
	Address     *string            `json:"address,omitempty"`
	HostKey     *string            `json:"host_key,omitempty"`
	Control     *string            `json:"control,omitempty"`
	Attributes  *map[string]string `json:"attributes,omitempty"`
}

// Apply lays the set's fields over c.
func (s ComputerSet) Apply(c Computer) Computer {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.Provisioner, s.Provisioner)
	set(&c.Type, s.Type)
	set(&c.Address, s.Address)
	set(&c.Control, s.Control)
	if s.HostKey != nil {
		c.HostKey = *s.HostKey
		c.LearnedHostKey = nil // an operator's key (or none: learn again) replaces what was learned
	}
	if s.Attributes != nil {
		c.Attributes = *s.Attributes
	}
	return c
}

// ComputerListRequest is the body of computer.list; empty lists the first
// DefaultComputerPage computers by name.
type ComputerListRequest struct {
	State       string `json:"state,omitempty"`
	Provisioner string `json:"provisioner,omitempty"`
	Limit       int    `json:"limit,omitempty"`
	// After continues a listing: the names after this one.
	After string `json:"after,omitempty"`
}

// ComputerListReply is computer.list's reply; Next, when set, is the
// After of the next page.
type ComputerListReply struct {
	Computers []Enrollment `json:"computers"`
	Next      string       `json:"next,omitempty"`
}

// ComputerEvent is the body of event.computer.<name>: one change of a
// computer's state.
type ComputerEvent struct {
	Computer string    `json:"computer"`
	Time     time.Time `json:"time"`
	State    string    `json:"state"`
	Job      string    `json:"job,omitempty"`
	Tainted  bool      `json:"tainted,omitempty"`
	Source   string    `json:"source"`
	Message  string    `json:"message"`
}

// Validate checks an enrolment as an operator gives it (the lifecycle
// fields are not the operator's).
func (c *Computer) ValidateEnrollment(prefix string) error {
	if err := c.Validate(prefix); err != nil {
		return err
	}
	if c.LearnedHostKey != nil {
		return fieldErr(prefix+".learned_host_key", "is the coordinator's: enrol with host_key to pin a key")
	}
	if c.HostKey != "" && !strings.HasPrefix(c.HostKey, "ssh-") && !strings.HasPrefix(c.HostKey, "ecdsa-") {
		return fieldErr(prefix+".host_key", "must be an SSH public key in authorized_keys form (\"ssh-ed25519 AAAA...\")")
	}
	return nil
}

// SameEnrollment reports whether two enrolments are the same, ignoring the
// learned host key (the coordinator's).
func SameEnrollment(a, b Computer) bool {
	a.LearnedHostKey, b.LearnedHostKey = nil, nil
	return bytes.Equal(Encode(a), Encode(b))
}

// Differs names the first field given in ref (a job's computer object)
// that is not the enrolment's, or "" when they agree; name must be equal
// already.
func (ref Computer) Differs(enrolled Computer) (field, detail string) {
	str := func(f, got, want string) (string, string) {
		if got != "" && got != want {
			return f, fmt.Sprintf("is %q but %s is enrolled with %q", truncate(got, 80), enrolled.Name, truncate(want, 80))
		}
		return "", ""
	}
	for _, c := range [][3]string{{"provisioner", ref.Provisioner, enrolled.Provisioner}, {"type", ref.Type, enrolled.Type},
		{"address", ref.Address, enrolled.Address}, {"control", ref.Control, enrolled.Control}} {
		if f, d := str(c[0], c[1], c[2]); f != "" {
			return f, d
		}
	}
	if ref.HostKey != "" || ref.LearnedHostKey != nil {
		return "host_key", "cannot be chosen by a job: host keys live in the enrolment (loadpool computer set " + enrolled.Name + " --host-key ...)"
	}
	for k, v := range ref.Attributes {
		if enrolled.Attributes[k] != v {
			return "attributes." + k, fmt.Sprintf("is %q but %s is enrolled with %q", truncate(v, 80), enrolled.Name, truncate(enrolled.Attributes[k], 80))
		}
	}
	return "", ""
}

// ValidComputerState reports whether s is a computer state.
func ValidComputerState(s string) bool { return slices.Contains(ComputerStates, s) }
