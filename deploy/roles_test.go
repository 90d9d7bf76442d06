package deploy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/osworker/modtest"
	"github.com/loadpool/loadpool/pool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/ssh"
)

// TestPipelineWithRoleUsers runs the real pipeline on a server started
// from nats-single.conf, each role on its own user: a job reaches ready
// through a hung boot that the OS worker power-resets through the loader;
// a request that no worker finishes becomes a max-deliveries retry and is
// removed; a cancel aborts. No role is refused anything on the way.
func TestPipelineWithRoleUsers(t *testing.T) {
	t.Parallel()
	var vl violationLog
	addr := startConf(t, "nats-single.conf", nil, &vl).ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := map[string]*roleConn{}
	for _, r := range roles {
		conns[r] = connectAs(t, addr, r)
	}
	coord, err := coordinator.New(conns["coordinator"].Conn, coordinator.Config{Subjects: subj, Name: "coord", Logger: quiet, Evidence: true, Durations: true, Settings: pool.Config{AckWait: time.Second, MaxDeliver: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.Stop)
	// The workers start before any consumer exists: they wait for the
	// coordinator to make their pool's at its first job, and bind.
	comp := startWorkers(t, ctx, conns["loader"].Conn, conns["os"].Conn)

	cl := coordinator.NewClient(conns["client"].Conn, subj)
	if _, err := cl.Submit(ctx, enroll(t, ctx, conns["operator"].Conn, jobSpec("deploy-ready", comp.Name(), devlab.SimName, comp.Addr()))); err != nil {
		t.Fatal(err)
	}
	events := watch(t, ctx, conns["client"].Conn, "deploy-ready")
	rec, err := cl.Get(ctx, "deploy-ready")
	if err != nil || rec.State != messages.StateReady {
		t.Fatalf("job = %+v, %v; events %v", rec, err, events)
	}
	if !strings.Contains(strings.Join(events, "\n"), "power reset of "+comp.Name()) {
		t.Errorf("no power reset event from the loader among %v", events)
	}
	if !strings.Contains(string(messages.Encode(rec.Steps)), `"evidence":[`) {
		t.Errorf("the loader saved no evidence of the power reset into the object store: %s", messages.Encode(rec.Steps))
	}

	undeliverable(t, ctx, conns)
	canceled(t, ctx, cl, conns["operator"].Conn)
	monitorReads(t, ctx, conns["monitor"].Conn)
	pageReads(t, ctx, conns["coordinator"].Conn, "deploy-ready")
	vl.none(t)
	for _, r := range roles {
		conns[r].noViolations(t)
	}
	vl.none(t)
}

// poolConsumers makes the pools' consumers as the coordinator (workers
// only bind to them): the loader pool and the OS family of the test.
func poolConsumers(t *testing.T, ctx context.Context, nc *nats.Conn, provisioner, family string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for step, name := range map[string]string{messages.StepLoad: provisioner, messages.StepPostload: family} {
		if _, err := (pool.Consumer{Subjects: subj, Step: step, Pool: name}).Ensure(ctx, js, false); err != nil {
			t.Fatal(err)
		}
	}
}

// startWorkers starts a loader (devlab.Sim) as user loader and a Linux OS
// worker as user os, and returns the simulated computer they serve; its
// first boot hangs.
func startWorkers(t *testing.T, ctx context.Context, loaderNC, osNC *nats.Conn) *devlab.Computer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := devlab.NewComputer(devlab.Config{Name: "vm-01", Shell: &devlab.Linux{}, Authorized: signer.PublicKey(),
		BootDelay: 20 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(comp.Close)
	comp.HangBoots(1)
	sim := devlab.NewSim("ubuntu-24.04")
	sim.Add(comp)
	lw, err := loaderworker.New(loaderNC, loaderworker.Config{Subjects: subj, Name: devlab.SimName, Logger: quiet, Evidence: true, Settings: pool.Config{Grace: time.Second, BindOnly: true}}, sim)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lw.Stop)
	profiles := fmt.Sprintf(`[{"family": %q, "set": %s}]`, linux.Family, modtest.TinyProfile)
	ow, err := osworker.New(osNC, osworker.Config{Subjects: subj, SSHUser: "root", Signer: signer, DialTimeout: 5 * time.Second, PowerTimeout: 10 * time.Second, Profiles: []byte(profiles), Logger: quiet, Settings: pool.Config{Grace: time.Second, BindOnly: true}}, linux.Module{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ow.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ow.Stop)
	return comp
}

// watch follows a job's events as loadpool watch does (coordinator
// Client.Follow: stream message gets, no consumer) until one says the job
// ended; it returns them.
func watch(t *testing.T, ctx context.Context, nc *nats.Conn, id string) []string {
	t.Helper()
	var out []string
	err := coordinator.NewClient(nc, subj).Follow(ctx, id, func(ev messages.Event) bool {
		out = append(out, ev.Source+": "+ev.Message)
		return !messages.Terminal(ev.State)
	})
	if err != nil {
		t.Fatalf("events so far %v: %v", out, err)
	}
	return out
}

// undeliverable: a loader that gives every delivery back exhausts
// MaxDeliver; the coordinator reads the request (advisory), turns it into
// a retry (the job, of one attempt, fails) and deletes it from VCL_LOAD.
func undeliverable(t *testing.T, ctx context.Context, conns map[string]*roleConn) {
	t.Helper()
	spec := enroll(t, ctx, conns["operator"].Conn, jobSpec("deploy-stall", "vm-stall", "stall", "127.0.0.1:9"))
	if _, err := coordinator.NewClient(conns["client"].Conn, subj).Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(conns["loader"].Conn)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, subj.LoadStream(), subj.LoaderConsumer("stall"))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Nak() })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cc.Stop(); <-cc.Closed() }()
	rec := waitEnded(t, ctx, coordinator.NewClient(conns["monitor"].Conn, subj), spec.ID)
	if rec.State != messages.StateFailed || len(rec.Steps) != 1 || rec.Steps[0].Reason != "max-deliveries" {
		t.Fatalf("undeliverable job = %+v", rec)
	}
	mjs, err := jetstream.New(conns["monitor"].Conn)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the undeliverable request to leave VCL_LOAD", func() bool {
		st, err := mjs.Stream(ctx, subj.LoadStream())
		return err == nil && st.CachedInfo().State.Msgs == 0
	})
}

// canceled: a client cancels a job whose load nobody takes; the
// coordinator aborts it and frees the computer.
func canceled(t *testing.T, ctx context.Context, cl *coordinator.Client, op *nats.Conn) {
	t.Helper()
	spec := enroll(t, ctx, op, jobSpec("deploy-cancel", "vm-cancel", "nobody", "127.0.0.1:9"))
	if _, err := cl.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	rec, err := cl.Cancel(ctx, spec.ID, "deploy test")
	if err != nil || rec.State != messages.StateCanceled {
		t.Fatalf("cancel = %+v, %v", rec, err)
	}
	spec.ID = "deploy-cancel-2"
	if _, err := cl.Submit(ctx, spec); err != nil {
		t.Errorf("the canceled job's computer is still locked: %v", err)
	}
}

func waitEnded(t *testing.T, ctx context.Context, cl *coordinator.Client, id string) messages.JobRecord {
	t.Helper()
	var rec messages.JobRecord
	poll.Until(t, "job "+id+" to end", func() bool {
		var err error
		rec, err = cl.Get(ctx, id)
		return err == nil && messages.Terminal(rec.State)
	})
	return rec
}

// monitorReads: the monitor user reads micro stats (coordinator, loader),
// stream and consumer info, KV records (a job, with the host key its
// post-load learned) and job.list.
func monitorReads(t *testing.T, ctx context.Context, nc *nats.Conn) {
	t.Helper()
	for _, svc := range []string{coordinator.ServiceName, "loadpool-loader-" + devlab.SimName} {
		m, err := nc.RequestWithContext(ctx, "$SRV.STATS."+svc, nil)
		if err != nil || !strings.Contains(string(m.Data), `"name":"`+svc+`"`) {
			t.Errorf("micro stats of %s: %v", svc, err)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, subj.EventStream()); err != nil {
		t.Errorf("stream info: %v", err)
	}
	if _, err := js.Consumer(ctx, subj.LoadStream(), subj.LoaderConsumer(devlab.SimName)); err != nil {
		t.Errorf("consumer info: %v", err)
	}
	kv, err := js.KeyValue(ctx, subj.JobsBucket())
	if err != nil {
		t.Fatalf("kv: %v", err)
	}
	if e, err := kv.Get(ctx, "deploy-ready"); err != nil || !strings.Contains(string(e.Value()), `"state":"ready"`) {
		t.Errorf("kv get: %v", err)
	}
	// The OS worker reported the host key it learned after the reload,
	// in the job's post-load step.
	if e, err := kv.Get(ctx, "deploy-ready"); err != nil || !strings.Contains(string(e.Value()), `"learned_host_key":{"key":"ssh-ed25519 `) {
		t.Errorf("no learned host key of vm-01 in the job record (%v)", err)
	}
	if jobs, err := coordinator.NewClient(nc, subj).List(ctx, messages.ListRequest{Limit: 10}); err != nil || len(jobs) < 3 {
		t.Errorf("job.list = %d jobs, %v", len(jobs), err)
	}
}

// TestDenials: what a role must not do is refused with a permissions
// violation, and only the five users get in.
func TestDenials(t *testing.T) {
	t.Parallel()
	var vl violationLog
	addr := startConf(t, "nats-single.conf", nil, &vl).ClientURL()
	cases := []struct{ name, role, kind, subject string }{
		{"client cannot dispatch a load", "client", "Publish", "vcl.load.request.x"},
		{"client cannot read job records in KV", "client", "Publish", "$JS.API.DIRECT.GET.KV_vcl_jobs.$KV.vcl_jobs.job-1"},
		{"client cannot write job records", "client", "Publish", "$KV.vcl_jobs.job-1"},
		{"client cannot pull a loader pool", "client", "Publish", "$JS.API.CONSUMER.MSG.NEXT.VCL_LOAD.loader-vmware"},
		{"client cannot read requests", "client", "Subscription", "vcl.load.request.>"},
		{"loader cannot submit", "loader", "Publish", "vcl.job.submit"},
		{"loader cannot serve job.submit", "loader", "Subscription", "vcl.job.submit"},
		{"loader cannot report a post-load", "loader", "Publish", "vcl.postload.result"},
		{"loader cannot pull an OS pool", "loader", "Publish", "$JS.API.CONSUMER.MSG.NEXT.VCL_POSTLOAD.os-linux"},
		{"os cannot report a load", "os", "Publish", "vcl.load.result"},
		{"os cannot abort", "os", "Publish", "vcl.abort.job-1"},
		{"os cannot read job records", "os", "Publish", "$JS.API.STREAM.MSG.GET.KV_vcl_jobs"},
		{"monitor cannot submit", "monitor", "Publish", "vcl.job.submit"},
		{"monitor cannot cancel", "monitor", "Publish", "vcl.job.cancel"},
		{"monitor cannot write KV", "monitor", "Publish", "$KV.vcl_jobs.job-1"},
		{"monitor cannot delete a stream", "monitor", "Publish", "$JS.API.STREAM.DELETE.VCL_EVENTS"},
		{"coordinator cannot delete a stream", "coordinator", "Publish", "$JS.API.STREAM.DELETE.VCL_EVENTS"},
		{"coordinator cannot purge a stream", "coordinator", "Publish", "$JS.API.STREAM.PURGE.VCL_LOAD"},
		{"coordinator cannot forge results", "coordinator", "Publish", "vcl.load.result"},
	}
	t.Cleanup(func() { // the server logs what it refuses (TestPipelineWithRoleUsers relies on it)
		vl.mu.Lock()
		defer vl.mu.Unlock()
		if len(vl.lines) < len(cases) {
			t.Errorf("the server logged %d violations for %d refusals: %q", len(vl.lines), len(cases), vl.lines)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := connectAs(t, addr, tc.role)
			var err error
			if tc.kind == "Subscription" {
				_, err = c.SubscribeSync(tc.subject)
			} else {
				err = c.Publish(tc.subject, []byte("{}"))
			}
			if err == nil {
				err = c.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			c.violation(t, tc.kind, tc.subject)
		})
	}
	t.Run("client cannot open KV vcl_jobs", func(t *testing.T) {
		t.Parallel()
		c := connectAs(t, addr, "client")
		js, err := jetstream.New(c.Conn)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := js.KeyValue(ctx, subj.JobsBucket()); err == nil {
			t.Error("the client opened KV vcl_jobs")
		}
		c.violation(t, "Publish", "$JS.API.STREAM.INFO.KV_vcl_jobs")
	})
	t.Run("loader cannot submit through the client", func(t *testing.T) {
		t.Parallel()
		c := connectAs(t, addr, "loader")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := coordinator.NewClient(c.Conn, subj).Submit(ctx, jobSpec("x", "vm-x", "vmware", "")); err == nil {
			t.Error("the loader submitted a job")
		}
		c.violation(t, "Publish", "vcl.job.submit")
	})
	t.Run("a loader cannot create the streams", func(t *testing.T) {
		t.Parallel()
		c := connectAs(t, addr, "loader")
		lw, err := loaderworker.New(c.Conn, loaderworker.Config{Subjects: subj, Name: "vmware", Logger: quiet}, &loaderworker.Fake{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := lw.Start(ctx); err == nil {
			t.Error("a loader started without streams; the coordinator makes them")
		}
		lw.Stop()
		c.violation(t, "Publish", "$JS.API.STREAM.CREATE.VCL_LOAD", "$JS.API.STREAM.UPDATE.VCL_LOAD")
	})
	for name, opt := range map[string]nats.Option{
		"anonymous is refused":      nil,
		"wrong password is refused": nats.UserInfo("client", "wrong"),
		"unknown user is refused":   nats.UserInfo("admin", os.Getenv(passwordVar("client"))),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var opts []nats.Option
			if opt != nil {
				opts = append(opts, opt)
			}
			nc, err := nats.Connect(addr, opts...)
			if err == nil {
				nc.Close()
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect = %v, want %v", err, nats.ErrAuthorization)
			}
		})
	}
}
