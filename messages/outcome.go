package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Outcome is the tri-state reply of a step.
type Outcome string

// The three outcomes. The zero Outcome ("") means the field was absent.
const (
	// OutcomeReady: the step is done; go on to the next step or finish the job.
	OutcomeReady Outcome = "ready"
	// OutcomeRetry: the step failed; loading the image again may help.
	OutcomeRetry Outcome = "retry"
	// OutcomeFail: the step failed; loading again will not help.
	OutcomeFail Outcome = "fail"
)

// Valid reports whether o is one of the three outcomes.
func (o Outcome) Valid() bool {
	return o == OutcomeReady || o == OutcomeRetry || o == OutcomeFail
}

// UnmarshalJSON accepts "ready", "retry", "fail", and the seed's Perl
// convention: 1 (ready), 0 (retry), null (fail).
func (o *Outcome) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch string(b) {
	case "null":
		*o = OutcomeFail
		return nil
	case "1":
		*o = OutcomeReady
		return nil
	case "0":
		*o = OutcomeRetry
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("outcome must be \"ready\", \"retry\", \"fail\", 1, 0 or null, not %s", truncate(string(b), 40))
	}
	v := Outcome(s)
	if !v.Valid() {
		return fmt.Errorf("outcome must be \"ready\", \"retry\" or \"fail\", not %q", truncate(s, 40))
	}
	*o = v
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
