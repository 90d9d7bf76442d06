package loaderworker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Artifact is one piece of evidence a provisioner holds the bytes of: a
// console screenshot, a serial console log.
type Artifact struct {
	// Name is the object's last path element ("screenshot.png").
	Name        string
	ContentType string
	Data        []byte
}

// EvidenceReader is a Provisioner that can hand over the bytes of the
// evidence its Power saved (req.Evidence set). The loader writes them into
// the evidence bucket; a provisioner without it only says where the
// evidence is (PowerReply.Evidence).
type EvidenceReader interface {
	ReadEvidence(ctx context.Context, req messages.PowerRequest, rep messages.PowerReply) ([]Artifact, error)
}

// EvidenceObject is the name of an artifact in the evidence bucket:
// <job>/<attempt>/<name>.
func EvidenceObject(job string, attempt int, name string) string {
	return fmt.Sprintf("%s/%d/%s", job, attempt, name)
}

// evidenceTimeout bounds reading and saving a power action's evidence.
const evidenceTimeout = 15 * time.Second

// saveEvidence writes what the provisioner holds of a power action's
// evidence into <prefix>_evidence and names the objects in the reply's
// Evidence (comma-separated). A failure is a note in the reply's Detail:
// the power action itself succeeded.
func saveEvidence(ctx context.Context, nc *nats.Conn, sub messages.Subjects, prov Provisioner, req messages.PowerRequest, rep messages.PowerReply, log *slog.Logger) messages.PowerReply {
	er, ok := prov.(EvidenceReader)
	if !ok || !req.Evidence || req.JobID == "" {
		return rep
	}
	note := func(s string) { rep.Detail = strings.TrimPrefix(rep.Detail+"; "+s, "; ") }
	// Evidence is a help, never the power action's delay: bounded apart.
	ctx, cancel := context.WithTimeout(ctx, evidenceTimeout)
	defer cancel()
	arts, err := er.ReadEvidence(ctx, req, rep)
	if err != nil || len(arts) == 0 {
		if err != nil {
			note("evidence not read: " + err.Error())
		}
		return rep
	}
	js, err := jetstream.New(nc)
	var store jetstream.ObjectStore
	if err == nil {
		store, err = js.ObjectStore(ctx, sub.EvidenceBucket())
	}
	if err != nil {
		log.Warn("evidence not saved: no evidence bucket (the coordinator creates it)", "bucket", sub.EvidenceBucket(), "err", err)
		note(fmt.Sprintf("evidence not saved: bucket %s: %v", sub.EvidenceBucket(), err))
		return rep
	}
	var names []string
	for _, a := range arts {
		name := EvidenceObject(req.JobID, req.Attempt, a.Name)
		meta := jetstream.ObjectMeta{Name: name, Description: "evidence of " + req.Computer.Name,
			Headers: nats.Header{"Content-Type": []string{a.ContentType}}}
		if _, err := store.Put(ctx, meta, bytes.NewReader(a.Data)); err != nil {
			note(fmt.Sprintf("evidence %s not saved: %v", name, err))
			continue
		}
		names = append(names, name)
	}
	if len(names) > 0 {
		rep.Evidence = strings.Join(names, ",")
	}
	return rep
}
