package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// durationBuckets span a simulated step (tens of milliseconds) to a
// bare-metal install (hours), in seconds.
var durationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}

var (
	stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "loadpool_step_duration_seconds",
		Help:    "Duration of applied step results (worker's started to finished), by step, pool, image and outcome.",
		Buckets: durationBuckets,
	}, []string{"step", "pool", "image", "outcome"})
	retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loadpool_retries_total",
		Help: "New attempts started because a step answered retry, by the step's machine reason.",
	}, []string{"reason"})
	ended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loadpool_jobs_ended_total",
		Help: "Jobs that reached a terminal state through this coordinator, by state.",
	}, []string{"state"})
	inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "loadpool_steps_in_flight",
		Help: "Steps running now in this process, by step, pool and worker.",
	}, []string{"step", "pool", "worker"})
	renewals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loadpool_lease_renewals_total",
		Help: "Leases (JetStream InProgress) renewed and confirmed by a flush, by step and pool.",
	}, []string{"step", "pool"})
	losses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loadpool_lease_losses_total",
		Help: "Steps given up because their lease could not be renewed in time, by step and pool.",
	}, []string{"step", "pool"})
	repairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loadpool_sweeper_repairs_total",
		Help: "Repairs made by the coordinator's sweeper, by kind (step-cap, relaunch, inventory, lock).",
	}, []string{"kind"})
)

// Registry is the process's registry: loadpool's collectors, the
// scrape-time state gauges, and the Go and process collectors.
var Registry = prometheus.NewRegistry()

// init registers after every package variable is set (the state
// collector's descriptions are read through an interface, which the
// initialization order does not see).
func init() {
	Registry.MustRegister(stepDuration, retries, ended, inFlight, renewals, losses, repairs, states,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// StepApplied records a step result the coordinator applied (once per
// step of an attempt, however often it was delivered).
func StepApplied(step, pool, image, outcome string, started, finished time.Time) {
	d := finished.Sub(started)
	if d < 0 || started.IsZero() || finished.IsZero() {
		d = 0
	}
	stepDuration.WithLabelValues(step, pool, image, outcome).Observe(d.Seconds())
}

// Retry records a new attempt started for reason ("" is "unknown").
func Retry(reason string) {
	if reason == "" {
		reason = "unknown"
	}
	retries.WithLabelValues(reason).Inc()
}

// JobEnded records a job that reached terminal state.
func JobEnded(state string) { ended.WithLabelValues(state).Inc() }

// InFlight adds delta (+1 a step started, -1 it ended) to a worker's
// running steps.
func InFlight(step, pool, worker string, delta int) {
	inFlight.WithLabelValues(step, pool, worker).Add(float64(delta))
}

// LeaseRenewed records n confirmed lease renewals.
func LeaseRenewed(step, pool string, n int) {
	if n > 0 {
		renewals.WithLabelValues(step, pool).Add(float64(n))
	}
}

// LeaseLost records a step given up for its lease.
func LeaseLost(step, pool string) { losses.WithLabelValues(step, pool).Inc() }

// Repaired records one sweeper repair of kind.
func Repaired(kind string) { repairs.WithLabelValues(kind).Inc() }

// Counts returns the number of jobs and of computers in each state, read
// from a coordinator's indexes at scrape time.
type Counts func() (jobs, computers map[string]int)

var states = &stateCollector{sources: map[any]Counts{}}

// AddSource makes counts answer the state gauges (the first source added
// that is still there answers). RemoveSource(key) drops it.
func AddSource(key any, counts Counts) { states.add(key, counts) }

// RemoveSource drops the source added with key.
func RemoveSource(key any) { states.remove(key) }

type stateCollector struct {
	mu      sync.Mutex
	order   []any
	sources map[any]Counts
}

var (
	jobsDesc      = prometheus.NewDesc("loadpool_jobs", "Live jobs by state: queued, loading, postloading (the coordinator's index of live jobs at scrape time; ended jobs: loadpool_jobs_ended_total).", []string{"state"}, nil)
	computersDesc = prometheus.NewDesc("loadpool_computers", "Enrolled computers by state (from the coordinator's inventory index at scrape time).", []string{"state"}, nil)
)

func (s *stateCollector) add(key any, c Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sources[key]; !ok {
		s.order = append(s.order, key)
	}
	s.sources[key] = c
}

func (s *stateCollector) remove(key any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sources, key)
	for i, k := range s.order {
		if k == key {
			s.order = append(s.order[:i:i], s.order[i+1:]...)
			break
		}
	}
}

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- computersDesc
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	var c Counts
	if len(s.order) > 0 {
		c = s.sources[s.order[0]]
	}
	s.mu.Unlock()
	if c == nil {
		return
	}
	jobs, computers := c()
	for st, n := range jobs {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), st)
	}
	for st, n := range computers {
		ch <- prometheus.MustNewConstMetric(computersDesc, prometheus.GaugeValue, float64(n), st)
	}
}
