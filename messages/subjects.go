package messages

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the subject prefix when none is configured.
const DefaultPrefix = "vcl"

// MaxBodyBytes is the largest body any loadpool subject accepts.
const MaxBodyBytes = 64 * 1024

// Step names.
const (
	StepLoad     = "load"
	StepPostload = "postload"
)

// Subjects builds every subject, stream, consumer and bucket name from one
// prefix, so that several loadpool installations can share a NATS account.
type Subjects struct {
	Prefix string
}

// NewSubjects validates prefix (a subject token) and returns its Subjects.
func NewSubjects(prefix string) (Subjects, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := ValidToken("prefix", prefix); err != nil {
		return Subjects{}, err
	}
	return Subjects{Prefix: prefix}, nil
}

func (s Subjects) p() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

func (s Subjects) upper() string { return strings.ToUpper(s.p()) }

// Client-facing request/reply subjects of the coordinator micro service.
func (s Subjects) JobSubmit() string { return s.p() + ".job.submit" }
func (s Subjects) JobGet() string    { return s.p() + ".job.get" }
func (s Subjects) JobList() string   { return s.p() + ".job.list" }
func (s Subjects) JobCancel() string { return s.p() + ".job.cancel" }

// JobGroup is the micro endpoint group ("vcl.job").
func (s Subjects) JobGroup() string { return s.p() + ".job" }

// LoadRequest is the subject of load requests for one provisioner.
func (s Subjects) LoadRequest(provisioner string) string {
	return s.p() + ".load.request." + provisioner
}

// PostloadRequest is the subject of post-load requests for one OS family.
func (s Subjects) PostloadRequest(family string) string {
	return s.p() + ".postload.request." + family
}

// Request is the request subject of step for pool (a provisioner or family).
func (s Subjects) Request(step, pool string) string {
	if step == StepPostload {
		return s.PostloadRequest(pool)
	}
	return s.LoadRequest(pool)
}

// LoadResult and PostloadResult are where workers publish results.
func (s Subjects) LoadResult() string     { return s.p() + ".load.result" }
func (s Subjects) PostloadResult() string { return s.p() + ".postload.result" }

// Result is the result subject of step.
func (s Subjects) Result(step string) string {
	if step == StepPostload {
		return s.PostloadResult()
	}
	return s.LoadResult()
}

// Event is the subject of a job's events; Events matches all of them.
func (s Subjects) Event(jobID string) string { return s.p() + ".event." + jobID }
func (s Subjects) Events() string            { return s.p() + ".event.>" }

// Power is the power endpoint of a provisioner's loader workers.
func (s Subjects) Power(provisioner string) string { return s.p() + ".power." + provisioner }

// Abort tells workers to stop work on a job; AbortAll matches every job.
func (s Subjects) Abort(jobID string) string { return s.p() + ".abort." + jobID }
func (s Subjects) AbortAll() string          { return s.p() + ".abort.*" }

// Stream names.
func (s Subjects) LoadStream() string     { return s.upper() + "_LOAD" }
func (s Subjects) PostloadStream() string { return s.upper() + "_POSTLOAD" }
func (s Subjects) ResultStream() string   { return s.upper() + "_RESULTS" }
func (s Subjects) EventStream() string    { return s.upper() + "_EVENTS" }

// RequestStream is the stream that holds step's requests.
func (s Subjects) RequestStream(step string) string {
	if step == StepPostload {
		return s.PostloadStream()
	}
	return s.LoadStream()
}

// Consumer names: loader-<provisioner>, os-<family>, and the coordinators'
// shared result consumer.
func (s Subjects) LoaderConsumer(provisioner string) string { return "loader-" + provisioner }
func (s Subjects) OSConsumer(family string) string          { return "os-" + family }
func (s Subjects) ResultConsumer() string                   { return "coordinator" }

// Consumer is the durable consumer name of step's pool.
func (s Subjects) Consumer(step, pool string) string {
	if step == StepPostload {
		return s.OSConsumer(pool)
	}
	return s.LoaderConsumer(pool)
}

// KV bucket names.
func (s Subjects) JobsBucket() string { return s.p() + "_jobs" }

// EvidenceBucket is the object store of evidence saved when a wait ran
// out (screenshots, serial console logs), under <job>/<attempt>/<name>.
func (s Subjects) EvidenceBucket() string { return s.p() + "_evidence" }

// DurationsBucket keeps the durations of past steps per (image, computer
// type, step): the ETA of events and the learned timeouts.
func (s Subjects) DurationsBucket() string { return s.p() + "_durations" }

// Subject tokens, job ids and names: 1 to max bytes, the first a letter,
// a digit or '_' (no name starts with '-': it could pass for an option
// where a command names it), the others also '-' (and '.' in names).
// Checked by hand, not with a regexp: every submit and result checks
// several (a regexp was 1.4% of the coordinator's CPU).
func isToken(v string) bool { return plain(v, 64, "-") }
func isID(v string) bool    { return plain(v, 128, "-") }
func isName(v string) bool  { return plain(v, 253, "-.") }

// plain: v is 1 to max bytes of letters, digits and '_', and after the
// first also the bytes of more.
func plain(v string, max int, more string) bool {
	if v == "" || len(v) > max {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch b := v[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_':
		case i > 0 && strings.IndexByte(more, b) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidToken checks that v can be one subject token (a provisioner, an OS
// family, a prefix): letters, digits, '-' and '_', 1 to 64 characters.
func ValidToken(field, v string) error {
	if strings.HasPrefix(v, "-") {
		return leadingDash(field, v)
	}
	if !isToken(v) {
		return fieldErr(field, "must be 1-64 letters, digits, '-' or '_' (it becomes a NATS subject token), not %q", truncate(v, 70))
	}
	return nil
}

// ValidJobID checks a job id: letters, digits, '-' and '_', 1 to 128.
func ValidJobID(field, v string) error {
	if strings.HasPrefix(v, "-") {
		return leadingDash(field, v)
	}
	if !isID(v) {
		return fieldErr(field, "must be 1-128 letters, digits, '-' or '_', not %q", truncate(v, 140))
	}
	return nil
}

// ValidComputerName checks a computer name: a host name, dots allowed.
func ValidComputerName(field, v string) error {
	if strings.HasPrefix(v, "-") {
		return leadingDash(field, v)
	}
	if !isName(v) || strings.HasPrefix(v, ".") || strings.HasSuffix(v, ".") {
		return fieldErr(field, "must be a host name of letters, digits, '.', '-' or '_' (1-253 characters, no leading or trailing dot), not %q", truncate(v, 260))
	}
	return nil
}

func leadingDash(field, v string) error {
	return fieldErr(field, "must not start with '-' (it could pass for an option in a command), not %q", truncate(v, 70))
}

// FieldError names the field of a body that is wrong and says what to fix.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Status is the status endpoint of a worker pool (step "load" or
// "postload", pool a provisioner or OS family).
func (s Subjects) Status(step, pool string) string { return s.p() + ".status." + step + "." + pool }

// Operator endpoints of the lab inventory (micro service
// loadpool-coordinator, group "<prefix>.computer").
func (s Subjects) ComputerGroup() string   { return s.p() + ".computer" }
func (s Subjects) ComputerAdd() string     { return s.p() + ".computer.add" }
func (s Subjects) ComputerGet() string     { return s.p() + ".computer.get" }
func (s Subjects) ComputerList() string    { return s.p() + ".computer.list" }
func (s Subjects) ComputerSet() string     { return s.p() + ".computer.set" }
func (s Subjects) ComputerRemove() string  { return s.p() + ".computer.remove" }
func (s Subjects) ComputerDrain() string   { return s.p() + ".computer.drain" }
func (s Subjects) ComputerUndrain() string { return s.p() + ".computer.undrain" }
func (s Subjects) ComputerRelease() string { return s.p() + ".computer.release" }

// ComputerEvent is where a computer's state changes are published (inside
// the events stream, beside the jobs' events).
func (s Subjects) ComputerEvent(name string) string { return s.p() + ".event.computer." + name }

// InventoryBucket is the KV bucket of the enrolled computers.
func (s Subjects) InventoryBucket() string { return s.p() + "_inventory" }
