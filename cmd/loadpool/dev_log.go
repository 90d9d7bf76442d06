//go:build dev

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/lmittmann/tint"
)

// demoLogs makes `loadpool dev` readable on a terminal: the events are
// what it prints, the full JSON log goes to a file it names, and only
// warnings and errors also reach the terminal. With LOADPOOL_LOG_LEVEL=debug,
// or when stdout is not a terminal, the logger is left as configured.
func demoLogs(cfg Config, log *slog.Logger, stdout io.Writer) (*slog.Logger, func(), error) {
	f, ok := stdout.(*os.File)
	if !ok || cfg.LogLevel == "debug" {
		return log, func() {}, nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return log, func() {}, nil
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel)) // checked by setup
	name := filepath.Join(os.TempDir(), fmt.Sprintf("loadpool-dev-%d.log", os.Getpid()))
	file, err := os.Create(name)
	if err != nil {
		return nil, nil, fmt.Errorf("demo log file: %w (set LOADPOOL_LOG_LEVEL=debug to log to the terminal instead)", err)
	}
	fmt.Fprintf(stdout, "Logs (JSON): %s   (warnings also here; LOADPOOL_LOG_LEVEL=debug logs everything to the terminal)\n", name)
	l := slog.New(teeHandler{
		slog.NewJSONHandler(file, &slog.HandlerOptions{Level: lvl}),
		tint.NewTextHandler(os.Stderr, &tint.Options{Level: slog.LevelWarn, TimeFormat: time.TimeOnly}),
	})
	slog.SetDefault(l)
	return l, func() { _ = file.Close() }, nil
}

// teeHandler sends each record to every handler that takes its level.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
