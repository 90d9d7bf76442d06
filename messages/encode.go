package messages

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The hand-written encoders below write exactly what encoding/json writes
// for the messages the coordinator sends on every transition (job records,
// requests, events, enrolments), without reflection: they were 8% of a
// coordinator's CPU at 256 jobs in flight. TestEncodersMatchEncodingJSON
// fills every field of these types with random values and compares the
// bytes with json.Marshal's, so a field added to a type and not here fails
// it. Nested values that are rare on the hot path (wait profiles, raw
// wait-profile overrides) go through json.Marshal.

// encodeFast returns v's encoding when v is one of the hot types.
func encodeFast(v any) ([]byte, bool) {
	switch v := v.(type) {
	case JobRecord:
		return appendJobRecord(make([]byte, 0, 1024), &v), true
	case *JobRecord:
		return appendJobRecord(make([]byte, 0, 1024), v), true
	case Request:
		return appendRequest(make([]byte, 0, 512), &v), true
	case *Request:
		return appendRequest(make([]byte, 0, 512), v), true
	case Event:
		return appendEvent(make([]byte, 0, 256), &v), true
	case *Event:
		return appendEvent(make([]byte, 0, 256), v), true
	case Enrollment:
		return appendEnrollment(make([]byte, 0, 512), &v), true
	case *Enrollment:
		return appendEnrollment(make([]byte, 0, 512), v), true
	case JobSpec:
		return appendJobSpec(make([]byte, 0, 256), &v), true
	case *JobSpec:
		return appendJobSpec(make([]byte, 0, 256), v), true
	case StepStats:
		return appendStepStats(make([]byte, 0, 128), &v), true
	case *StepStats:
		return appendStepStats(make([]byte, 0, 128), v), true
	case ComputerEvent:
		return appendComputerEvent(make([]byte, 0, 256), &v), true
	case *ComputerEvent:
		return appendComputerEvent(make([]byte, 0, 256), v), true
	}
	return nil, false
}

// obj writes the fields of one JSON object.
type obj struct {
	b    []byte
	more bool
}

func open(b []byte) obj { return obj{b: append(b, '{')} }

func (o *obj) close() []byte { return append(o.b, '}') }

func (o *obj) key(k string) {
	if o.more {
		o.b = append(o.b, ',')
	}
	o.more = true
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *obj) str(k, v string) {
	o.key(k)
	o.b = appendString(o.b, v)
}

func (o *obj) strOmit(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *obj) int(k string, v int) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, int64(v), 10)
}

func (o *obj) intOmit(k string, v int) {
	if v != 0 {
		o.int(k, v)
	}
}

func (o *obj) boolean(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *obj) boolOmit(k string, v bool) {
	if v {
		o.boolean(k, v)
	}
}

func (o *obj) time(k string, t time.Time) {
	o.key(k)
	o.b = appendTime(o.b, t)
}

func (o *obj) timeOmitZero(k string, t time.Time) {
	if !t.IsZero() {
		o.time(k, t)
	}
}

// other writes v with encoding/json.
func (o *obj) other(k string, v any) {
	o.key(k)
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte("null") // never: these types marshal
	}
	o.b = append(o.b, b...)
}

func (o *obj) strings(k string, v []string) {
	o.key(k)
	o.b = append(o.b, '[')
	for i, s := range v {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendString(o.b, s)
	}
	o.b = append(o.b, ']')
}

// appendTime is time.Time's MarshalJSON (RFC 3339 with nanoseconds);
// a year outside 0–9999, which MarshalJSON refuses, is written as
// AppendFormat writes it instead of failing the whole message.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendComputerFields(o *obj, c *Computer) {
	o.str("name", c.Name)
	o.str("provisioner", c.Provisioner)
	o.str("type", c.Type)
	o.strOmit("address", c.Address)
	o.strOmit("host_key", c.HostKey)
	if c.LearnedHostKey != nil {
		o.key("learned_host_key")
		o.b = appendLearnedHostKey(o.b, c.LearnedHostKey)
	}
	o.strOmit("control", c.Control)
	if len(c.Attributes) > 0 {
		o.key("attributes")
		keys := make([]string, 0, len(c.Attributes))
		for k := range c.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		o.b = append(o.b, '{')
		for i, k := range keys {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendString(o.b, k)
			o.b = append(o.b, ':')
			o.b = appendString(o.b, c.Attributes[k])
		}
		o.b = append(o.b, '}')
	}
}

func appendComputer(b []byte, c *Computer) []byte {
	o := open(b)
	appendComputerFields(&o, c)
	return o.close()
}

func appendLearnedHostKey(b []byte, k *LearnedHostKey) []byte {
	o := open(b)
	o.str("key", k.Key)
	o.str("job_id", k.JobID)
	o.int("attempt", k.Attempt)
	o.time("recorded", k.Recorded)
	return o.close()
}

func appendImage(b []byte, im *Image) []byte {
	o := open(b)
	o.str("name", im.Name)
	o.str("os_family", im.OSFamily)
	o.strOmit("os_version", im.OSVersion)
	o.boolOmit("sysprep", im.Sysprep)
	o.intOmit("reload_minutes", im.ReloadMinutes)
	o.strOmit("strategy", im.Strategy)
	o.strOmit("host_key", im.HostKey)
	if len(im.WaitProfile) > 0 {
		o.other("wait_profile", im.WaitProfile)
	}
	return o.close()
}

func appendJobSpec(b []byte, s *JobSpec) []byte {
	o := open(b)
	o.strOmit("id", s.ID)
	o.key("computer")
	o.b = appendComputer(o.b, &s.Computer)
	o.key("image")
	o.b = appendImage(o.b, &s.Image)
	o.intOmit("max_attempts", s.MaxAttempts)
	o.strOmit("reload", s.Reload)
	return o.close()
}

func appendStepRecord(b []byte, s *StepRecord) []byte {
	o := open(b)
	o.int("attempt", s.Attempt)
	o.str("step", s.Step)
	o.str("outcome", string(s.Outcome))
	o.str("detail", s.Detail)
	o.strOmit("reason", s.Reason)
	o.str("worker", s.Worker)
	o.time("started", s.Started)
	o.time("finished", s.Finished)
	if s.Reloaded != nil {
		o.boolean("reloaded", *s.Reloaded)
	}
	if s.Profile != nil {
		o.other("profile", s.Profile)
	}
	if s.LearnedHostKey != nil {
		o.key("learned_host_key")
		o.b = appendLearnedHostKey(o.b, s.LearnedHostKey)
	}
	if len(s.Evidence) > 0 {
		o.strings("evidence", s.Evidence)
	}
	return o.close()
}

func appendJobRecord(b []byte, r *JobRecord) []byte {
	o := open(b)
	o.str("id", r.ID)
	o.str("state", r.State)
	o.int("attempt", r.Attempt)
	o.int("max_attempts", r.MaxAttempts)
	o.key("spec")
	o.b = appendJobSpec(o.b, &r.Spec)
	o.key("steps")
	if r.Steps == nil {
		o.b = append(o.b, "null"...)
	} else {
		o.b = append(o.b, '[')
		for i := range r.Steps {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendStepRecord(o.b, &r.Steps[i])
		}
		o.b = append(o.b, ']')
	}
	o.str("error", r.Error)
	o.time("created", r.Created)
	o.time("updated", r.Updated)
	o.timeOmitZero("step_deadline", r.StepDeadline)
	o.boolOmit("reloaded", r.Reloaded)
	if r.Enrolled != nil {
		o.key("enrolled")
		o.b = appendComputer(o.b, r.Enrolled)
	}
	o.boolOmit("force_reload", r.ForceReload)
	return o.close()
}

func appendRequest(b []byte, r *Request) []byte {
	o := open(b)
	o.str("job_id", r.JobID)
	o.int("attempt", r.Attempt)
	o.str("step", r.Step)
	o.key("computer")
	o.b = appendComputer(o.b, &r.Computer)
	o.key("image")
	o.b = appendImage(o.b, &r.Image)
	o.str("reload", r.Reload)
	o.boolOmit("reloaded", r.Reloaded)
	o.timeOmitZero("deadline", r.Deadline)
	if r.Learned != nil {
		o.key("learned")
		o.b = appendStepStats(o.b, r.Learned)
	}
	return o.close()
}

func appendEvent(b []byte, e *Event) []byte {
	o := open(b)
	o.str("job_id", e.JobID)
	o.time("time", e.Time)
	o.int("attempt", e.Attempt)
	o.strOmit("step", e.Step)
	o.str("source", e.Source)
	o.str("message", e.Message)
	o.strOmit("state", e.State)
	if e.ETA != nil {
		o.key("eta")
		o.b = appendStepStats(o.b, e.ETA)
	}
	return o.close()
}

func appendStepStats(b []byte, s *StepStats) []byte {
	o := open(b)
	o.int("samples", s.Samples)
	o.str("p50", s.P50.String())
	o.str("p90", s.P90.String())
	o.str("p99", s.P99.String())
	o.timeOmitZero("started", s.Started)
	return o.close()
}

func appendComputerEvent(b []byte, e *ComputerEvent) []byte {
	o := open(b)
	o.str("computer", e.Computer)
	o.time("time", e.Time)
	o.str("state", e.State)
	o.strOmit("job", e.Job)
	o.boolOmit("tainted", e.Tainted)
	o.str("source", e.Source)
	o.str("message", e.Message)
	return o.close()
}

func appendEnrollment(b []byte, e *Enrollment) []byte {
	o := open(b)
	appendComputerFields(&o, &e.Computer)
	o.str("state", e.State)
	o.strOmit("image", e.Image)
	o.strOmit("job", e.Job)
	o.strOmit("job_ended", e.JobEnded)
	o.boolOmit("tainted", e.Tainted)
	o.strOmit("reason", e.Reason)
	o.timeOmitZero("since", e.Since)
	return o.close()
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoding with HTML escaping
// (what json.Marshal does): <, >, & and control characters as \u00XX,
// invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
