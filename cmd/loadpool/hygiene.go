package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
)

// placeholderPrefix starts every password of deploy/env/*.env.example.
const placeholderPrefix = "change-me"

// refusePlaceholder refuses a password still set to the example files'
// placeholder: the process would run with a password anyone can read.
func refusePlaceholder(variable, value string) error {
	if strings.HasPrefix(strings.ToLower(value), placeholderPrefix) {
		return fmt.Errorf("%s is still the placeholder of the example environment file (%s…): set the real password (for NATS users, the one nats-server's environment gives the role)", variable, placeholderPrefix)
	}
	return nil
}

// warned remembers the warnings logged, so each is logged once per process
// (loadpool all runs several pools from one environment).
var warned sync.Map

func warnOnce(log *slog.Logger, key, msg string, args ...any) {
	if _, loaded := warned.LoadOrStore(key, true); !loaded {
		log.Warn(msg, args...)
	}
}

// warnPlaintext logs, once, that a provisioner's API is reached over
// http:// (its credentials travel in clear).
func warnPlaintext(log *slog.Logger, variable, raw string) {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return
	}
	warnOnce(log, variable, "plaintext http: credentials and commands travel unencrypted; use https://", "variable", variable, "url", u.Redacted())
}

// warnInsecure logs, once, that certificate verification is off.
func warnInsecure(log *slog.Logger, variable string, on bool) {
	if on {
		warnOnce(log, variable, "TLS certificate verification is off: anyone on the path can pose as the server; give its CA instead", "variable", variable)
	}
}
