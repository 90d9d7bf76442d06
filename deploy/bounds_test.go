package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/messages"
)

// TestBoundedInputs (issue 10, attack 5): what a client submits is bounded
// before it becomes a record or a request, and a spec's problems are all
// named in one 400. Against a server from nats-single.conf, as the client
// user.
func TestBoundedInputs(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "nats-single.conf")
	ctx, cancel := context.WithTimeout(tg.ctx, time.Minute)
	defer cancel()
	long := strings.Repeat("a", 60000)
	for i := range 20 {
		spec := jobSpec(fmt.Sprintf("long-%d", i), fmt.Sprintf("vm-long-%d", i), "vmware", long)
		_, err := tg.client.Submit(ctx, spec)
		wantBadRequest(t, err, "computer.address")
	}
	if _, err := tg.client.List(ctx, messages.ListRequest{}); err != nil {
		t.Errorf("the default job.list after twenty submits with a 60,000-character address: %v", err)
	}
	spec := jobSpec("busy-poll", "vm-poll", "vmware", "")
	spec.Image.WaitProfile = []byte(`{"poll": "1ns"}`)
	_, err := tg.client.Submit(ctx, spec)
	wantBadRequest(t, err, "image.wait_profile.poll")
	spec = jobSpec("two-problems", "", "vmware", "")
	spec.Image.Name = ""
	_, err = tg.client.Submit(ctx, spec)
	wantBadRequest(t, err, "computer.name", "image.name")
}

func wantBadRequest(t *testing.T, err error, fields ...string) {
	t.Helper()
	var api *coordinator.APIError
	if !errors.As(err, &api) || api.Code != 400 {
		t.Errorf("want a 400 naming %v, got %.200v", fields, err)
		return
	}
	for _, f := range fields {
		if !strings.Contains(api.Message, f+":") {
			t.Errorf("the 400 does not name %s: %.300s", f, api.Message)
		}
	}
}
