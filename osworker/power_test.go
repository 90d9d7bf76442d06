package osworker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/embednats/natstest"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/nats-io/nats.go"
)

func TestNATSPower(t *testing.T) {
	t.Parallel()
	srv := natstest.New(t)
	nc := natstest.Connect(t, srv.URL())
	subj := messages.Subjects{}
	got := make(chan messages.PowerRequest, 1)
	sub, err := nc.Subscribe(subj.Power("lab"), func(m *nats.Msg) {
		var pr messages.PowerRequest
		_ = messages.Decode(m.Data, &pr, true)
		got <- pr
		if pr.Action == messages.PowerOff {
			reply := nats.NewMsg(m.Reply)
			reply.Header.Set("Nats-Service-Error-Code", "400")
			reply.Header.Set("Nats-Service-Error", "bad")
			reply.Data = messages.Encode(messages.ErrorBody{Error: "computer.name: unknown"})
			_ = m.RespondMsg(reply)
			return
		}
		_ = m.Respond(messages.Encode(messages.PowerReply{Computer: pr.Computer.Name, Action: pr.Action, State: "on", Evidence: "/shots/1.png"}))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	req := request(2, messages.Image{Name: "i", OSFamily: "linux"})
	req.Computer.Provisioner = "lab"
	power := osworker.NATSPower(nc, subj, req, 5*time.Second)
	ctx := context.Background()

	rep, err := power(ctx, messages.PowerReset, true)
	if err != nil || rep.State != "on" || rep.Evidence != "/shots/1.png" {
		t.Fatalf("reset = %+v, %v", rep, err)
	}
	if pr := <-got; pr.JobID != "j" || pr.Attempt != 2 || !pr.Evidence || pr.Action != messages.PowerReset || pr.Computer.Name != "c" {
		t.Fatalf("request sent = %+v", pr)
	}
	if _, err := power(ctx, messages.PowerOff, false); err == nil || !strings.Contains(err.Error(), "computer.name: unknown") {
		t.Fatalf("error reply = %v, want the endpoint's error", err)
	}
	<-got
	other := req
	other.Computer.Provisioner = "nobody"
	if _, err := osworker.NATSPower(nc, subj, other, time.Second)(ctx, messages.PowerReset, false); err == nil || !strings.Contains(err.Error(), "vcl.power.nobody") {
		t.Fatalf("no responders = %v, want an error naming the subject", err)
	}
}
