package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// An attack is what a role's credentials let it do to another role's
// messages (design.md, invariant 9). It runs against a fresh target and
// returns what it achieved, or nil when the server refused it.
type attack struct {
	name string
	run  func(t *testing.T, tg *target) error
}

// configs under attack: the shipped one must refuse every attack; the one
// from before issue 10 (testdata/before-issue-10) must let each through,
// or the attack has lost its power to show anything.
var configs = []struct {
	name, dir string
	refuses   bool
}{
	{"before-issue-10", "testdata/before-issue-10", false},
	{"shipped", ".", true},
}

// TestAttacks runs every attack against a server from the configuration
// before issue 10 (it must work: the test can tell) and from the shipped
// one (it must be refused, and the job under attack is unharmed).
func TestAttacks(t *testing.T) {
	t.Parallel()
	for _, a := range attacks() {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			for _, cf := range configs {
				t.Run(cf.name, func(t *testing.T) {
					tg := newTarget(t, filepath.Join(cf.dir, "nats-single.conf"))
					err := a.run(t, tg)
					switch {
					case cf.refuses && err != nil:
						t.Errorf("ATTACK WORKS: %v", err)
					case !cf.refuses && err == nil:
						t.Errorf("the attack does not work on the configuration before issue 10 either: it shows nothing")
					case !cf.refuses:
						t.Logf("before issue 10 the attack works: %v", err)
					}
				})
			}
		})
	}
}

func attacks() []attack {
	return []attack{
		{"client fails a job: push consumer on events delivering to the results", pushEventsToResults("client")},
		{"monitor fails a job: push consumer on events delivering to the results", pushEventsToResults("monitor")},
		{"monitor fails a job: pull from events with the reply aimed at the results", pullEventsToResults},
		{"os forges a load result: stream republishing a KV write to the results", republishToResults},
		{"loader reads the coordinator's and client's inboxes", loaderReadsInboxes},
		{"os terminates a loader's request it saw in the shared inbox", osAcksLoaderDelivery("+TERM")},
		{"os hands a loader's running request to a second loader", osAcksLoaderDelivery("-NAK")},
		{"client overwrites a job record through the coordinator's job.get reply", clientRedirectsReply},
		{"monitor overwrites a job record through the services' discovery replies", monitorRedirectsDiscovery},
		{"os overwrites a job record through a loader's power reply", osRedirectsPowerReply},
		{"os creates a push consumer delivering requests to the results", workerCreatesConsumer("os", "VCL_POSTLOAD", "os-evil", "vcl.postload.request.evil")},
		{"loader overwrites a job record with a JetStream API answer", jsReplyToRecord("loader", "$JS.API.STREAM.INFO.VCL_LOAD")},
		{"os overwrites a job record with a JetStream publish ack", jsReplyToRecord("os", "vcl.postload.result")},
		{"loader creates a push consumer delivering requests to the results", workerCreatesConsumer("loader", "VCL_LOAD", "loader-evil", "vcl.load.request.evil")},
	}
}

// target is a server with a coordinator (as the coordinator user) and one
// job, in state loading, whose load waits in a pool no loader serves.
// Job, computer and pool names are the target's own, so that targets can
// share a server (the cluster).
type target struct {
	addr   string
	opts   []nats.Option // of every connection (TLS)
	ctx    context.Context
	js     jetstream.JetStream // the coordinator's
	client *coordinator.Client
	job    string
	pool   string
}

// newTarget starts a server from conf and a target on it.
func newTarget(t *testing.T, conf string) *target {
	t.Helper()
	return newTargetOn(t, startConf(t, conf, nil).ClientURL(), "attacked", "vmware", false)
}

// newTargetOn is a target on a running server (urls) for job and pool,
// with a coordinator of its own unless one serves already (shared).
func newTargetOn(t *testing.T, urls, job, pool string, shared bool, opts ...nats.Option) *target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	tg := &target{addr: urls, opts: opts, ctx: ctx, job: job, pool: pool}
	cn := tg.as(t, "coordinator")
	if !shared {
		coord, err := coordinator.New(cn.Conn, coordinator.Config{Subjects: subj, Name: "coord-" + job, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := coord.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(coord.Stop)
	}
	var err error
	if tg.js, err = jetstream.New(cn.Conn); err != nil {
		t.Fatal(err)
	}
	tg.client = coordinator.NewClient(tg.as(t, "client").Conn, subj)
	if rec, err := tg.client.Submit(ctx, tg.enroll(t, jobSpec(job, "vm-"+job, pool, ""))); err != nil || rec.State != messages.StateLoading {
		t.Fatalf("submit = %+v, %v", rec, err)
	}
	return tg
}

// enroll enrols the computer of spec as the operator and returns the spec
// naming it only.
func (tg *target) enroll(t *testing.T, spec messages.JobSpec) messages.JobSpec {
	t.Helper()
	return enroll(t, tg.ctx, tg.as(t, "operator").Conn, spec)
}

// as connects as role's user.
func (tg *target) as(t *testing.T, role string) *roleConn {
	t.Helper()
	return connectUser(t, tg.addr, role, os.Getenv(passwordVar(role)), tg.opts...)
}

// harmed waits (a few seconds at most) for the job to leave loading or to
// get a step; it returns what happened, or nil when nothing did.
func (tg *target) harmed(t *testing.T, what string) error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rec, err := tg.client.Get(tg.ctx, tg.job)
		if err != nil {
			return fmt.Errorf("%s: job.get of the attacked job: %v", what, err)
		}
		if rec.State != messages.StateLoading || len(rec.Steps) > 0 {
			return fmt.Errorf("%s: the job is now %s: %s", what, rec.State, messages.Encode(rec.Steps))
		}
		time.Sleep(20 * time.Millisecond) // polling the record, with a deadline
	}
	return nil
}

// unharmed checks, after a refusal, that the job is as it was.
func (tg *target) unharmed(t *testing.T) error {
	t.Helper()
	rec, err := tg.client.Get(tg.ctx, tg.job)
	if err != nil || rec.State != messages.StateLoading || len(rec.Steps) > 0 {
		return fmt.Errorf("refused, yet the job is %+v (%v)", rec, err)
	}
	return nil
}

// errRefused is what try returns when the server refused the request.
var errRefused = errors.New("refused")

// try sends a request as c with the reply on c's own inbox and returns
// the reply, or errRefused when the server refused the publish or the
// subscription (permissions violation), nobody answered, or JetStream
// answered with an error.
func (c *roleConn) try(t *testing.T, subject string, body any, reply ...string) (*nats.Msg, error) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		b, _ = json.Marshal(body)
	}
	inbox := c.NewInbox()
	sub, err := c.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errRefused, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if len(reply) > 0 {
		inbox = reply[0]
	}
	if err := c.PublishRequest(subject, inbox, b); err != nil {
		return nil, fmt.Errorf("%w: %v", errRefused, err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) {
				return nil, fmt.Errorf("%w: %v", errRefused, err)
			}
		case <-deadline:
			return nil, fmt.Errorf("%w: no reply from %s", errRefused, subject)
		default:
		}
		m, err := sub.NextMsg(20 * time.Millisecond)
		if errors.Is(err, nats.ErrTimeout) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errRefused, err)
		}
		if m.Header.Get("Status") == "503" {
			return nil, fmt.Errorf("%w: no responders on %s", errRefused, subject)
		}
		var api struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if json.Unmarshal(m.Data, &api) == nil && api.Error != nil {
			return m, fmt.Errorf("%w: %s", errRefused, api.Error.Description)
		}
		return m, nil
	}
}

// refused reports whether err is a refusal, logging it.
func refused(t *testing.T, err error) bool {
	t.Helper()
	if errors.Is(err, errRefused) {
		t.Logf("refused: %v", err)
		return true
	}
	return false
}

// pushEventsToResults: role creates a push consumer on the events whose
// deliver subject is vcl.load.result; the coordinator takes the job's
// events for results without an outcome and fails the job.
func pushEventsToResults(role string) func(*testing.T, *target) error {
	return func(t *testing.T, tg *target) error {
		c := tg.as(t, role)
		filter := subj.Event(tg.job)
		_, err := c.try(t, "$JS.API.CONSUMER.CREATE.VCL_EVENTS.evil."+filter, map[string]any{"stream_name": "VCL_EVENTS",
			"config": map[string]any{"name": "evil", "deliver_subject": subj.LoadResult(), "filter_subject": filter,
				"ack_policy": "none", "deliver_policy": "all"}})
		if refused(t, err) {
			return tg.unharmed(t)
		}
		return tg.harmed(t, role+" made push consumer evil on VCL_EVENTS delivering to "+subj.LoadResult())
	}
}

// pullEventsToResults: the monitor makes a pull consumer on the events
// and asks for the next messages with vcl.load.result as the reply: the
// server delivers the events there.
func pullEventsToResults(t *testing.T, tg *target) error {
	c := tg.as(t, "monitor")
	filter := subj.Event(tg.job)
	_, err := c.try(t, "$JS.API.CONSUMER.CREATE.VCL_EVENTS.pull."+filter, map[string]any{"stream_name": "VCL_EVENTS",
		"config": map[string]any{"name": "pull", "filter_subject": filter, "ack_policy": "none", "deliver_policy": "all"}})
	if refused(t, err) {
		return tg.unharmed(t)
	}
	if err := c.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.VCL_EVENTS.pull", subj.LoadResult(), []byte(`{"batch":10}`)); err != nil {
		return tg.unharmed(t)
	}
	return tg.harmed(t, "the monitor pulled the events with "+subj.LoadResult()+" as the reply")
}

// hostKeys is the OS workers' host-key bucket before issue 9 (they made
// it: the configuration before issue 10 lets them create its stream).
const hostKeys = "vcl_hostkeys"

// republishToResults: the OS user updates (or creates) its host-key
// bucket's stream with RePublish to vcl.load.result, then writes a forged
// ready result as a KV value: the coordinator applies it.
func republishToResults(t *testing.T, tg *target) error {
	c := tg.as(t, "os")
	name := "KV_" + hostKeys
	cfg := map[string]any{"name": name, "subjects": []string{"$KV." + hostKeys + ".>"}, "storage": "file",
		"max_msgs_per_subject": 1, "allow_direct": true, "num_replicas": 1,
		"republish": map[string]any{"src": "$KV." + hostKeys + ".forge-" + tg.job, "dest": subj.LoadResult()}}
	verb := "CREATE"
	if m, err := c.try(t, "$JS.API.STREAM.INFO."+name, nil); err == nil { // the bucket exists: keep its settings
		var info struct{ Config map[string]any }
		if err := json.Unmarshal(m.Data, &info); err != nil {
			t.Fatal(err)
		}
		info.Config["republish"], cfg, verb = cfg["republish"], info.Config, "UPDATE"
	}
	_, err := c.try(t, "$JS.API.STREAM."+verb+"."+name, cfg)
	if refused(t, err) {
		return tg.unharmed(t)
	}
	forged := messages.Result{JobID: tg.job, Attempt: 1, Step: messages.StepLoad, Outcome: messages.OutcomeReady,
		Detail: "forged", Worker: "attacker", Started: time.Now(), Finished: time.Now()}
	if _, err := c.try(t, "$KV."+hostKeys+".forge-"+tg.job, messages.Encode(forged)); err != nil {
		return tg.unharmed(t)
	}
	return tg.harmed(t, "the os user's stream "+name+" republished a KV write to "+subj.LoadResult())
}
