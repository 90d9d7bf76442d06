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
		var m map[string]int
		m["x"]++ // a nil map: panics
		return nil, nil
	})
	v, err := h(context.Background(), nil)
	if v != nil || err == nil {
		t.Fatalf("guarded = %v, %v", v, err)
	}
	if e := apiError(err); e.Code != 500 || !strings.Contains(e.Message, "assignment to entry in nil map") {
		t.Errorf("apiError = %+v", e)
	}
}
