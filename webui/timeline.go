package webui

import (
	"math"
	"time"

	"github.com/loadpool/loadpool/messages"
)

// Timeline is a job's history on a time axis, in seconds from the job's
// creation: what the job page draws.
type Timeline struct {
	// Span is the length of the axis: until the job ended, or until now.
	Span float64 `json:"span"`
	Bars []Bar   `json:"bars"`
}

// Bar is one step of one attempt. A running step has Running set and no
// outcome; it ends at the axis's end.
type Bar struct {
	Attempt int     `json:"attempt"`
	Step    string  `json:"step"`
	Outcome string  `json:"outcome,omitempty"`
	Running bool    `json:"running,omitempty"`
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Worker  string  `json:"worker,omitempty"`
	Detail  string  `json:"detail,omitempty"`
	Reason  string  `json:"reason,omitempty"`
	// Budgets (post-load with a profile): the wait profile's budgets from
	// the step's start, drawn behind its bar.
	Budgets []Budget `json:"budgets,omitempty"`
	// Evidence names the evidence objects of the step.
	Evidence []string `json:"evidence,omitempty"`
}

// Budget is one of a wait profile's time budgets, from the step's start.
type Budget struct {
	Name string  `json:"name"`
	End  float64 `json:"end"`
	Text string  `json:"text"`
}

// timeline lays rec out on an axis; now ends the axis of a live job.
func timeline(rec messages.JobRecord, now time.Time) Timeline {
	origin := rec.Created
	at := func(t time.Time) float64 { return math.Max(0, t.Sub(origin).Seconds()) }
	tl := Timeline{Bars: []Bar{}}
	last := origin
	for _, s := range rec.Steps {
		b := Bar{Attempt: s.Attempt, Step: s.Step, Outcome: string(s.Outcome), Start: at(s.Started), End: at(s.Finished),
			Worker: s.Worker, Detail: s.Detail, Reason: s.Reason, Evidence: evidenceOf(s)}
		if s.Profile != nil {
			b.Budgets = budgets(*s.Profile, s.Attempt, b.Start)
		}
		tl.Bars = append(tl.Bars, b)
		tl.Span = math.Max(tl.Span, b.End)
		if s.Finished.After(last) {
			last = s.Finished
		}
	}
	if messages.Terminal(rec.State) {
		tl.Span = math.Max(tl.Span, at(rec.Updated))
		return tl
	}
	tl.Span = math.Max(tl.Span, at(now))
	step := messages.StepLoad
	if rec.State == messages.StatePostloading {
		step = messages.StepPostload
	}
	tl.Bars = append(tl.Bars, Bar{Attempt: max(rec.Attempt, 1), Step: step, Running: true, Start: at(last), End: tl.Span})
	return tl
}

// budgets are the wait for an answer (initial delay + answer timeout,
// scaled for the attempt) and, after it, the wait for readiness.
func budgets(p messages.WaitProfile, attempt int, start float64) []Budget {
	f := 1.0
	if p.AttemptFactor > 1 {
		f = math.Pow(p.AttemptFactor, float64(attempt-1))
	}
	answer := p.InitialDelay.D().Seconds() + p.AnswerTimeout.D().Seconds()*f
	ready := p.ReadyTimeout.D().Seconds() * f
	return []Budget{
		{Name: "answer", End: start + answer, Text: "answer within " + secs(answer) + " (" + p.Name + ")"},
		{Name: "ready", End: start + answer + ready, Text: "ready within " + secs(ready) + " more"},
	}
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
