package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// advisoryPrefix is the subject prefix of JetStream's max-deliveries
// advisories: <prefix>.<stream>.<consumer>.
const advisoryPrefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"

// maxResultDeliveries: a result that fails to apply this often (about
// ten minutes of one-second retries) is dropped with a logged error.
const maxResultDeliveries = 600

// startResults binds the shared durable result consumer and consumes it.
func (c *Coordinator) startResults(ctx context.Context) error {
	name := c.sub.ResultConsumer()
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.sub.ResultStream(), jetstream.ConsumerConfig{
		Name: name, Durable: name, Description: "loadpool coordinators: step results",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: resultAckWait,
		MaxAckPending: 1000, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("coordinator: result consumer %s on %s: %w", name, c.sub.ResultStream(), err)
	}
	c.consume, err = cons.Consume(c.takeResult, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		c.log.Debug("result consumer", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("coordinator: consume results: %w", err)
	}
	return nil
}

// takeResult hands a result to one of the Handlers goroutines
// (results of one job may then race; the compare-and-set sorts them out).
func (c *Coordinator) takeResult(msg jetstream.Msg) {
	if !c.enter() {
		_ = msg.Nak()
		return
	}
	c.slots <- struct{}{} // shared with the requests: Handlers bounds both
	c.work <- func() {
		defer c.leave()
		defer func() { <-c.slots }()
		c.resultGuarded(msg)
	}
}

// onResult applies one result and acknowledges it only once the record
// says so. Garbage is terminated with a logged rejection.
func (c *Coordinator) onResult(msg jetstream.Msg) {
	res, err := messages.DecodeResult(msg.Data())
	if err != nil && res.JobID == "" {
		c.reject(msg, err)
		return
	}
	if err != nil {
		c.log.Warn("malformed result applied as fail", "job", res.JobID, "attempt", res.Attempt, "step", res.Step, "err", err)
	}
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	_, err = c.apply(context.Background(), res, delivered > 1)
	switch {
	case errors.Is(err, errUnknownJob):
		c.reject(msg, err)
	case err != nil && delivered >= maxResultDeliveries:
		c.log.Error("result could not be applied after many tries; dropped (the step cap ends the step)", "job", res.JobID, "attempt", res.Attempt, "step", res.Step, "deliveries", delivered, "err", err)
		_ = msg.TermWithReason("not applicable: " + err.Error())
	case err != nil:
		c.log.Warn("result not applied yet; it comes again", "job", res.JobID, "attempt", res.Attempt, "step", res.Step, "err", err)
		_ = msg.NakWithDelay(time.Second)
	default:
		if err := msg.Ack(); err != nil {
			c.log.Warn("result applied but not acknowledged (its redelivery is a duplicate)", "job", res.JobID, "err", err)
		}
	}
}

func (c *Coordinator) reject(msg jetstream.Msg, err error) {
	c.log.Warn("result rejected", "subject", msg.Subject(), "bytes", len(msg.Data()), "err", err)
	_ = msg.TermWithReason("rejected: " + err.Error())
}

// startAdvisories subscribes (queue group: one coordinator handles each)
// to the max-deliveries advisories of both request streams.
func (c *Coordinator) startAdvisories() error {
	for _, stream := range []string{c.sub.LoadStream(), c.sub.PostloadStream()} {
		s, err := c.nc.QueueSubscribe(advisoryPrefix+"."+stream+".*", ServiceName+"-advisories", c.advisoryGuarded)
		if err != nil {
			return fmt.Errorf("coordinator: subscribe to max-deliveries advisories of %s: %w", stream, err)
		}
		c.advisory = append(c.advisory, s)
	}
	return nil
}

// deliveryAdvisory is JetStream's io.nats.jetstream.advisory.v1.max_deliver.
type deliveryAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// onAdvisory turns a request that exhausted its deliveries into a retry
// of its job and removes it from the work queue.
func (c *Coordinator) onAdvisory(m *nats.Msg) {
	if !c.enter() {
		return
	}
	defer c.leave()
	var a deliveryAdvisory
	if err := json.Unmarshal(m.Data, &a); err != nil {
		c.log.Warn("unreadable max-deliveries advisory ignored", "subject", m.Subject, "err", err)
		return
	}
	if a.Stream == "" || a.StreamSeq == 0 {
		c.log.Warn("max-deliveries advisory without stream or stream_seq ignored", "subject", m.Subject)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*opTimeout)
	defer cancel()
	if err := c.exhausted(ctx, a); err != nil {
		c.log.Warn("max-deliveries advisory not handled (the step cap will end the step)", "stream", a.Stream, "seq", a.StreamSeq, "err", err)
	}
}

func (c *Coordinator) exhausted(ctx context.Context, a deliveryAdvisory) error {
	stream, err := c.js.Stream(ctx, a.Stream)
	if err != nil {
		return err
	}
	raw, err := stream.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // already gone (a worker finished after all)
	}
	if err != nil {
		return err
	}
	req, err := messages.DecodeRequest(raw.Data)
	if err != nil {
		c.log.Warn("undeliverable request is garbage; removed", "stream", a.Stream, "seq", a.StreamSeq, "err", err)
		return stream.DeleteMsg(ctx, a.StreamSeq)
	}
	now := time.Now().UTC()
	res := messages.Result{JobID: req.JobID, Attempt: req.Attempt, Step: req.Step, Outcome: messages.OutcomeRetry,
		Detail: fmt.Sprintf("request delivered %d times to consumer %s, no worker finished it", a.Deliveries, a.Consumer),
		Reason: "max-deliveries", Worker: c.cfg.Name, Started: raw.Time, Finished: now}
	if _, err := c.apply(ctx, res, false); err != nil && !errors.Is(err, errUnknownJob) {
		return err
	}
	return stream.DeleteMsg(ctx, a.StreamSeq)
}
