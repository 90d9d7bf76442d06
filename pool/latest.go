package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// KVValue is the latest value of a KV key as its stream leader knows it.
type KVValue struct {
	Data    []byte
	Rev     uint64
	Created time.Time
	// Found is false for a key never written, deleted, purged, or expired
	// (Rev is then the revision of the delete, if any).
	Found bool
}

// Latest reads key of bucket through the stream leader
// ($JS.API.STREAM.MSG.GET), not kv.Get: KV buckets allow direct gets,
// which a replica may answer before it has the newest write, and a
// compare-and-set loop (or a check of who holds a computer) must see the
// last write. ctx bounds the request.
func Latest(ctx context.Context, nc *nats.Conn, bucket, key string) (KVValue, error) {
	body, _ := json.Marshal(struct {
		LastBy string `json:"last_by_subj"`
	}{"$KV." + bucket + "." + key})
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, body)
	if err != nil {
		return KVValue{}, fmt.Errorf("read %s/%s: %w", bucket, key, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64    `json:"seq"`
			Hdrs []byte    `json:"hdrs"`
			Data []byte    `json:"data"`
			Time time.Time `json:"time"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return KVValue{}, fmt.Errorf("read %s/%s: unreadable JetStream reply: %w", bucket, key, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return KVValue{}, nil
	case resp.Error != nil:
		return KVValue{}, fmt.Errorf("read %s/%s: JetStream error %d: %s", bucket, key, resp.Error.Code, resp.Error.Description)
	case resp.Message == nil:
		return KVValue{}, fmt.Errorf("read %s/%s: empty JetStream reply", bucket, key)
	}
	m := resp.Message
	if len(m.Hdrs) > 0 {
		if h, err := nats.DecodeHeadersMsg(m.Hdrs); err == nil {
			// A delete, a purge, or the marker JetStream leaves when a
			// record expires (a bucket TTL).
			if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" || h.Get("Nats-Marker-Reason") != "" {
				return KVValue{Rev: m.Seq}, nil
			}
		}
	}
	return KVValue{Data: m.Data, Rev: m.Seq, Created: m.Time, Found: true}, nil
}
