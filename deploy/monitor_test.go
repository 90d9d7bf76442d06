package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/nats-io/nats.go"
)

// TestMonitorCommands: every NATS CLI command of the README's "Watching
// with the NATS CLI" works for the monitor user, by the NATS requests the
// command makes (the nats CLI is not installed here), and the server
// refuses the monitor nothing on the way.
func TestMonitorCommands(t *testing.T) {
	t.Parallel()
	addr := startConf(t, "nats-single.conf", nil).ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	coord, err := coordinator.New(connectAs(t, addr, "coordinator").Conn, coordinator.Config{Subjects: subj, Name: "coord", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.Stop)
	poolConsumers(t, ctx, connectAs(t, addr, "coordinator").Conn, devlab.SimName, linux.Family)
	comp := startWorkers(t, ctx, connectAs(t, addr, "loader").Conn, connectAs(t, addr, "os").Conn)
	m := connectAs(t, addr, "monitor")
	events, err := m.SubscribeSync(subj.Events()) // nats sub 'vcl.event.>'
	if err != nil {
		t.Fatal(err)
	}
	computerEvents, err := m.SubscribeSync(subj.ComputerEvent(">")) // nats sub 'vcl.event.computer.>'
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	cl := coordinator.NewClient(connectAs(t, addr, "client").Conn, subj)
	if _, err := cl.Submit(ctx, enroll(t, ctx, connectAs(t, addr, "operator").Conn, jobSpec("res-1042", comp.Name(), devlab.SimName, comp.Addr()))); err != nil {
		t.Fatal(err)
	}
	if _, err := events.NextMsg(10 * time.Second); err != nil {
		t.Errorf("nats sub 'vcl.event.>': %v", err)
	}
	if _, err := computerEvents.NextMsg(10 * time.Second); err != nil {
		t.Errorf("nats sub 'vcl.event.computer.>': %v", err)
	}
	mc := coordinator.NewClient(m.Conn, subj)
	if err := mc.Follow(ctx, "res-1042", func(ev messages.Event) bool { return !messages.Terminal(ev.State) }); err != nil {
		t.Errorf("loadpool watch res-1042: %v", err)
	}
	for _, c := range []struct{ command, subject, body, want string }{
		{"nats micro info loadpool-coordinator", "$SRV.INFO." + coordinator.ServiceName, "", `"name":"loadpool-coordinator"`},
		{"nats micro stats loadpool-coordinator", "$SRV.STATS." + coordinator.ServiceName, "", `"type":"io.nats.micro.v1.stats_response"`},
		{"nats micro info loadpool-os-linux", "$SRV.INFO.loadpool-os-linux", "", `"name":"loadpool-os-linux"`},
		{"nats micro info loadpool-loader-" + devlab.SimName, "$SRV.INFO.loadpool-loader-" + devlab.SimName, "", `"name":"loadpool-loader-` + devlab.SimName + `"`},
		{"nats req vcl.status.postload.linux ''", subj.Status(messages.StepPostload, linux.Family), "", `"pool":"linux"`},
		{`nats req vcl.job.get '{"id":"res-1042"}'`, subj.JobGet(), `{"id":"res-1042"}`, `"state":"ready"`},
		{`nats req vcl.job.list '{"state":"ready","limit":20}'`, subj.JobList(), `{"state":"ready","limit":20}`, `"id":"res-1042"`},
		{"nats stream info VCL_LOAD", "$JS.API.STREAM.INFO." + subj.LoadStream(), "", `"name":"VCL_LOAD"`},
		{"nats consumer info VCL_LOAD loader-" + devlab.SimName, "$JS.API.CONSUMER.INFO." + subj.LoadStream() + "." + subj.LoaderConsumer(devlab.SimName), "", `"type":"io.nats.jetstream.api.v1.consumer_info_response"`},
		{"nats kv get vcl_jobs res-1042 (bind)", "$JS.API.STREAM.INFO.KV_" + subj.JobsBucket(), "", `"allow_direct":true`},
		{"nats kv get vcl_jobs res-1042 (get)", "$JS.API.DIRECT.GET.KV_" + subj.JobsBucket() + ".$KV." + subj.JobsBucket() + ".res-1042", "", `"id":"res-1042"`},
		{`nats req vcl.computer.list '{}'`, subj.ComputerList(), `{}`, `"name":"` + comp.Name() + `"`},
		{`nats req vcl.computer.get '{"name":"vm-01"}'`, subj.ComputerGet(), `{"name":"` + comp.Name() + `"}`, `"name":"` + comp.Name() + `"`},
		{"nats stream subjects KV_vcl_inventory", "$JS.API.STREAM.INFO.KV_" + subj.InventoryBucket(), `{"subjects_filter":">"}`, `"$KV.vcl_inventory.` + comp.Name() + `"`},
		{"nats kv get vcl_inventory vm-01 (get)", "$JS.API.DIRECT.GET.KV_" + subj.InventoryBucket() + ".$KV." + subj.InventoryBucket() + "." + comp.Name(), "", `"name":"` + comp.Name() + `"`},
	} {
		r, err := m.RequestWithContext(ctx, c.subject, []byte(c.body))
		if err != nil || !strings.Contains(string(r.Data), c.want) {
			t.Errorf("%s (%s): %v %.200s", c.command, c.subject, err, reply(r))
		}
	}
	microLs(t, m)
	m.noViolations(t)
}

// microLs: nats micro ls pings every service and lists who answers; the
// coordinator, the loader and the OS worker (three accounts) all do.
func microLs(t *testing.T, m *roleConn) {
	t.Helper()
	inbox := m.NewInbox()
	sub, err := m.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := m.PublishRequest("$SRV.PING", inbox, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{coordinator.ServiceName: false, "loadpool-loader-" + devlab.SimName: false, "loadpool-os-linux": false}
	for seen := 0; seen < len(want); {
		r, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Errorf("nats micro ls ($SRV.PING): answers %v: %v", want, err)
			return
		}
		var ping struct{ Name string }
		if json.Unmarshal(r.Data, &ping) == nil && !want[ping.Name] {
			if _, ok := want[ping.Name]; ok {
				want[ping.Name], seen = true, seen+1
			}
		}
	}
}

func reply(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf("%s %v", m.Data, m.Header)
}
