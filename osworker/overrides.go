package osworker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/loadpool/loadpool/messages"
)

// Overrides are an operator's changes to the built-in profiles, read from
// the JSON file named by LOADPOOL_PROFILES: an array of entries, each
// matching by family, version, type and sysprep (absent: any) and setting
// some profile fields:
//
//	[
//	  {"family": "windows", "version": "7", "sysprep": true,
//	   "set": {"answer_timeout": "45m", "reset_first_from_attempt": 2}},
//	  {"family": "linux", "type": "blade", "set": {"initial_delay": "30s"}}
//	]
//
// Every matching entry applies, in file order (a later one wins a field).
// The zero Overrides changes nothing.
type Overrides struct {
	entries []override
}

type override struct {
	index, line int
	Family      string          `json:"family"`
	Version     string          `json:"version"`
	Type        string          `json:"type"`
	Sysprep     *bool           `json:"sysprep"`
	Set         json.RawMessage `json:"set"`
}

// ParseOverrides reads and checks a profiles file; an error names the
// entry (index and line) and the field.
func ParseOverrides(data []byte) (Overrides, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Overrides{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return Overrides{}, errors.New("profiles file: must be a JSON array of entries ([{\"family\": ..., \"set\": {...}}])")
	}
	var o Overrides
	for i := 0; dec.More(); i++ {
		line := lineAt(data, dec.InputOffset())
		e, err := decodeEntry(dec, i, line)
		if err != nil {
			return Overrides{}, err
		}
		o.entries = append(o.entries, e)
	}
	if _, err := dec.Token(); err != nil {
		return Overrides{}, fmt.Errorf("profiles file: malformed JSON after entry %d: %v", len(o.entries)-1, err)
	}
	return o, nil
}

func decodeEntry(dec *json.Decoder, i, line int) (override, error) {
	where := fmt.Sprintf("profiles file: entry %d (line %d)", i, line)
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return override{}, fmt.Errorf("%s: malformed JSON: %v", where, err)
	}
	e := override{index: i, line: line}
	if err := messages.Decode(raw, &e, true); err != nil {
		return override{}, fmt.Errorf("%s: %v (fields: family, version, type, sysprep, set)", where, err)
	}
	if err := e.check(); err != nil {
		return override{}, fmt.Errorf("%s: %w", where, err)
	}
	return e, nil
}

func (e *override) check() error {
	if e.Family == "" {
		return &messages.FieldError{Field: "family", Msg: "is required (windows, linux, ...)"}
	}
	switch e.Type {
	case "", messages.TypeVirtualMachine, messages.TypeBlade, messages.TypeLab:
	default:
		return &messages.FieldError{Field: "type", Msg: fmt.Sprintf("must be %q, %q, %q or absent, not %q",
			messages.TypeVirtualMachine, messages.TypeBlade, messages.TypeLab, e.Type)}
	}
	if len(e.Set) == 0 {
		return &messages.FieldError{Field: "set", Msg: "is required: the profile fields to change"}
	}
	if _, err := messages.DecodeProfileOverride(e.Set, checkBase); err != nil {
		return prefixField("set", err)
	}
	return nil
}

func prefixField(prefix string, err error) error {
	var fe *messages.FieldError
	if errors.As(err, &fe) {
		return &messages.FieldError{Field: prefix + "." + fe.Field, Msg: fe.Msg}
	}
	return fmt.Errorf("%s: %v", prefix, err)
}

func (e *override) matches(img messages.Image, computerType string) bool {
	return strings.EqualFold(e.Family, img.OSFamily) &&
		(e.Version == "" || strings.EqualFold(e.Version, img.OSVersion)) &&
		(e.Type == "" || e.Type == computerType) &&
		(e.Sysprep == nil || *e.Sysprep == img.Sysprep)
}

// Apply lays every matching entry over p, in order.
func (o Overrides) Apply(p messages.WaitProfile, img messages.Image, computerType string) (messages.WaitProfile, error) {
	for _, e := range o.entries {
		if !e.matches(img, computerType) {
			continue
		}
		np, err := messages.DecodeProfileOverride(e.Set, p)
		if err != nil {
			return p, fmt.Errorf("profiles file: entry %d (line %d): %w", e.index, e.line, prefixField("set", err))
		}
		p = np
	}
	return p, nil
}

// Len is the number of entries.
func (o Overrides) Len() int { return len(o.entries) }

func lineAt(data []byte, off int64) int {
	n := 1 + bytes.Count(data[:off], []byte{'\n'})
	// InputOffset points before the separating comma and blanks.
	rest := data[off:]
	for _, c := range rest {
		switch c {
		case '\n':
			n++
		case ' ', '\t', '\r', ',':
		default:
			return n
		}
	}
	return n
}
