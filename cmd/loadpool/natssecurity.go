package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
)

// securityOptions are the credentials, the inbox prefix and the TLS
// settings of a connection, from LOADPOOL_NATS_*.
func securityOptions(c Config) ([]nats.Option, error) {
	var opts []nats.Option
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	}
	prefix, err := inboxPrefix(c)
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		// The jetstream package takes its reply subjects from the same
		// prefix (jetstream.New reads nc.Opts.InboxPrefix).
		opts = append(opts, nats.CustomInboxPrefix(prefix))
	}
	if c.NATSCert != "" || c.NATSKey != "" {
		if c.NATSCert == "" || c.NATSKey == "" {
			return nil, fmt.Errorf("LOADPOOL_NATS_CERT and LOADPOOL_NATS_KEY go together: set both (a client certificate and its key) or neither")
		}
		opts = append(opts, nats.ClientCert(c.NATSCert, c.NATSKey))
	}
	if c.NATSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSCA))
	}
	return opts, nil
}

// inboxPrefix is the prefix of this process's reply subjects:
// LOADPOOL_NATS_INBOX_PREFIX, else _INBOX.<LOADPOOL_NATS_USER> (the
// inbox deploy/accounts.conf lets that user read), else nats.go's own.
func inboxPrefix(c Config) (string, error) {
	if c.NATSInboxPrefix != "" {
		for _, tok := range strings.Split(c.NATSInboxPrefix, ".") {
			if err := messages.ValidToken("LOADPOOL_NATS_INBOX_PREFIX token", tok); err != nil {
				return "", err
			}
		}
		return c.NATSInboxPrefix, nil
	}
	if c.NATSUser == "" {
		return "", nil
	}
	if err := messages.ValidToken("LOADPOOL_NATS_USER", c.NATSUser); err != nil {
		return "", fmt.Errorf("%v (it names the inbox _INBOX.<user>; set LOADPOOL_NATS_INBOX_PREFIX instead)", err)
	}
	return "_INBOX." + c.NATSUser, nil
}

// redactURLs is a comma-separated list of URLs with their passwords
// replaced by xxxxx (url.URL.Redacted), for logs and errors.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		} else if strings.Contains(p, "@") {
			parts[i] = "(a URL that does not parse; its credentials are not shown)"
		}
	}
	return strings.Join(parts, ",")
}
