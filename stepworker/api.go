package stepworker

import (
	"context"
	"log/slog"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/loadpool/loadpool/progress"
)

// Report is what a handler says about its step besides the outcome.
type Report struct {
	// Detail is the human sentence; when empty and the handler returned an
	// error, the error's text is used.
	Detail string
	// Reason is a short machine reason ("timeout", "not-found").
	Reason string
	// Reloaded (load only) and Profile (post-load only) go into the result.
	Reloaded *bool
	Profile  *messages.WaitProfile
	// LearnedHostKey (post-load only): the host key the step learned in a
	// reload window; the coordinator writes it into the enrolment.
	LearnedHostKey *messages.LearnedHostKey
	// Evidence (post-load) names the objects saved in the evidence bucket.
	Evidence []string
}

// Handler runs one step. Its error decides the outcome (outcome.Of) and,
// unless Report.Reason is set, the result's reason (outcome.Reason). When
// ctx is cancelled with ErrShutdown, ErrAborted or ErrLeaseLost, whatever
// it returns is discarded.
type Handler func(ctx context.Context, req messages.Request, p progress.Progress) (Report, error)

// Config configures a Runtime.
type Config struct {
	Subjects messages.Subjects
	// Step is messages.StepLoad or messages.StepPostload; Pool the
	// provisioner or OS family whose requests this runtime takes.
	Step string
	Pool string
	// Settings are the pool's consumer settings and this process's own
	// (worker id, concurrency, grace, replicas); zero fields take the
	// defaults of package pool. UpdateConsumer applies the consumer
	// settings to an existing consumer (an operator changing the pool-wide
	// limit).
	Settings       pool.Config
	UpdateConsumer bool
	Logger         *slog.Logger
}
