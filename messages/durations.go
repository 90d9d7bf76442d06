package messages

import (
	"encoding/base64"
	"slices"
	"time"
)

// StepStats are the durations of past ready steps of one (image, computer
// type, step), as the coordinator learned them: an event's ETA, and what a
// request carries for the OS module's learned timeouts.
type StepStats struct {
	// Samples is how many past steps the figures are of.
	Samples int      `json:"samples"`
	P50     Duration `json:"p50"`
	P90     Duration `json:"p90"`
	P99     Duration `json:"p99"`
	// Started is when the running step began (events only).
	Started time.Time `json:"started,omitzero"`
}

// MaxDurationSamples bounds the samples kept per key (the newest win).
const MaxDurationSamples = 200

// Durations is the value of one key of the durations bucket: the
// newest durations in seconds, oldest first.
type Durations struct {
	Seconds []float64 `json:"seconds"`
}

// Add appends d, dropping the oldest beyond MaxDurationSamples.
func (d *Durations) Add(v time.Duration) {
	d.Seconds = append(d.Seconds, v.Seconds())
	if n := len(d.Seconds) - MaxDurationSamples; n > 0 {
		d.Seconds = slices.Delete(d.Seconds, 0, n)
	}
}

// Stats are the quantiles of the samples (nearest rank); nil with fewer
// than atLeast samples.
func (d Durations) Stats(atLeast int) *StepStats {
	if len(d.Seconds) < max(atLeast, 1) {
		return nil
	}
	s := slices.Clone(d.Seconds)
	slices.Sort(s)
	q := func(p float64) Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return Duration(time.Duration(s[min(max(i, 0), len(s)-1)] * float64(time.Second)))
	}
	return &StepStats{Samples: len(s), P50: q(0.50), P90: q(0.90), P99: q(0.99)}
}

// plainKey: image can be a key as it is (letters, digits and _=-. only).
func plainKey(image string) bool { return image != "" && plain("_"+image, len(image)+1, "=-.") }

// DurationsKey is the key of (image, computer type, step) in the
// durations bucket: <step>.<type>.<image>, the image base64url-encoded
// (with a "b64_" mark) when it holds characters a key cannot.
func DurationsKey(image, computerType, step string) string {
	if !plainKey(image) {
		image = "b64_" + base64.RawURLEncoding.EncodeToString([]byte(image))
	}
	return step + "." + computerType + "." + image
}
