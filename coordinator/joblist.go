package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/loadpool/loadpool/messages"
)

// job.list pages the jobs by their KV revision (the stream sequence of a
// record's last write), the last changed first; a page's next is the
// revision to continue below. Live states come from the index of live
// jobs; ended jobs, or every state, from the bucket's stream, read
// backwards in batches of direct gets: a coordinator never holds the
// ended jobs in memory. A job that changes while a client pages moves to
// the head of the listing (it may be missed by that pass, or seen twice).
const (
	// listScan bounds the messages one page reads from the stream; a
	// page that stops there has fewer jobs than its limit and a next.
	listScan = 20000
	// listBatch is the messages of one direct get.
	listBatch = 500
	// listReserve is what a reply's envelope may take beyond its records.
	jobListReserve = 1024
)

// decodeAfter reads a page's cursor: a revision, or 0 for the first page.
func decodeAfter(after string) (uint64, error) {
	if after == "" {
		return 0, nil
	}
	rev, err := strconv.ParseUint(after, 10, 64)
	if err != nil || rev == 0 {
		return 0, badInput(fmt.Errorf("after: must be the next of a previous page (a revision), not %q", after))
	}
	return rev, nil
}

func encodeNext(rev uint64) string {
	if rev == 0 {
		return ""
	}
	return strconv.FormatUint(rev, 10)
}

// listPage answers one page of job.list (r is checked and its limit set).
func (c *Coordinator) listPage(ctx context.Context, r messages.ListRequest, before uint64) (messages.ListReply, error) {
	budget := int(c.nc.MaxPayload()) - jobListReserve
	if r.State != "" && !messages.Terminal(r.State) {
		return c.listLive(ctx, r.State, before, r.Limit, budget)
	}
	return c.scanJobs(ctx, r.State, before, r.Limit, budget)
}

// listLive pages the live jobs in state from the index; each record is
// read, and kept while it is still in that state.
func (c *Coordinator) listLive(ctx context.Context, state string, before uint64, limit, budget int) (messages.ListReply, error) {
	out := messages.ListReply{Jobs: []messages.JobRecord{}}
	size := 0
	for i, p := range c.index.page(state, before, limit+1) {
		if i == limit {
			out.Next = encodeNext(before)
			break
		}
		rec, _, err := c.read(ctx, p.id)
		if errors.Is(err, errUnknownJob) {
			continue
		}
		if err != nil {
			return messages.ListReply{}, err
		}
		if rec.State != state {
			continue
		}
		n := len(messages.Encode(rec)) + 1
		if size+n > budget && len(out.Jobs) > 0 {
			out.Next = encodeNext(before)
			break
		}
		out.Jobs = append(out.Jobs, rec)
		size += n
		before = p.rev
	}
	return out, nil
}

// scanJobs reads the bucket's stream from below before (0: its end)
// towards its start and answers the records in state (any when empty):
// up to limit of them, within budget bytes, reading at most listScan
// messages.
func (c *Coordinator) scanJobs(ctx context.Context, state string, before uint64, limit, budget int) (messages.ListReply, error) {
	out := messages.ListReply{Jobs: []messages.JobRecord{}}
	ictx, cancel := context.WithTimeout(ctx, opTimeout)
	stream, err := c.js.Stream(ictx, "KV_"+c.sub.JobsBucket())
	cancel()
	if err != nil {
		return out, fmt.Errorf("list jobs: read KV bucket %s: %w", c.sub.JobsBucket(), err)
	}
	st := stream.CachedInfo().State
	if st.Msgs == 0 {
		return out, nil
	}
	first, last := max(st.FirstSeq, 1), st.LastSeq
	hi := last + 1
	if before != 0 && before < hi {
		hi = before
	}
	// The window of sequences one batch covers, from the stream's
	// density (History 1: every older revision is a gap).
	span := max(last+1-first, 1)
	window := uint64(listBatch)
	if st.Msgs > 0 {
		window = max(uint64(listBatch), uint64(listBatch)*span/st.Msgs)
	}
	size, scanned := 0, 0
	for hi > first && scanned < listScan {
		lo := first
		if hi-first > window {
			lo = hi - window
		}
		msgs, err := c.directRange(ctx, lo, hi)
		if err != nil {
			return messages.ListReply{}, err
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			m := msgs[i]
			scanned++
			rec, ok := decodeListed(m, state)
			if !ok {
				continue
			}
			n := len(m.data) + 1
			if len(out.Jobs) == limit || (size+n > budget && len(out.Jobs) > 0) {
				out.Next = encodeNext(m.seq + 1)
				return out, nil
			}
			out.Jobs = append(out.Jobs, rec)
			size += n
		}
		hi = lo
	}
	if hi > first {
		out.Next = encodeNext(hi)
	}
	return out, nil
}

// decodeListed decodes a stream message that is a record in state (any
// when empty); false for deletes, expiry markers, other states and
// unreadable records.
func decodeListed(m streamMsg, state string) (messages.JobRecord, bool) {
	var rec messages.JobRecord
	if len(m.data) == 0 {
		return rec, false
	}
	if state != "" {
		var s struct {
			State string `json:"state"`
		}
		if json.Unmarshal(m.data, &s) != nil || s.State != state {
			return rec, false
		}
	}
	if json.Unmarshal(m.data, &rec) != nil {
		return rec, false
	}
	return rec, true
}

// streamMsg is one message of the jobs bucket's stream.
type streamMsg struct {
	seq  uint64
	data []byte // nil for a delete, a purge or an expiry marker
}

// directRange reads the messages of the jobs bucket's stream with
// sequences in [lo, hi), in order, with batched direct gets (a replica may
// answer: a listing may lag the newest write by a moment).
func (c *Coordinator) directRange(ctx context.Context, lo, hi uint64) ([]streamMsg, error) {
	var out []streamMsg
	for lo < hi {
		got, next, err := c.directBatch(ctx, lo, hi)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if next == 0 {
			break
		}
		lo = next
	}
	return out, nil
}

// directBatch asks for up to listBatch messages from sequence lo and
// returns those below hi, and the sequence to ask from next (0: none
// below hi remain).
func (c *Coordinator) directBatch(ctx context.Context, lo, hi uint64) ([]streamMsg, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	stream := "KV_" + c.sub.JobsBucket()
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, 0, fmt.Errorf("list jobs: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	body, _ := json.Marshal(struct {
		Seq   uint64 `json:"seq"`
		Batch int    `json:"batch"`
	}{lo, listBatch})
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return nil, 0, fmt.Errorf("list jobs: read %s: %w", stream, err)
	}
	var out []streamMsg
	last := uint64(0)
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("list jobs: read %s: %w", stream, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "404":
			return out, 0, nil // nothing at or after lo
		case "204": // end of the batch
			if len(out) < listBatch || last+1 >= hi {
				return out, 0, nil
			}
			return out, last + 1, nil
		default:
			return nil, 0, fmt.Errorf("list jobs: read %s: status %s %s", stream, status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("list jobs: read %s: a message without its sequence", stream)
		}
		last = seq
		if seq >= hi {
			return out, 0, nil // past the range: so is the rest of the batch
		}
		sm := streamMsg{seq: seq}
		if m.Header.Get("KV-Operation") == "" && m.Header.Get("Nats-Marker-Reason") == "" {
			sm.data = m.Data
		}
		out = append(out, sm)
	}
}
