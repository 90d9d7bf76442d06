package webui

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// clientBuffer is how many events a slow browser may lag before the
// oldest are dropped for it (it re-reads the lists on the next event).
const clientBuffer = 64

// hub fans the events of one core NATS subscription out to the browsers.
type hub struct {
	log     *slog.Logger
	sub     *nats.Subscription
	prefix  string // "<prefix>.event."
	mu      sync.Mutex
	clients map[chan sse]struct{}
	done    chan struct{}
	once    sync.Once
}

// sse is one server-sent event: kind "job" or "computer", the subject's
// last token (job id or computer name), and the event's JSON.
type sse struct {
	kind, key string
	data      []byte
}

func newHub(nc *nats.Conn, subject string, log *slog.Logger) (*hub, error) {
	h := &hub{log: log, prefix: strings.TrimSuffix(subject, ">"), clients: map[chan sse]struct{}{}, done: make(chan struct{})}
	sub, err := nc.Subscribe(subject, h.publish)
	if err != nil {
		return nil, fmt.Errorf("webui: subscribe to %s: %w", subject, err)
	}
	h.sub = sub
	return h, nil
}

func (h *hub) publish(m *nats.Msg) {
	ev := sse{kind: "job", key: strings.TrimPrefix(m.Subject, h.prefix), data: m.Data}
	if name, ok := strings.CutPrefix(ev.key, "computer."); ok {
		ev.kind, ev.key = "computer", name
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c <- ev:
		default: // this browser lags: it misses this one
		}
	}
}

func (h *hub) stop() {
	h.once.Do(func() {
		_ = h.sub.Unsubscribe()
		close(h.done)
	})
}

// serve streams events (?job=ID: that job's only) until the browser goes
// or the hub stops.
func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	job := r.URL.Query().Get("job")
	c := make(chan sse, clientBuffer)
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case ev := <-c:
			if job != "" && (ev.kind != "job" || ev.key != job) {
				continue
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.kind, strings.ReplaceAll(string(ev.data), "\n", ""))
		}
		fl.Flush()
	}
}
