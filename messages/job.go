package messages

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Computer types.
const (
	TypeVirtualMachine = "virtualmachine"
	TypeBlade          = "blade"
	TypeLab            = "lab"
)

// Reload policies.
const (
	ReloadIfNeeded = "if-needed"
	ReloadAlways   = "always"
)

// Attempt bounds.
const (
	DefaultMaxAttempts = 3
	MaxMaxAttempts     = 10
)

// Computer is the machine a job loads.
type Computer struct {
	Name        string `json:"name"`
	Provisioner string `json:"provisioner"`
	Type        string `json:"type"`
	// Address is host or host:port the OS worker connects to; empty means
	// Name, port 22.
	Address string `json:"address,omitempty"`
	// HostKey is the computer's SSH host key in authorized_keys form
	// ("ssh-ed25519 AAAA..."), pinned by the operator at enrolment and
	// checked strictly. Only the inventory sets it; no job can.
	HostKey string `json:"host_key,omitempty"`
	// LearnedHostKey (when HostKey is empty) is the key seen right after
	// the last load that reimaged the computer, written into the enrolment
	// by the coordinator and checked strictly until the next reimage.
	LearnedHostKey *LearnedHostKey `json:"learned_host_key,omitempty"`
	// Control is how OS workers reach the computer: "ssh" (default) or
	// "qga" (the QEMU guest agent).
	Control string `json:"control,omitempty"`
	// Attributes is provisioner-specific placement (a vSphere inventory
	// path, an xCAT node name, a libvirt domain's memory): strings only.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Control methods.
const (
	ControlSSH = "ssh"
	ControlQGA = "qga"
)

// Image is what a job loads onto the computer.
type Image struct {
	Name          string `json:"name"`
	OSFamily      string `json:"os_family"`
	OSVersion     string `json:"os_version,omitempty"`
	Sysprep       bool   `json:"sysprep,omitempty"`
	ReloadMinutes int    `json:"reload_minutes,omitempty"`
	// Strategy names a provisioner-specific way to load (vmware: "clone" or
	// "snapshot"); empty means the provisioner's configured default.
	Strategy string `json:"strategy,omitempty"`
	// HostKey is no longer accepted (Validate refuses it): host keys live
	// in the enrolment. The field stays so that older records still decode.
	HostKey string `json:"host_key,omitempty"`
	// WaitProfile overrides fields of the OS module's wait profile for this
	// image; absent fields keep the operator's or the built-in value.
	WaitProfile json.RawMessage `json:"wait_profile,omitempty"`
}

// JobSpec is the body of job.submit.
type JobSpec struct {
	ID          string   `json:"id,omitempty"`
	Computer    Computer `json:"computer"`
	Image       Image    `json:"image"`
	MaxAttempts int      `json:"max_attempts,omitempty"`
	Reload      string   `json:"reload,omitempty"`
}

// Normalize fills defaults: max_attempts 3, reload if-needed, type from
// nothing (left for Validate to reject).
func (s *JobSpec) Normalize() {
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.Reload == "" {
		s.Reload = ReloadIfNeeded
	}
}

// Validate checks a normalized spec; the error (Problems) names every
// wrong part: the id, the computer, the image, max_attempts, reload.
func (s *JobSpec) Validate() error {
	var ps Problems
	if s.ID != "" {
		ps.add(ValidJobID("id", s.ID))
	}
	ps.add(s.Computer.ValidateRef("computer"))
	ps.add(s.Image.Validate("image"))
	if s.MaxAttempts < 1 || s.MaxAttempts > MaxMaxAttempts {
		ps.add(fieldErr("max_attempts", "must be between 1 and %d, not %d", MaxMaxAttempts, s.MaxAttempts))
	}
	if s.Reload != ReloadIfNeeded && s.Reload != ReloadAlways {
		ps.add(fieldErr("reload", "must be %q or %q, not %q", ReloadIfNeeded, ReloadAlways, truncate(s.Reload, 40)))
	}
	return ps.err()
}

// Validate checks a computer as workers receive it and operators enrol
// it; prefix names it in errors.
func (c *Computer) Validate(prefix string) error { return c.validate(prefix, true) }

// ValidateRef checks a job's computer: a name, and any other field well
// formed (the coordinator then compares them with the enrolment); it
// cannot carry a host key.
func (c *Computer) ValidateRef(prefix string) error {
	if c.Name != "" && (c.HostKey != "" || c.LearnedHostKey != nil) {
		return fieldErr(prefix+".host_key", "is not accepted: a job cannot choose a host key; host keys live in the enrolment of %s", c.Name)
	}
	return c.validate(prefix, false)
}

// validate checks every field; full requires provisioner and type too.
func (c *Computer) validate(prefix string, full bool) error {
	if c.Name == "" {
		return fieldErr(prefix+".name", "is required (\"computer\": \"vm-017\" or {\"name\": \"vm-017\"})")
	}
	if err := ValidComputerName(prefix+".name", c.Name); err != nil {
		return err
	}
	switch {
	case c.Provisioner == "" && full:
		return fieldErr(prefix+".provisioner", "is required (vmware, xcat, lab, ...)")
	case c.Provisioner != "":
		if err := ValidToken(prefix+".provisioner", c.Provisioner); err != nil {
			return err
		}
	}
	switch c.Type {
	case TypeVirtualMachine, TypeBlade, TypeLab:
	case "":
		if full {
			return fieldErr(prefix+".type", "is required: %q, %q or %q", TypeVirtualMachine, TypeBlade, TypeLab)
		}
	default:
		return fieldErr(prefix+".type", "must be %q, %q or %q, not %q", TypeVirtualMachine, TypeBlade, TypeLab, truncate(c.Type, 40))
	}
	if c.Address != "" {
		if _, _, err := SplitAddress(c.Address); err != nil {
			return fieldErr(prefix+".address", "%v", err)
		}
	}
	if err := validControl(prefix, c.Control); err != nil {
		return err
	}
	return validAttributes(prefix, c.Attributes)
}

func validControl(prefix, v string) error {
	switch v {
	case "", ControlSSH, ControlQGA:
		return nil
	}
	return fieldErr(prefix+".control", "must be %q or %q (or absent: %q), not %q", ControlSSH, ControlQGA, ControlSSH, truncate(v, 40))
}

// Bounds of an enrolment's attributes.
const (
	maxAttributes     = 32
	maxAttributeBytes = 1024
)

func validAttributes(prefix string, attrs map[string]string) error {
	if len(attrs) > maxAttributes {
		return fieldErr(prefix+".attributes", "has %d entries; at most %d", len(attrs), maxAttributes)
	}
	for k, v := range attrs {
		if k == "" || len(k) > 64 || strings.ContainsAny(k, " \t\r\n\x00") {
			return fieldErr(prefix+".attributes", "key %q must be 1 to 64 characters without blanks", truncate(k, 80))
		}
		if len(v) > maxAttributeBytes || strings.ContainsAny(v, "\r\n\x00") {
			return fieldErr(prefix+".attributes."+k, "must be at most %d characters on one line", maxAttributeBytes)
		}
	}
	return nil
}

// SSHAddress is host:port to reach the computer (default port 22).
func (c Computer) SSHAddress() string {
	host, port, err := SplitAddress(c.Address)
	if c.Address == "" || err != nil {
		return net.JoinHostPort(c.Name, "22")
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// SplitAddress parses "host" or "host:port" (IPv6 in brackets).
func SplitAddress(a string) (string, int, error) {
	if strings.ContainsAny(a, " \t\r\n/") {
		return "", 0, fmt.Errorf("must be host or host:port, not %q", truncate(a, 80))
	}
	host, portS, err := net.SplitHostPort(a)
	if err != nil {
		if strings.Count(a, ":") == 0 && a != "" {
			return a, 22, validAddressHost(a, a)
		}
		if ip := net.ParseIP(strings.Trim(a, "[]")); ip != nil {
			return ip.String(), 22, nil // a bare IPv6 address
		}
		return "", 0, fmt.Errorf("must be host or host:port, not %q", truncate(a, 80))
	}
	port, err := strconv.Atoi(portS)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("must be host or host:port with a port from 1 to 65535, not %q", truncate(a, 80))
	}
	if err := validAddressHost(a, host); err != nil {
		return "", 0, err
	}
	return host, port, nil
}

// Validate checks an image; prefix names it in errors.
func (i *Image) Validate(prefix string) error {
	if err := validName(prefix+".name", i.Name, 256); err != nil {
		return err
	}
	if i.OSFamily == "" {
		return fieldErr(prefix+".os_family", "is required (windows, linux, ...)")
	}
	if err := ValidToken(prefix+".os_family", i.OSFamily); err != nil {
		return err
	}
	if len(i.OSVersion) > 64 {
		return fieldErr(prefix+".os_version", "must be at most 64 characters")
	}
	if i.ReloadMinutes < 0 || i.ReloadMinutes > 24*60 {
		return fieldErr(prefix+".reload_minutes", "must be between 0 and 1440, not %d", i.ReloadMinutes)
	}
	if i.Strategy != "" {
		if err := ValidToken(prefix+".strategy", i.Strategy); err != nil {
			return err
		}
	}
	if i.HostKey != "" {
		return fieldErr(prefix+".host_key", "is not accepted: a job cannot choose a host key; host keys live in the computer's enrolment (loadpool computer set NAME --host-key ...)")
	}
	if len(i.WaitProfile) > 0 && string(i.WaitProfile) != "null" {
		p, err := DecodeProfileOverride(i.WaitProfile, WaitProfile{})
		if err != nil {
			return fieldErr(prefix+".wait_profile", "%v", err)
		}
		if err := checkOverrideBounds(prefix+".wait_profile", p); err != nil {
			return err
		}
	}
	return nil
}

// Job states.
const (
	StateQueued      = "queued"
	StateLoading     = "loading"
	StatePostloading = "postloading"
	StateReady       = "ready"
	StateFailed      = "failed"
	StateCanceled    = "canceled"
)

// States lists every state, in lifecycle order.
var States = []string{StateQueued, StateLoading, StatePostloading, StateReady, StateFailed, StateCanceled}

// Terminal reports whether a job in state s has ended.
func Terminal(s string) bool {
	return s == StateReady || s == StateFailed || s == StateCanceled
}

// ValidState reports whether s is a job state.
func ValidState(s string) bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}

// StepRecord is one step's result kept in the job's history.
type StepRecord struct {
	Attempt  int          `json:"attempt"`
	Step     string       `json:"step"`
	Outcome  Outcome      `json:"outcome"`
	Detail   string       `json:"detail"`
	Reason   string       `json:"reason,omitempty"`
	Worker   string       `json:"worker"`
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished"`
	Reloaded *bool        `json:"reloaded,omitempty"`
	Profile  *WaitProfile `json:"profile,omitempty"`
	// LearnedHostKey (post-load): the host key learned in this step.
	LearnedHostKey *LearnedHostKey `json:"learned_host_key,omitempty"`
	// Evidence names the step's objects in the evidence bucket.
	Evidence []string `json:"evidence,omitempty"`
}

// JobRecord is what job.submit, job.get and job.cancel answer, and what the
// vcl_jobs bucket holds.
type JobRecord struct {
	ID          string       `json:"id"`
	State       string       `json:"state"`
	Attempt     int          `json:"attempt"`
	MaxAttempts int          `json:"max_attempts"`
	Spec        JobSpec      `json:"spec"`
	Steps       []StepRecord `json:"steps"`
	Error       string       `json:"error"`
	Created     time.Time    `json:"created"`
	Updated     time.Time    `json:"updated"`
	// StepDeadline is when the coordinator's safety cap ends the running
	// step (zero when no step runs).
	StepDeadline time.Time `json:"step_deadline,omitzero"`
	// Reloaded says whether this attempt's load really reimaged the computer
	// (false when it skipped an already loaded image).
	Reloaded bool `json:"reloaded,omitempty"`
	// Enrolled is the computer as the inventory had it when the job was
	// accepted: what every request of the job carries (never the client's
	// object).
	Enrolled *Computer `json:"enrolled,omitempty"`
	// ForceReload: when the job was accepted the inventory had the
	// computer tainted, or not known to run the job's image after a
	// post-load, so every load of the job says reload "always".
	ForceReload bool `json:"force_reload,omitempty"`
}

// Request is the body of load.request.<provisioner> and
// postload.request.<family>.
type Request struct {
	JobID    string   `json:"job_id"`
	Attempt  int      `json:"attempt"`
	Step     string   `json:"step"`
	Computer Computer `json:"computer"`
	Image    Image    `json:"image"`
	Reload   string   `json:"reload"`
	// Reloaded (post-load only): the load of this attempt really reimaged
	// the computer, so a new SSH host key is expected.
	Reloaded bool `json:"reloaded,omitempty"`
	// Deadline is the coordinator's safety cap for this step.
	Deadline time.Time `json:"deadline,omitzero"`
	// Learned (when the coordinator knows enough past steps of this image,
	// computer type and step) is how long they took: an OS worker with
	// learned timeouts on raises its wait to at least P99 × a margin.
	Learned *StepStats `json:"learned,omitempty"`
}

// Validate checks a request as a worker receives it.
func (r *Request) Validate() error {
	if err := ValidJobID("job_id", r.JobID); err != nil {
		return err
	}
	if r.Attempt < 1 {
		return fieldErr("attempt", "must be 1 or more, not %d", r.Attempt)
	}
	if r.Step != StepLoad && r.Step != StepPostload {
		return fieldErr("step", "must be %q or %q, not %q", StepLoad, StepPostload, truncate(r.Step, 40))
	}
	if err := r.Computer.Validate("computer"); err != nil {
		return err
	}
	return r.Image.Validate("image")
}

// Result is the body of load.result and postload.result.
type Result struct {
	JobID    string    `json:"job_id"`
	Attempt  int       `json:"attempt"`
	Step     string    `json:"step"`
	Outcome  Outcome   `json:"outcome"`
	Detail   string    `json:"detail"`
	Reason   string    `json:"reason,omitempty"`
	Worker   string    `json:"worker"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Reloaded (load only): the computer was really reimaged; false when
	// the load was skipped because the image was already there.
	Reloaded *bool `json:"reloaded,omitempty"`
	// Profile (post-load only): the effective wait profile of the step.
	Profile *WaitProfile `json:"profile,omitempty"`
	// LearnedHostKey (post-load only): the host key the OS worker saw
	// right after a load that reimaged the computer; the coordinator
	// writes it into the enrolment.
	LearnedHostKey *LearnedHostKey `json:"learned_host_key,omitempty"`
	// Evidence (post-load): the names of the objects in the evidence
	// bucket (<prefix>_evidence) saved when a wait ran out, e.g.
	// "res-1042/1/screenshot.png".
	Evidence []string `json:"evidence,omitempty"`
}

// Record turns a result into a history entry.
func (r Result) Record() StepRecord {
	return StepRecord{Attempt: r.Attempt, Step: r.Step, Outcome: r.Outcome, Detail: r.Detail,
		Reason: r.Reason, Worker: r.Worker, Started: r.Started, Finished: r.Finished,
		Reloaded: r.Reloaded, Profile: r.Profile, LearnedHostKey: r.LearnedHostKey, Evidence: r.Evidence}
}

// Event is the body of event.<job_id>: what an operator watches.
type Event struct {
	JobID   string    `json:"job_id"`
	Time    time.Time `json:"time"`
	Attempt int       `json:"attempt"`
	Step    string    `json:"step,omitempty"`
	Source  string    `json:"source"`
	Message string    `json:"message"`
	// State is the job's state once the event happened; empty in a
	// worker's progress event (the job is still in its step).
	State string `json:"state,omitempty"`
	// ETA (coordinator's events of a live job, once enough past steps of
	// the same image, computer type and step are known): how long the
	// running step took before, and when it began.
	ETA *StepStats `json:"eta,omitempty"`
}

// GetRequest is the body of job.get and job.cancel.
type GetRequest struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
}

// ListRequest is the body of job.list; an empty body lists the 100 jobs
// changed last. After is the Next of the page before (empty: from the
// newest).
type ListRequest struct {
	State string `json:"state,omitempty"`
	Limit int    `json:"limit,omitempty"`
	After string `json:"after,omitempty"`
}

// ListReply is the reply of job.list: the jobs, the last changed first.
// Next, when set, continues the listing (a page may hold fewer than the
// limit and still have a next: the scan of one page is bounded).
type ListReply struct {
	Jobs []JobRecord `json:"jobs"`
	Next string      `json:"next,omitempty"`
}

// ErrorBody is the JSON body of every micro error reply.
type ErrorBody struct {
	Error string `json:"error"`
}

// Power actions.
const (
	PowerReset  = "reset"
	PowerOn     = "on"
	PowerOff    = "off"
	PowerStatus = "status"
)

// PowerRequest is the body of power.<provisioner>.
type PowerRequest struct {
	JobID    string   `json:"job_id,omitempty"`
	Attempt  int      `json:"attempt,omitempty"`
	Computer Computer `json:"computer"`
	Action   string   `json:"action"`
	// Evidence asks the provisioner to save what it can of the computer's
	// screen (a console screenshot) and say where in the reply.
	Evidence bool `json:"evidence,omitempty"`
}

// Validate checks a power request.
func (p *PowerRequest) Validate() error {
	if p.JobID != "" {
		if err := ValidJobID("job_id", p.JobID); err != nil {
			return err
		}
	}
	if err := p.Computer.Validate("computer"); err != nil {
		return err
	}
	switch p.Action {
	case PowerReset, PowerOn, PowerOff, PowerStatus:
		return nil
	}
	return fieldErr("action", "must be reset, on, off or status, not %q", truncate(p.Action, 40))
}

// PowerReply is the reply of power.<provisioner>.
type PowerReply struct {
	Computer string `json:"computer"`
	Action   string `json:"action"`
	// State is the power state after the action: "on", "off" or "unknown".
	State    string `json:"state"`
	Detail   string `json:"detail,omitempty"`
	Evidence string `json:"evidence,omitempty"`
	Worker   string `json:"worker,omitempty"`
}

// Abort is the body of abort.<job_id>: workers stop work on the job's
// attempts up to Attempt (0: every attempt).
type Abort struct {
	JobID   string `json:"job_id"`
	Attempt int    `json:"attempt,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// WorkerStatus is the reply of status.<step>.<pool>: one worker process.
type WorkerStatus struct {
	Worker      string `json:"worker"`
	Step        string `json:"step"`
	Pool        string `json:"pool"`
	Running     int    `json:"running"`
	Concurrency int    `json:"concurrency"`
}
