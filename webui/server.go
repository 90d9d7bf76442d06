package webui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

//go:embed assets
var assets embed.FS

// callTimeout bounds one coordinator request made for a page.
const callTimeout = 10 * time.Second

// Config configures a Server.
type Config struct {
	Subjects messages.Subjects
	// Evidence, when true, serves the evidence bucket
	// (Subjects.EvidenceBucket, bound on first use: the coordinator may
	// make it after the page starts).
	Evidence bool
	Logger   *slog.Logger
}

// Server is the web page of one coordinator process.
type Server struct {
	cl  *coordinator.Client
	nc  *nats.Conn
	cfg Config

	storeMu sync.Mutex
	store   jetstream.ObjectStore
	log     *slog.Logger
	hub     *hub
	mux     *http.ServeMux

	ln  net.Listener
	srv *http.Server
}

// New subscribes to the events and returns a Server (an http.Handler)
// that is not listening yet; Serve listens, Stop stops.
func New(nc *nats.Conn, cfg Config) (*Server, error) {
	if nc == nil {
		return nil, errors.New("webui: a NATS connection is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cl: coordinator.NewClient(nc, cfg.Subjects), nc: nc, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	h, err := newHub(nc, cfg.Subjects.Events(), s.log)
	if err != nil {
		return nil, err
	}
	s.hub = h
	static, _ := fs.Sub(assets, "assets")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.page("index.html"))
	s.mux.HandleFunc("GET /job/{id}", s.page("job.html"))
	s.mux.HandleFunc("GET /api/jobs", s.jobs)
	s.mux.HandleFunc("GET /api/computers", s.computers)
	s.mux.HandleFunc("GET /api/job/{id}", s.job)
	s.mux.HandleFunc("GET /api/events", s.hub.serve)
	s.mux.HandleFunc("GET /api/history/{id}", s.history)
	s.mux.HandleFunc("GET /evidence/{name...}", s.evidence)
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve listens on addr (host:port) and serves until Stop.
func (s *Server) Serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webui: listen on %s (LOADPOOL_UI_ADDR; empty turns the page off): %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// URL is the page's address once Serve has returned.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Stop ends the event streams, stops listening and waits (5s at most) for
// requests in progress. It is idempotent.
func (s *Server) Stop() {
	s.hub.stop()
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

func (s *Server) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	}
}

func (s *Server) jobs(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	recs, err := s.cl.List(ctx, messages.ListRequest{State: r.URL.Query().Get("state"), Limit: 200})
	s.answer(w, map[string]any{"jobs": recs}, err)
}

func (s *Server) computers(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	rep, err := s.cl.ListComputers(ctx, messages.ComputerListRequest{Limit: 500})
	s.answer(w, rep, err)
}

// jobView is what the job page reads: the record and its timeline.
type jobView struct {
	Record   messages.JobRecord `json:"record"`
	Timeline Timeline           `json:"timeline"`
}

func (s *Server) job(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	rec, err := s.cl.Get(ctx, r.PathValue("id"))
	tl := timeline(rec, time.Now())
	if err == nil {
		attachEvidence(ctx, s.evidenceStore(ctx), rec.ID, &tl)
	}
	s.answer(w, jobView{Record: rec, Timeline: tl}, err)
}

// answer writes v as JSON, or the coordinator's error with its code.
func (s *Server) answer(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		code := http.StatusBadGateway
		var api *coordinator.APIError
		if errors.As(err, &api) && api.Code >= 400 && api.Code < 600 {
			code = api.Code
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(messages.ErrorBody{Error: err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) evidence(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	store := s.evidenceStore(ctx)
	if store == nil {
		http.Error(w, "no evidence bucket "+s.cfg.Subjects.EvidenceBucket()+" (LOADPOOL_EVIDENCE turns it on)", http.StatusNotFound)
		return
	}
	name := r.PathValue("name")
	obj, err := store.Get(ctx, name)
	if err != nil {
		http.Error(w, fmt.Sprintf("evidence %q: %v", name, err), http.StatusNotFound)
		return
	}
	defer obj.Close()
	info, err := obj.Info()
	if err == nil && info.Headers != nil && info.Headers.Get("Content-Type") != "" {
		w.Header().Set("Content-Type", info.Headers.Get("Content-Type"))
	}
	_, _ = io.Copy(w, obj)
}

// evidenceStore binds the evidence bucket once it exists (nil before, or
// when Config.Evidence is off).
func (s *Server) evidenceStore(ctx context.Context) jetstream.ObjectStore {
	if !s.cfg.Evidence {
		return nil
	}
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	if s.store != nil {
		return s.store
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil
	}
	if st, err := js.ObjectStore(ctx, s.cfg.Subjects.EvidenceBucket()); err == nil {
		s.store = st
	}
	return s.store
}

// history answers a job's past events, oldest first.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	id := r.PathValue("id")
	if err := messages.ValidJobID("id", id); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(messages.ErrorBody{Error: err.Error()})
		return
	}
	js, err := jetstream.New(s.nc)
	var evs []messages.Event
	if err == nil {
		evs, err = history(ctx, js, s.cfg.Subjects, id)
	}
	s.answer(w, map[string]any{"events": evs}, err)
}
