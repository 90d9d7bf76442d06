package webui

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

func evidenceOf(s messages.StepRecord) []string { return s.Evidence }

// attachEvidence adds the objects of the evidence bucket under <job>/ to
// the post-load bar of their attempt (the evidence of a wait that ran
// out), unless the step record already names them.
func attachEvidence(ctx context.Context, store jetstream.ObjectStore, job string, tl *Timeline) {
	if store == nil {
		return
	}
	objs, err := store.List(ctx)
	if err != nil {
		return // jetstream.ErrNoObjectsFound: none yet
	}
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Name, job+"/")
		if !ok || o.Deleted {
			continue
		}
		attempt, err := strconv.Atoi(strings.SplitN(rest, "/", 2)[0])
		if err != nil {
			continue
		}
		for i := range tl.Bars {
			b := &tl.Bars[i]
			if b.Attempt == attempt && b.Step == messages.StepPostload && !slices.Contains(b.Evidence, o.Name) {
				b.Evidence = append(b.Evidence, o.Name)
			}
		}
	}
}
