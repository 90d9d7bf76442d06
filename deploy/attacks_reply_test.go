package deploy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// loaderReadsInboxes: the loader subscribes to the inboxes (all of them,
// then the client's and the coordinator's by their prefix) and reads the
// job record that the coordinator sends the client.
func loaderReadsInboxes(t *testing.T, tg *target) error {
	c := tg.as(t, "loader")
	subjects := []string{"_INBOX.>", "_INBOX.client.>", "_INBOX.coordinator.>"}
	msgs := make(chan *nats.Msg, 1024)
	for _, s := range subjects {
		if _, err := c.ChanSubscribe(s, msgs); err != nil {
			t.Logf("subscribe %s: %v", s, err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.client.Get(tg.ctx, tg.job); err != nil {
		t.Fatal(err)
	}
	violations := 0
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(string(m.Data), tg.job) {
				return fmt.Errorf("the loader read on %s: %.100s", m.Subject, m.Data)
			}
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) {
				if violations++; violations == len(subjects) {
					t.Logf("refused: %v", err)
					return nil
				}
			}
		case <-deadline:
			t.Log("no inbox traffic seen and no refusal")
			return nil
		}
	}
}

// osAcksLoaderDelivery: a loader fetches the job's load request; the OS
// user, subscribed to the shared inboxes, sees the delivery and answers
// its ack subject with verb: +TERM (the request vanishes from the work
// queue) or -NAK (a second loader gets it while the first still works on
// it). Where the OS user sees nothing, it tries the ack subject anyway.
func osAcksLoaderDelivery(verb string) func(*testing.T, *target) error {
	return func(t *testing.T, tg *target) error {
		osc := tg.as(t, "os")
		seen, _ := osc.SubscribeSync("_INBOX.>")
		if err := osc.Flush(); err != nil {
			t.Fatal(err)
		}
		held := fetchLoad(t, tg)
		if m, err := seen.NextMsg(time.Second); err == nil && m.Reply == held.Reply() {
			t.Logf("the os user saw the delivery %s on %s", m.Reply, m.Subject)
		}
		if err := osc.Publish(held.Reply(), []byte(verb)); err != nil {
			t.Fatal(err)
		}
		if err := osc.Flush(); err != nil {
			t.Fatal(err)
		}
		if c := ackViolation(osc, held.Reply()); c != nil {
			t.Logf("refused: %v", c)
			return requestStillHeld(t, tg)
		}
		if verb == "+TERM" {
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				st, err := tg.js.Stream(tg.ctx, subj.LoadStream())
				if err == nil && st.CachedInfo().State.Msgs == 0 {
					return fmt.Errorf("the os user's %s removed the load request that a loader still holds", verb)
				}
				time.Sleep(20 * time.Millisecond) // polling the stream, with a deadline
			}
			return nil
		}
		again := fetchLoadOnce(t, tg, 3*time.Second)
		if again != nil {
			md, _ := again.Metadata()
			return fmt.Errorf("after the os user's %s a second loader got the request (delivery %d) the first still holds", verb, md.NumDelivered)
		}
		return nil
	}
}

// ackViolation waits for the server's refusal of a publish to ack.
func ackViolation(c *roleConn, ack string) error {
	deadline := time.After(3 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), fmt.Sprintf("Publish to %q", ack)) {
				return err
			}
		case <-deadline:
			return nil
		}
	}
}

// fetchLoad fetches the job's load request as the loader user.
func fetchLoad(t *testing.T, tg *target) jetstream.Msg {
	t.Helper()
	m := fetchLoadOnce(t, tg, 10*time.Second)
	if m == nil {
		t.Fatal("no load request to fetch")
	}
	return m
}

func fetchLoadOnce(t *testing.T, tg *target, wait time.Duration) jetstream.Msg {
	t.Helper()
	js, err := jetstream.New(tg.as(t, "loader").Conn)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(tg.ctx, subj.LoadStream(), subj.LoaderConsumer(tg.pool))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	return <-batch.Messages()
}

// requestStillHeld: after a refused ack, the request is in the stream
// and still pending with the loader that holds it.
func requestStillHeld(t *testing.T, tg *target) error {
	t.Helper()
	cons, err := tg.js.Consumer(tg.ctx, subj.LoadStream(), subj.LoaderConsumer(tg.pool))
	if err != nil {
		return err
	}
	info, err := cons.Info(tg.ctx)
	if err != nil || info.NumAckPending != 1 || info.NumRedelivered != 0 {
		return fmt.Errorf("refused, yet the request is not held as before: %+v, %v", info, err)
	}
	return nil
}

// clientRedirectsReply: the client asks job.get for another job with the
// attacked job's KV key as its reply; the coordinator answers there and
// the attacked job's record becomes the other's.
func clientRedirectsReply(t *testing.T, tg *target) error {
	if _, err := tg.client.Submit(tg.ctx, tg.enroll(t, jobSpec(tg.job+"-other", "vm-"+tg.job+"-other", tg.pool, ""))); err != nil {
		t.Fatal(err)
	}
	c := tg.as(t, "client")
	return redirect(t, tg, c, subj.JobGet(), messages.Encode(messages.GetRequest{ID: tg.job + "-other"}))
}

// monitorRedirectsDiscovery: the monitor pings the micro services with the
// attacked job's KV key as its reply; every service answers there.
func monitorRedirectsDiscovery(t *testing.T, tg *target) error {
	c := tg.as(t, "monitor")
	return redirect(t, tg, c, "$SRV.PING", nil)
}

// osRedirectsPowerReply: the OS user asks a loader's power endpoint with
// the attacked job's KV key as its reply.
func osRedirectsPowerReply(t *testing.T, tg *target) error {
	if _, err := (pool.Consumer{Subjects: subj, Step: messages.StepLoad, Pool: tg.pool + "-power"}).Ensure(tg.ctx, tg.js, false); err != nil {
		t.Fatal(err)
	}
	lw, err := loaderworker.New(tg.as(t, "loader").Conn, loaderworker.Config{Subjects: subj, Name: tg.pool + "-power", Logger: quiet, Settings: pool.Config{Grace: time.Second, BindOnly: true}}, &loaderworker.Fake{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(tg.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	c := tg.as(t, "os")
	body := messages.Encode(messages.PowerRequest{JobID: tg.job, Attempt: 1, Computer: messages.Computer{Name: "vm-" + tg.job, Provisioner: tg.pool + "-power"}, Action: "status"})
	return redirect(t, tg, c, subj.Power(tg.pool+"-power"), body)
}

// redirect publishes a request whose reply subject is the attacked job's
// key in vcl_jobs; it returns an error when the record is overwritten
// within a few seconds.
func redirect(t *testing.T, tg *target, c *roleConn, subject string, body []byte) error {
	t.Helper()
	kv, err := tg.js.KeyValue(tg.ctx, subj.JobsBucket())
	if err != nil {
		t.Fatal(err)
	}
	reply := "$KV." + subj.JobsBucket() + "." + tg.job
	if err := c.PublishRequest(subject, reply, body); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		e, err := kv.Get(tg.ctx, tg.job)
		if err == nil && !strings.Contains(string(e.Value()), `"id":"`+tg.job+`"`) {
			return fmt.Errorf("%s with the reply %s: the job record is now %.120s", subject, reply, e.Value())
		}
		time.Sleep(20 * time.Millisecond) // polling the record, with a deadline
	}
	return tg.unharmed(t)
}

// workerCreatesConsumer: a worker makes a push consumer on its request
// stream that delivers a pool's requests onto the post-load results.
func workerCreatesConsumer(role, stream, name, filter string) func(*testing.T, *target) error {
	return func(t *testing.T, tg *target) error {
		c := tg.as(t, role)
		_, err := c.try(t, "$JS.API.CONSUMER.CREATE."+stream+"."+name+"."+filter, map[string]any{"stream_name": stream,
			"config": map[string]any{"name": name, "durable_name": name, "filter_subject": filter, "deliver_subject": subj.PostloadResult(),
				"ack_policy": "explicit"}})
		if refused(t, err) {
			return nil
		}
		return fmt.Errorf("%s created consumer %s on %s delivering %s to %s", role, name, stream, filter, subj.PostloadResult())
	}
}

// jsReplyToRecord: a worker asks the JetStream API something it may ask
// with the attacked job's KV key as the reply; the server's answer lands
// in vcl_jobs.
func jsReplyToRecord(role, subject string) func(*testing.T, *target) error {
	return func(t *testing.T, tg *target) error {
		c := tg.as(t, role)
		return redirect(t, tg, c, subject, nil)
	}
}
