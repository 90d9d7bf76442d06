package messages

import (
	"bytes"
	"strconv"
	"time"
)

// decodeResultFast decodes the common shape of a step result (a flat
// object of the fields every worker sends: strings without escapes,
// integers, RFC 3339 times, reloaded) without encoding/json's
// reflection: results are half of what a coordinator decodes. ok false
// means "not that shape" (an unknown or nested field, an escape, a
// number or time it does not read, bad JSON): the caller decodes with
// encoding/json, which also words the errors, so the fast path never
// changes what a result means or what a bad one is told.
// TestDecodeResultFastAgrees checks both agree.
func decodeResultFast(data []byte) (r Result, ok bool) {
	p := scan{b: data}
	if !p.byte('{') {
		return r, false
	}
	if p.byte('}') {
		return r, p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return r, false
		}
		switch string(key) {
		case "job_id":
			ok = p.strField(&r.JobID)
		case "step":
			ok = p.strField(&r.Step)
		case "outcome":
			// Outcome's UnmarshalJSON reads null, 1 and 0 too and
			// words the refusal: only a valid name is read here.
			var s []byte
			s, ok = p.str()
			r.Outcome = Outcome(s)
			ok = ok && r.Outcome.Valid()
		case "detail":
			ok = p.strField(&r.Detail)
		case "reason":
			ok = p.strField(&r.Reason)
		case "worker":
			ok = p.strField(&r.Worker)
		case "attempt":
			r.Attempt, ok = p.int()
		case "started":
			r.Started, ok = p.time()
		case "finished":
			r.Finished, ok = p.time()
		case "reloaded":
			var v bool
			if v, ok = p.boolean(); ok {
				r.Reloaded = &v
			}
		default:
			return r, false
		}
		if !ok {
			return r, false
		}
		if p.byte(',') {
			continue
		}
		if p.byte('}') {
			return r, p.end()
		}
		return r, false
	}
}

// scan reads JSON tokens from b, skipping the whitespace between them.
type scan struct {
	b []byte
	i int
}

func (p *scan) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c when it is the next token.
func (p *scan) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *scan) end() bool {
	p.space()
	return p.i == len(p.b)
}

// str reads a string without escapes or control characters, and only
// ASCII (encoding/json replaces invalid UTF-8; this path leaves that to it).
func (p *scan) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	j := bytes.IndexByte(p.b[p.i:], '"')
	if j < 0 {
		return nil, false
	}
	s := p.b[p.i : p.i+j]
	for _, c := range s {
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return nil, false
		}
	}
	p.i += j + 1
	return s, true
}

// strField reads a string into *dst; null leaves it as it is (as
// encoding/json does).
func (p *scan) strField(dst *string) bool {
	if p.null() {
		return true
	}
	s, ok := p.str()
	if ok {
		*dst = string(s)
	}
	return ok
}

func (p *scan) null() bool {
	p.space()
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return true
	}
	return false
}

func (p *scan) int() (int, bool) {
	p.space()
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	if j < len(p.b) && (p.b[j] == '.' || p.b[j] == 'e' || p.b[j] == 'E') {
		return 0, false
	}
	v, err := strconv.Atoi(string(p.b[p.i:j]))
	if err != nil || (p.b[p.i] == '0' && j-p.i > 1) || (p.b[p.i] == '-' && j-p.i > 2 && p.b[p.i+1] == '0') {
		return 0, false
	}
	p.i = j
	return v, true
}

func (p *scan) boolean() (bool, bool) {
	p.space()
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, true
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, true
	}
	return false, false
}

// time reads an RFC 3339 time as time.Time's UnmarshalJSON does (a
// string its strict parser takes: anything else goes to encoding/json).
func (p *scan) time() (time.Time, bool) {
	s, ok := p.str()
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	if err := t.UnmarshalJSON(p.b[p.i-len(s)-2 : p.i]); err != nil {
		return time.Time{}, false
	}
	return t, true
}
