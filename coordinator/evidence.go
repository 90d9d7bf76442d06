package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

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
