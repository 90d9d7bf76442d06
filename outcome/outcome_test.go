package outcome_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/outcome"
)

type kindErr struct{}

func (kindErr) Error() string  { return "no such image" }
func (kindErr) Reason() string { return outcome.ReasonNotFound }

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		err     error
		outcome messages.Outcome
		reason  string
	}{
		{"nil is ready", nil, messages.OutcomeReady, ""},
		{"plain is retry", errors.New("network down"), messages.OutcomeRetry, ""},
		{"permanent is fail", outcome.Permanent(errors.New("bad")), messages.OutcomeFail, ""},
		{"wrapped permanent is fail", fmt.Errorf("load: %w", outcome.Permanent(errors.New("bad"))), messages.OutcomeFail, ""},
		{"reason of a typed error", fmt.Errorf("clone: %w", kindErr{}), messages.OutcomeRetry, "not-found"},
		{"reason through Permanent", outcome.Permanent(kindErr{}), messages.OutcomeFail, "not-found"},
		{"outer reason wins", outcome.WithReason(kindErr{}, outcome.ReasonConfig), messages.OutcomeRetry, "config"},
		{"reason inside a join", errors.Join(errors.New("a"), outcome.WithReason(errors.New("b"), outcome.ReasonTimeout)), messages.OutcomeRetry, "timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := outcome.Of(c.err); got != c.outcome {
				t.Errorf("Of = %s, want %s", got, c.outcome)
			}
			if got := outcome.Reason(c.err); got != c.reason {
				t.Errorf("Reason = %q, want %q", got, c.reason)
			}
		})
	}
	if outcome.Permanent(nil) != nil || outcome.WithReason(nil, "x") != nil {
		t.Error("nil must stay nil")
	}
}
