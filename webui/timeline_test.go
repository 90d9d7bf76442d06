package webui

import (
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
)

func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	prof := &messages.WaitProfile{Name: "linux", InitialDelay: messages.Duration(5 * time.Second),
		AnswerTimeout: messages.Duration(60 * time.Second), ReadyTimeout: messages.Duration(30 * time.Second), AttemptFactor: 2}
	steps := []messages.StepRecord{
		{Attempt: 1, Step: "load", Outcome: "ready", Started: at(1), Finished: at(11)},
		{Attempt: 1, Step: "postload", Outcome: "retry", Started: at(12), Finished: at(77), Profile: prof, Evidence: []string{"j/1/screenshot.png"}},
		{Attempt: 2, Step: "load", Outcome: "ready", Started: at(78), Finished: at(90)},
	}
	cases := []struct {
		name      string
		state     string
		updated   time.Time
		now       time.Time
		bars      int
		span      float64
		running   string
		answerEnd float64
	}{
		{"live: the post-load of attempt 2 runs until now", messages.StatePostloading, at(90), at(100), 4, 100, "postload", 12 + 5 + 60},
		{"ended: no running bar, the axis ends with the record", messages.StateFailed, at(95), at(500), 3, 95, "", 12 + 5 + 60},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := messages.JobRecord{ID: "j", State: c.state, Attempt: 2, Created: t0, Updated: c.updated, Steps: steps}
			tl := timeline(rec, c.now)
			if len(tl.Bars) != c.bars || tl.Span != c.span {
				t.Fatalf("%d bars, span %g; want %d, %g: %+v", len(tl.Bars), tl.Span, c.bars, c.span, tl.Bars)
			}
			last := tl.Bars[len(tl.Bars)-1]
			if got := map[bool]string{true: last.Step, false: ""}[last.Running]; got != c.running {
				t.Errorf("running bar %q, want %q", got, c.running)
			}
			if last.Running && (last.Start != 90 || last.End != c.span || last.Attempt != 2) {
				t.Errorf("running bar %+v: want attempt 2 from 90s to the axis's end", last)
			}
			pl := tl.Bars[1]
			if len(pl.Budgets) != 2 || pl.Budgets[0].End != c.answerEnd || pl.Budgets[1].End != c.answerEnd+30 {
				t.Errorf("post-load budgets %+v, want answer until %gs then ready 30s more", pl.Budgets, c.answerEnd)
			}
			if len(pl.Evidence) != 1 {
				t.Errorf("evidence %v", pl.Evidence)
			}
		})
	}
}
