package coordinator

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/micro"
)

// TestServiceStatsCountProcessing: `nats micro stats loadpool-coordinator`
// shows each endpoint's real processing time (a submit that takes 100 ms
// averages at least that, while a get is answered meanwhile) and counts
// error replies (num_errors, last_error as micro writes it).
func TestServiceStatsCountProcessing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const hold = 100 * time.Millisecond
	entered, release := make(chan struct{}), make(chan struct{})
	e.coordinatorWith(Config{Name: "stats"}, func(c *Coordinator) {
		c.hookBeforeLaunch = func(messages.JobRecord) error {
			close(entered)
			<-release
			time.Sleep(hold) // the handler's known processing time
			return nil
		}
	})
	s := spec("slow", "vm-1")
	e.enroll(s.Computer)
	submitted := make(chan error, 1)
	go func() {
		_, err := e.cl.Submit(ctx(t), s)
		submitted <- err
	}()
	<-entered
	// While the submit is in its handler, a get is answered (404).
	var api *APIError
	if _, err := e.cl.Get(ctx(t), "no-such-job"); !errors.As(err, &api) || api.Code != 404 {
		t.Fatalf("get of an unknown job while a submit runs: %v, want a 404", err)
	}
	close(release)
	if err := <-submitted; err != nil {
		t.Fatalf("submit: %v", err)
	}

	st := stats(t, e)
	sub, get := endpointStats(t, st, "submit"), endpointStats(t, st, "get")
	if sub.NumRequests != 1 || sub.NumErrors != 0 {
		t.Errorf("submit: %d requests, %d errors; want 1, 0", sub.NumRequests, sub.NumErrors)
	}
	if sub.AverageProcessingTime < hold || sub.ProcessingTime < hold {
		t.Errorf("submit took at least %s, but stats say processing_time %s, average %s", hold, sub.ProcessingTime, sub.AverageProcessingTime)
	}
	if get.NumRequests != 1 || get.NumErrors != 1 || !strings.HasPrefix(get.LastError, "404:") {
		t.Errorf("get: %d requests, %d errors, last_error %q; want 1, 1, 404:...", get.NumRequests, get.NumErrors, get.LastError)
	}
	if sub.QueueGroup != micro.DefaultQueueGroup || sub.Subject != "vcl.job.submit" {
		t.Errorf("submit endpoint: subject %q, queue group %q", sub.Subject, sub.QueueGroup)
	}
}

// stats asks the coordinator's service for its stats.
func stats(t *testing.T, e *env) micro.Stats {
	t.Helper()
	m, err := e.nc.RequestWithContext(ctx(t), "$SRV.STATS."+ServiceName, nil)
	if err != nil {
		t.Fatalf("$SRV.STATS.%s: %v", ServiceName, err)
	}
	var st micro.Stats
	if err := json.Unmarshal(m.Data, &st); err != nil || st.Type != micro.StatsResponseType {
		t.Fatalf("$SRV.STATS answer %s: %v", m.Data, err)
	}
	return st
}

func endpointStats(t *testing.T, st micro.Stats, name string) *micro.EndpointStats {
	t.Helper()
	for _, ep := range st.Endpoints {
		if ep.Name == name {
			return ep
		}
	}
	t.Fatalf("no endpoint %s in the stats", name)
	return nil
}
