package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrTooLarge is returned for a body over MaxBodyBytes.
var ErrTooLarge = fmt.Errorf("body is larger than %d bytes", MaxBodyBytes)

// Decode reads one JSON object from data into v. strict rejects unknown
// fields (use it for what people type: job specs); lenient decoding lets
// newer peers add fields.
func Decode(data []byte, v any, strict bool) error {
	if len(data) > MaxBodyBytes {
		return fmt.Errorf("%w (got %d): send a smaller body", ErrTooLarge, len(data))
	}
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return errors.New("body is empty: send a JSON object")
	}
	if t[0] != '{' {
		return fmt.Errorf("body is not a JSON object (starts with %q)", truncate(string(t), 20))
	}
	if !strict {
		// One pass over the bytes, no decoder and its buffer to allocate
		// (results and events: every job has several).
		if err := json.Unmarshal(t, v); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) && strings.Contains(syn.Error(), "after top-level value") {
				return errors.New("malformed JSON: more than one value in the body")
			}
			return fmt.Errorf("malformed JSON: %s", cleanJSONErr(err))
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %s", cleanJSONErr(err))
	}
	if dec.More() {
		return errors.New("malformed JSON: more than one value in the body")
	}
	return nil
}

func cleanJSONErr(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		f := ute.Field
		if f == "" {
			f = "body"
		}
		return fmt.Sprintf("field %s must be %s, not a JSON %s", f, jsonKind(ute.Type.Kind().String()), ute.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	}
	return k
}

// jobSpecWire is job.submit's body as sent: computer is a name or an
// object.
type jobSpecWire struct {
	ID          string          `json:"id,omitempty"`
	Computer    json.RawMessage `json:"computer"`
	Image       Image           `json:"image"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
	Reload      string          `json:"reload,omitempty"`
}

// DecodeJobSpec decodes, normalizes and validates a job.submit body;
// "computer" is an enrolled computer's name or an object with its name.
func DecodeJobSpec(data []byte) (JobSpec, error) {
	var w jobSpecWire
	if err := Decode(data, &w, true); err != nil {
		return JobSpec{}, err
	}
	s := JobSpec{ID: w.ID, Image: w.Image, MaxAttempts: w.MaxAttempts, Reload: w.Reload}
	switch c := bytes.TrimSpace(w.Computer); {
	case len(c) == 0 || string(c) == "null":
	case c[0] == '"':
		if err := json.Unmarshal(c, &s.Computer.Name); err != nil {
			return JobSpec{}, fieldErr("computer", "must be a computer's name or an object with its name")
		}
	default:
		if err := Decode(c, &s.Computer, true); err != nil {
			return JobSpec{}, fieldErr("computer", "%v", err)
		}
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return JobSpec{}, err
	}
	return s, nil
}

// DecodeRequest decodes and validates a worker request.
func DecodeRequest(data []byte) (Request, error) {
	var r Request
	if err := Decode(data, &r, false); err != nil {
		return Request{}, err
	}
	return r, r.Validate()
}

// DecodeResult decodes a step result. A result with no outcome field is
// malformed: it comes back with OutcomeFail, a detail that says so, and a
// non-nil error, so that the caller can record it and log it. A result
// whose job_id, attempt or step is unusable is an error with a zero Result.
func DecodeResult(data []byte) (Result, error) {
	var r Result
	ok := false
	if len(data) <= MaxBodyBytes {
		r, ok = decodeResultFast(data)
	}
	if !ok {
		r = Result{}
		if err := Decode(data, &r, false); err != nil {
			return Result{}, err
		}
	}
	if err := ValidJobID("job_id", r.JobID); err != nil {
		return Result{}, err
	}
	if r.Attempt < 1 {
		return Result{}, fieldErr("attempt", "must be 1 or more, not %d", r.Attempt)
	}
	if r.Step != StepLoad && r.Step != StepPostload {
		return Result{}, fieldErr("step", "must be %q or %q, not %q", StepLoad, StepPostload, truncate(r.Step, 40))
	}
	if r.Outcome == "" {
		r.Outcome = OutcomeFail
		r.Reason = "malformed"
		r.Detail = "malformed result from worker " + truncate(r.Worker, 80) + ": no outcome field (" + truncate(r.Detail, 200) + ")"
		return r, fieldErr("outcome", "is missing: the result is treated as fail")
	}
	return r, nil
}

// Encode marshals v; it panics never: every contract type marshals.
func Encode(v any) []byte {
	if b, ok := encodeFast(v); ok {
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("messages: cannot encode %T: %v", v, err))
	}
	return b
}
