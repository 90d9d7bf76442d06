package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ensureEvidence makes the evidence bucket in the background: jobs run
// without it (a user without the right to it only gets a warning; the
// loaders then say in their power replies that no evidence was saved).
func (c *Coordinator) ensureEvidence(bg context.Context) {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	if err := untilPlaced(ctx, func() error { return c.evidenceBucket(ctx) }); err != nil && bg.Err() == nil {
		c.log.Warn("no evidence bucket: screenshots of waits that ran out are not kept (grant this coordinator's NATS user the object store "+c.sub.EvidenceBucket()+")", "err", err)
	}
}

// evidenceBucket creates (or binds) the object store <prefix>_evidence,
// where loaders save the screenshots and console logs of waits that ran
// out, under <job>/<attempt>/<name>. Objects expire like job records.
func (c *Coordinator) evidenceBucket(ctx context.Context) error {
	_, err := c.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: c.sub.EvidenceBucket(), Description: "loadpool evidence: screenshots and console logs of waits that ran out",
		TTL: c.cfg.JobRetention, Storage: jetstream.FileStorage, Replicas: c.cfg.Settings.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		_, err = c.js.ObjectStore(ctx, c.sub.EvidenceBucket())
	}
	if err != nil {
		return fmt.Errorf("coordinator: create object store %s: %w", c.sub.EvidenceBucket(), err)
	}
	return nil
}
