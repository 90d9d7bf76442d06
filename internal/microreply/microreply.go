// Package microreply answers a NATS micro request from another goroutine
// than its handler's. micro reads the request's error state after the
// handler returns (for its stats), so calling Respond or Error on the
// micro.Request from a goroutine the handler started is a data race; these
// publish to the request's reply subject instead, with the same headers
// micro's Error sets. The handler takes To(req) before it hands off.
package microreply

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Target is where one request's answer goes.
type Target struct {
	nc      *nats.Conn
	subject string
}

// To captures the reply subject of req, in the handler's goroutine.
func To(nc *nats.Conn, req micro.Request) Target { return Target{nc: nc, subject: req.Reply()} }

// OK answers with data.
func (t Target) OK(data []byte) error {
	if t.subject == "" {
		return nil // a publish without a reply subject: nobody waits
	}
	return t.nc.Publish(t.subject, data)
}

// Error answers with micro's error headers (code, description) and body.
func (t Target) Error(code, description string, body []byte) error {
	if t.subject == "" {
		return nil
	}
	m := nats.NewMsg(t.subject)
	m.Header.Set(micro.ErrorHeader, description)
	m.Header.Set(micro.ErrorCodeHeader, code)
	m.Data = body
	return t.nc.PublishMsg(m)
}
