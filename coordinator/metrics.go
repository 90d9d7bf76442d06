package coordinator

import (
	"context"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/metrics"
)

// observe records what the applied result res changed from rec to next:
// in package metrics the step's duration, a retry, a job's end; in the
// durations bucket a ready step's duration.
func (c *Coordinator) observe(ctx context.Context, rec, next messages.JobRecord, res messages.Result) {
	c.learn(rec, res)
	pool := messages.JobSpec{Computer: computerOf(rec), Image: rec.Spec.Image}.Pool(res.Step)
	metrics.StepApplied(res.Step, pool, rec.Spec.Image.Name, string(res.Outcome), res.Started, res.Finished)
	if next.Attempt > rec.Attempt {
		metrics.Retry(res.Reason)
	}
	if messages.Terminal(next.State) {
		metrics.JobEnded(next.State)
	}
}

// stateCounts counts the live jobs of the index by state, and the
// computers of the inventory index by state (the scrape-time gauges of
// package metrics); every live state and every computer state appears.
// Ended jobs are not counted: the index holds the live jobs only (the
// bucket may retain millions of ended ones); loadpool_jobs_ended_total
// counts the ends.
func (c *Coordinator) stateCounts() (jobs, computers map[string]int) {
	jobs = map[string]int{}
	for _, s := range []string{messages.StateQueued, messages.StateLoading, messages.StatePostloading} {
		jobs[s] = 0
	}
	c.index.counts(jobs)
	computers = map[string]int{}
	for _, s := range []string{messages.ComputerAvailable, messages.ComputerReloading, messages.ComputerInUse,
		messages.ComputerMaintenance, messages.ComputerFailed} {
		computers[s] = 0
	}
	c.inv.mu.Lock()
	for _, it := range c.inv.items {
		computers[it.e.State]++
	}
	c.inv.mu.Unlock()
	return jobs, computers
}
