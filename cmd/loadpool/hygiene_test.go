package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestPlaceholderPasswordRefused: a password left at the example files'
// placeholder stops the command before it connects, naming the variable.
func TestPlaceholderPasswordRefused(t *testing.T) {
	t.Setenv("LOADPOOL_NATS_URL", "nats://127.0.0.1:1")
	t.Setenv("LOADPOOL_NATS_USER", "client")
	t.Setenv("LOADPOOL_NATS_PASSWORD", "change-me-client-password")
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"status"}, &out, &errs); code == 0 || !strings.Contains(errs.String(), "LOADPOOL_NATS_PASSWORD is still the placeholder") {
		t.Errorf("exit %d: %s", code, errs.String())
	}
	if strings.Contains(errs.String(), "change-me-client-password") {
		t.Errorf("the refusal shows the password: %s", errs.String())
	}
}

// TestWarningsOnceAndRedacted: http:// and INSECURE settings are warned
// about once per process, and the URL's password is not logged.
func TestWarningsOnceAndRedacted(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for range 3 {
		warnPlaintext(log, "LOADPOOL_TEST_URL", "http://vcl:s3cret@vcenter.example.edu/sdk")
		warnPlaintext(log, "LOADPOOL_TEST_HTTPS_URL", "https://vcenter.example.edu/sdk")
		warnInsecure(log, "LOADPOOL_TEST_INSECURE", true)
		warnInsecure(log, "LOADPOOL_TEST_SECURE", false)
	}
	got := buf.String()
	if strings.Count(got, "level=WARN") != 2 || strings.Count(got, "LOADPOOL_TEST_URL") != 1 || strings.Count(got, "LOADPOOL_TEST_INSECURE") != 1 {
		t.Errorf("want one warning each for the http URL and the INSECURE setting:\n%s", got)
	}
	if strings.Contains(got, "s3cret") {
		t.Errorf("a password was logged:\n%s", got)
	}
	if got := redactURLs("nats://u:pw@a:4222,tls://b:4222"); strings.Contains(got, "pw") || !strings.Contains(got, "tls://b:4222") {
		t.Errorf("redactURLs = %q", got)
	}
}
