package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/loadpool/loadpool/embednats"
	"github.com/nats-io/nats.go"
)

// conn is a NATS connection and, when LOADPOOL_NATS_URL is unset, the
// embedded server behind it.
type conn struct {
	nc  *nats.Conn
	srv *embednats.Server
	url string
}

func (c *conn) Close() {
	if c.nc != nil {
		_ = c.nc.Drain()
	}
	if c.srv != nil {
		c.srv.Shutdown()
	}
}

// connect uses LOADPOOL_NATS_URL, or starts the embedded server when
// embed is allowed. It prints the URL it uses, so that the stock nats CLI
// can follow along.
func connect(c Config, log *slog.Logger, name string, embed bool) (*conn, error) {
	out := &conn{url: c.NATSURL}
	if out.url == "" {
		if !embed {
			return nil, errors.New("LOADPOOL_NATS_URL is not set: point it at the NATS server that `loadpool all` or `loadpool dev` printed (for example nats://127.0.0.1:4222)")
		}
		srv, err := startEmbedded(c)
		if err != nil {
			return nil, err
		}
		out.srv, out.url = srv, srv.URL()
		log.Info("embedded NATS server with JetStream started", "url", out.url, "data", c.natsDir())
	}
	opts := []nats.Option{nats.Name("loadpool " + name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted()) }),
	}
	more, err := securityOptions(c)
	if err != nil {
		out.Close()
		return nil, err
	}
	nc, err := nats.Connect(out.url, append(opts, more...)...)
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("cannot connect to NATS at %s: %v (check LOADPOOL_NATS_URL, the credentials and that the server runs)", redactURLs(out.url), err)
	}
	out.nc = nc
	fmt.Fprintf(os.Stderr, "loadpool %s: NATS %s\n", name, nc.ConnectedUrlRedacted())
	return out, nil
}

func startEmbedded(c Config) (*embednats.Server, error) {
	if err := os.MkdirAll(c.natsDir(), 0o700); err != nil {
		return nil, fmt.Errorf("embedded NATS data directory: %v (set LOADPOOL_DATA_DIR)", err)
	}
	port := c.NATSPort
	if port != 0 && !portFree(c.NATSHost, port) {
		return nil, fmt.Errorf("port %d on %s is taken: stop what uses it, set LOADPOOL_NATS_PORT (0 picks a free port), or set LOADPOOL_NATS_URL to use that server", port, c.NATSHost)
	}
	if port == 0 {
		port = -1
	}
	return embednats.Start(embednats.Config{Host: c.NATSHost, Port: port, StoreDir: c.natsDir()})
}

func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
