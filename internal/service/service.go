package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// DefaultSlots is how many handlers run at once when Config.Slots is nil.
const DefaultSlots = 16

// Handler answers one request with Respond or Error. It runs in its own
// goroutine (or on Config.Go), or in the subscription's for an Inline endpoint.
type Handler func(*Request)

// Config describes a service.
type Config struct {
	// Name (letters, digits, '-', '_'), Version and Description are what
	// $SRV.INFO shows; Metadata is in every $SRV answer.
	Name, Version, Description string
	Metadata                   map[string]string
	// Slots bounds the handlers that run at once over all endpoints: a
	// request sends on it before its handler starts and receives when the
	// handler has returned. Share it to bound other work together with
	// the requests. Nil: a channel of DefaultSlots.
	Slots chan struct{}
	// Full, when set, answers a request that finds no free slot at once,
	// in the subscription's goroutine, instead of the request waiting.
	Full Handler
	// Go, when set, runs a handler (once it has its slot) instead of a
	// new goroutine: a pool of long-lived goroutines, one per slot, whose
	// stacks have grown once.
	Go func(func())
}

// Service is one running instance of a service.
type Service struct {
	nc      *nats.Conn
	cfg     Config
	id      string
	started time.Time

	mu        sync.Mutex
	idle      sync.Cond // signalled when running drops to 0
	endpoints []*endpoint
	verbs     []*nats.Subscription
	running   int  // handlers started and not yet returned
	stopped   bool // Stop has drained the endpoints: refuse new requests
	stopping  bool // Stop was called: no more endpoints
	stopOnce  sync.Once
}

type endpoint struct {
	name, subject string
	h             Handler
	inline        bool
	sub           *nats.Subscription
	stats         micro.EndpointStats // under Service.mu
}

// Option changes one endpoint.
type Option func(*endpoint)

// Inline runs the endpoint's handler in its subscription's goroutine,
// without a slot: for a handler that never blocks (a status read).
func Inline() Option { return func(e *endpoint) { e.inline = true } }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9\-_]+$`)

// New starts answering the $SRV requests of a service on nc; AddEndpoint
// adds its endpoints.
func New(nc *nats.Conn, cfg Config) (*Service, error) {
	if !nameRE.MatchString(cfg.Name) || cfg.Version == "" {
		return nil, fmt.Errorf("service: name %q (letters, digits, - and _) and a version are required", cfg.Name)
	}
	cfg.Metadata = maps.Clone(cfg.Metadata)
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	if cfg.Slots == nil {
		cfg.Slots = make(chan struct{}, DefaultSlots)
	}
	s := &Service{nc: nc, cfg: cfg, id: nuid.Next(), started: time.Now().UTC()}
	s.idle.L = &s.mu
	for verb, answer := range map[micro.Verb]func() any{
		micro.PingVerb:  func() any { return micro.Ping{ServiceIdentity: s.identity(), Type: micro.PingResponseType} },
		micro.InfoVerb:  func() any { return s.Info() },
		micro.StatsVerb: func() any { return s.Stats() },
	} {
		if err := s.addVerb(verb, answer); err != nil {
			s.unsubscribeVerbs()
			return nil, fmt.Errorf("service %s: %w", cfg.Name, err)
		}
	}
	return s, nil
}

// addVerb subscribes $SRV.<verb>, $SRV.<verb>.<name> and
// $SRV.<verb>.<name>.<id>, outside any queue group: every instance answers.
func (s *Service) addVerb(verb micro.Verb, answer func() any) error {
	cb := func(m *nats.Msg) {
		b, _ := json.Marshal(answer())
		_ = m.Respond(b)
	}
	for _, ids := range [][2]string{{"", ""}, {s.cfg.Name, ""}, {s.cfg.Name, s.id}} {
		subject, err := micro.ControlSubject(verb, ids[0], ids[1])
		if err != nil {
			return err
		}
		sub, err := s.nc.Subscribe(subject, cb)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		s.verbs = append(s.verbs, sub)
	}
	return nil
}

// ID is this instance's id (the last token of its $SRV subjects).
func (s *Service) ID() string { return s.id }

// AddEndpoint serves subject in the queue group "q" as the endpoint name.
func (s *Service) AddEndpoint(name, subject string, h Handler, opts ...Option) error {
	if !nameRE.MatchString(name) || subject == "" || strings.ContainsAny(subject, " \t\r\n") {
		return fmt.Errorf("service %s: endpoint %q on subject %q: a name of letters, digits, - and _ and a subject are required", s.cfg.Name, name, subject)
	}
	ep := &endpoint{name: name, subject: subject, h: h,
		stats: micro.EndpointStats{Name: name, Subject: subject, QueueGroup: micro.DefaultQueueGroup}}
	for _, o := range opts {
		o(ep)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return fmt.Errorf("service %s: endpoint %s: the service is stopped", s.cfg.Name, name)
	}
	sub, err := s.nc.QueueSubscribe(subject, micro.DefaultQueueGroup, func(m *nats.Msg) { s.serve(ep, m) })
	if err != nil {
		return fmt.Errorf("service %s: endpoint %s: %w", s.cfg.Name, name, err)
	}
	ep.sub = sub
	s.endpoints = append(s.endpoints, ep)
	return nil
}

// serve runs in the endpoint's subscription goroutine: it takes a slot
// and starts the handler, or answers at once (stopped, Full).
func (s *Service) serve(ep *endpoint, m *nats.Msg) {
	start := time.Now()
	r := &Request{msg: m}
	r.counted = func(r *Request) { s.record(ep, r, start) }
	if !s.begin() {
		_ = r.Error("503", fmt.Sprintf("service %s is stopping: try again", s.cfg.Name), nil)
		r.count()
		return
	}
	if ep.inline {
		defer s.end()
		ep.h(r)
		r.count()
		return
	}
	if s.cfg.Full == nil {
		s.cfg.Slots <- struct{}{}
	} else {
		select {
		case s.cfg.Slots <- struct{}{}:
		default:
			defer s.end()
			s.cfg.Full(r)
			r.count()
			return
		}
	}
	run := func() {
		defer s.end()
		ep.h(r)
		r.count()
		<-s.cfg.Slots
	}
	if s.cfg.Go != nil {
		s.cfg.Go(run)
		return
	}
	go run()
}

func (s *Service) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.running++
	return true
}

func (s *Service) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running--; s.running == 0 {
		s.idle.Broadcast()
	}
}

// record counts one request that took from start until now (its reply
// is about to go out, or its handler has returned without one).
func (s *Service) record(ep *endpoint, r *Request, start time.Time) {
	took := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &ep.stats
	st.NumRequests++
	st.ProcessingTime += took
	st.AverageProcessingTime = st.ProcessingTime / time.Duration(st.NumRequests)
	if r.err != nil {
		st.NumErrors++
		st.LastError = r.err.Error()
	}
}

// Stop drains the endpoints (requests received are still handled), waits
// until every handler has returned, then stops answering $SRV requests.
// Idempotent; never call it from a handler.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		eps := slices.Clone(s.endpoints)
		s.mu.Unlock()
		for _, ep := range eps {
			if err := ep.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				_ = ep.sub.Unsubscribe()
			}
		}
		for _, ep := range eps {
			waitClosed(ep.sub)
		}
		s.mu.Lock()
		s.stopped = true // a straggling callback answers 503 from here on
		for s.running > 0 {
			s.idle.Wait()
		}
		s.mu.Unlock()
		s.unsubscribeVerbs()
	})
}

// waitClosed returns once sub has drained (or its connection closed,
// which ends it without a status change).
func waitClosed(sub *nats.Subscription) {
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for sub.IsValid() {
		select {
		case <-closed:
			return
		case <-tick.C:
		}
	}
}

func (s *Service) unsubscribeVerbs() {
	for _, v := range s.verbs {
		_ = v.Unsubscribe()
	}
}

func (s *Service) identity() micro.ServiceIdentity {
	return micro.ServiceIdentity{Name: s.cfg.Name, ID: s.id, Version: s.cfg.Version, Metadata: maps.Clone(s.cfg.Metadata)}
}

// Info is what $SRV.INFO answers.
func (s *Service) Info() micro.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	eps := make([]micro.EndpointInfo, 0, len(s.endpoints))
	for _, ep := range s.endpoints {
		eps = append(eps, micro.EndpointInfo{Name: ep.name, Subject: ep.subject, QueueGroup: micro.DefaultQueueGroup})
	}
	return micro.Info{ServiceIdentity: s.identity(), Type: micro.InfoResponseType, Description: s.cfg.Description, Endpoints: eps}
}

// Stats is what $SRV.STATS answers.
func (s *Service) Stats() micro.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	eps := make([]*micro.EndpointStats, 0, len(s.endpoints))
	for _, ep := range s.endpoints {
		st := ep.stats
		eps = append(eps, &st)
	}
	return micro.Stats{ServiceIdentity: s.identity(), Type: micro.StatsResponseType, Started: s.started, Endpoints: eps}
}
