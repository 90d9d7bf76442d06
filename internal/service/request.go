package service

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Request is one request to an endpoint. It belongs to its handler's
// goroutine.
type Request struct {
	msg *nats.Msg
	err error // what the stats count as this request's error
	// counted, when set, records the request in the stats once; it runs
	// before the reply is sent, so that whoever has the reply finds the
	// request counted.
	counted func(*Request)
}

// count records the request in the stats (once).
func (r *Request) count() {
	if f := r.counted; f != nil {
		r.counted = nil
		f(r)
	}
}

// Data is the request's body.
func (r *Request) Data() []byte { return r.msg.Data }

// Subject is the subject the request came on.
func (r *Request) Subject() string { return r.msg.Subject }

// Headers are the request's headers (nil when none).
func (r *Request) Headers() nats.Header { return r.msg.Header }

// Respond answers with data. A request without a reply subject (a
// publish) is answered by nobody.
func (r *Request) Respond(data []byte) error {
	if r.msg.Reply == "" {
		return nil
	}
	r.count()
	if err := r.msg.Respond(data); err != nil {
		return fmt.Errorf("%w: %w", micro.ErrRespond, err)
	}
	return nil
}

// Error answers with micro's error headers (Nats-Service-Error: the
// description, Nats-Service-Error-Code: the code) and body; the stats
// count it as an error "code:description", as micro does.
func (r *Request) Error(code, description string, body []byte) error {
	if code == "" || description == "" {
		return errors.New("service: an error reply needs a code and a description")
	}
	r.err = fmt.Errorf("%s:%s", code, description)
	if r.msg.Reply == "" {
		return nil
	}
	m := nats.NewMsg(r.msg.Reply)
	m.Header.Set(micro.ErrorHeader, description)
	m.Header.Set(micro.ErrorCodeHeader, code)
	m.Data = body
	r.count()
	return r.msg.RespondMsg(m)
}
