package coordinator

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestHandlerPanicIs500: a panicking endpoint handler answers 500 with a
// sentence, and the coordinator goes on.
func TestHandlerPanicIs500(t *testing.T) {
	t.Parallel()
	c := &Coordinator{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := c.guarded("get", func(context.Context, []byte) (any, error) {
		panic("index out of range [3] with length 3")
	})
	v, err := h(context.Background(), nil)
	if v != nil || err == nil {
		t.Fatalf("guarded = %v, %v", v, err)
	}
	if e := apiError(err); e.Code != 500 || !strings.Contains(e.Message, "index out of range [3]") {
		t.Errorf("apiError = %+v", e)
	}
}
