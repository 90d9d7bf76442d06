package stepworker

import (
	"context"
	"log/slog"
	"time"

	"github.com/loadpool/loadpool/messages"
)

// Progress reports what a running step is doing: each call publishes an
// event on vcl.event.<job_id> (and is logged). The lease is kept by the
// runtime on its own; reporting is for people.
type Progress interface {
	Event(msg string)
}

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
}

// Handler runs one step. Its error decides the outcome (OutcomeOf). When
// ctx is cancelled with ErrShutdown, ErrAborted or ErrLeaseLost, whatever
// it returns is discarded.
type Handler func(ctx context.Context, req messages.Request, p Progress) (Report, error)

// Config configures a Runtime.
type Config struct {
	Subjects messages.Subjects
	// Step is messages.StepLoad or messages.StepPostload; Pool the
	// provisioner or OS family whose requests this runtime takes.
	Step string
	Pool string
	// WorkerID names this process in results and events (default host/pid).
	WorkerID string
	// Concurrency is this process's limit on steps at once (default 8).
	Concurrency int
	// Consumer settings (lease, deliveries, pool-wide limit); zero values
	// take the defaults of PoolConsumer. UpdateConsumer applies them to an
	// existing consumer.
	AckWait        time.Duration
	MaxDeliver     int
	MaxAckPending  int
	UpdateConsumer bool
	// Grace is how long Stop lets running steps finish (default 30s).
	Grace time.Duration
	// Replicas of the streams, if this worker is the first to create them.
	Replicas int
	Logger   *slog.Logger
}
