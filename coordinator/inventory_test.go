package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"
	"github.com/loadpool/loadpool/messages"
)

func enrolled(name string) messages.Computer {
	return messages.Computer{Name: name, Provisioner: "vmware", Type: messages.TypeVirtualMachine, Address: "10.1.0.17:2222",
		Attributes: map[string]string{"vm_path": "/DC0/vm/lab/" + name}}
}

// byName is a job for an enrolled computer, naming it only.
func byName(id, computer string) messages.JobSpec {
	s := spec(id, computer)
	s.Computer = messages.Computer{Name: computer}
	return s
}

func (e *env) computer(name string) messages.Enrollment {
	e.t.Helper()
	c, err := e.cl.GetComputer(ctx(e.t), name)
	if err != nil {
		e.t.Fatalf("get %s: %v", name, err)
	}
	return c
}

func (e *env) waitComputer(name, state string) messages.Enrollment {
	e.t.Helper()
	var got messages.Enrollment
	poll.Until(e.t, name+" in state "+state, func() bool {
		got = e.computer(name)
		return got.State == state
	})
	return got
}

// refused asserts err is an API error with code and a message containing
// every part.
func refused(t *testing.T, what string, err error, code int, parts ...string) {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: want a %d refusal, got %v", what, code, err)
	}
	if ae.Code != code {
		t.Errorf("%s: code %d (%s), want %d", what, ae.Code, ae.Message, code)
	}
	for _, p := range parts {
		if !strings.Contains(ae.Message, p) {
			t.Errorf("%s: %q lacks %q", what, ae.Message, p)
		}
	}
}

// The lifecycle of design.md, transition by transition, with the
// refusals; every change is an event on vcl.event.computer.<name>.
func TestComputerLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	events, err := e.nc.SubscribeSync(subj.ComputerEvent("vm-1"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	e.worker(messages.StepLoad, "vmware", func(messages.Request) reply {
		return reply{outcome: messages.OutcomeReady, detail: "cloned", wait: release}
	})
	post := make(chan messages.Outcome, 10)
	e.worker(messages.StepPostload, "windows", func(messages.Request) reply {
		return reply{outcome: <-post, detail: "post-load"}
	})
	ct := ctx(t)

	// enrol: available; the same enrolment again is a no-op, another one 409
	got, err := e.cl.AddComputer(ct, enrolled("vm-1"))
	if err != nil || got.State != messages.ComputerAvailable {
		t.Fatalf("add: %+v %v", got, err)
	}
	if _, err := e.cl.AddComputer(ct, enrolled("vm-1")); err != nil {
		t.Fatalf("same enrolment again: %v", err)
	}
	other := enrolled("vm-1")
	other.Address = "10.9.9.9"
	_, err = e.cl.AddComputer(ct, other)
	refused(t, "add with other fields", err, 409, "already enrolled", "computer.set")

	// unknown computer, fields that differ, a host key chosen by a job
	_, err = e.cl.Submit(ct, byName("j-0", "vm-404"))
	refused(t, "unknown computer", err, 404, "vm-404 is not enrolled", "loadpool computer add vm-404")
	s := byName("j-0", "vm-1")
	s.Computer.Address = "192.0.2.7"
	_, err = e.cl.Submit(ct, s)
	refused(t, "another address", err, 400, "computer.address", "10.1.0.17:2222")
	s = byName("j-0", "vm-1")
	s.Computer.Attributes = map[string]string{"vm_path": "/DC0/vm/other"}
	_, err = e.cl.Submit(ct, s)
	refused(t, "another placement", err, 400, "computer.attributes.vm_path")
	s = byName("j-0", "vm-1")
	s.Image.HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	_, err = e.cl.Submit(ct, s)
	refused(t, "image.host_key", err, 400, "image.host_key", "enrolment")

	// available -> reloading (a job holds it); set and remove refused while held
	e.submit(byName("j-1", "vm-1"))
	c := e.waitComputer("vm-1", messages.ComputerReloading)
	if c.Job != "j-1" {
		t.Fatalf("held by %q", c.Job)
	}
	addr := "10.1.0.99"
	_, err = e.cl.SetComputer(ct, messages.ComputerSet{Name: "vm-1", Address: &addr})
	refused(t, "set while held", err, 409, "held by job j-1")
	_, err = e.cl.RemoveComputer(ct, "vm-1")
	refused(t, "remove while held", err, 409, "held by job j-1")
	_, err = e.cl.ReleaseComputer(ct, "vm-1", false)
	refused(t, "release while reloading", err, 409, "not in use")

	// drain with a live job: maintenance at once, the job finishes first
	if c, err = e.cl.DrainComputer(ct, "vm-1", "disk replaced"); err != nil || c.State != messages.ComputerMaintenance || c.Job != "j-1" {
		t.Fatalf("drain with a live job: %+v %v", c, err)
	}
	close(release)
	post <- messages.OutcomeReady
	e.waitState("j-1", messages.StateReady)
	c = e.waitComputerJob("vm-1", "j-1", true)
	if c.State != messages.ComputerMaintenance || !c.Tainted || c.Image != "win7-sp1-v3" {
		t.Fatalf("after the job, drained: %+v", c)
	}
	// submit to maintenance: 409 with the reason
	_, err = e.cl.Submit(ct, byName("j-2", "vm-1"))
	refused(t, "submit to maintenance", err, 409, "maintenance", "disk replaced", "undrain")
	// undrain: its last job ended ready, so it is in use (handed out)
	if c, err = e.cl.UndrainComputer(ct, "vm-1"); err != nil || c.State != messages.ComputerInUse {
		t.Fatalf("undrain: %+v %v", c, err)
	}
	_, err = e.cl.UndrainComputer(ct, "vm-1")
	refused(t, "undrain twice", err, 409, "not in maintenance")

	// inuse -> available (release used: stays tainted)
	if c, err = e.cl.ReleaseComputer(ct, "vm-1", true); err != nil || c.State != messages.ComputerAvailable || !c.Tainted {
		t.Fatalf("release used: %+v %v", c, err)
	}
	// a failing job: reloading -> failed, with the reason
	post <- messages.OutcomeFail
	e.submit(byName("j-3", "vm-1"))
	e.waitState("j-3", messages.StateFailed)
	c = e.waitComputer("vm-1", messages.ComputerFailed)
	if !c.Tainted || c.Image != "" || !strings.Contains(c.Reason, "post-load") {
		t.Fatalf("failed: %+v", c)
	}
	// a canceled job: -> available, tainted
	hold := make(chan struct{})
	defer close(hold)
	e.worker(messages.StepPostload, "linux", func(messages.Request) reply { return reply{wait: hold} })
	lin := byName("j-4", "vm-1")
	lin.Image = messages.Image{Name: "debian-12", OSFamily: "linux"}
	e.submit(lin)
	e.waitState("j-4", messages.StatePostloading)
	if _, err := e.cl.Cancel(ct, "j-4", "reservation deleted"); err != nil {
		t.Fatal(err)
	}
	c = e.waitComputerJob("vm-1", "j-4", false)
	if c.State != messages.ComputerAvailable || !c.Tainted {
		t.Fatalf("after cancel: %+v", c)
	}
	// free: set (the image becomes unknown), then remove
	if c, err = e.cl.SetComputer(ct, messages.ComputerSet{Name: "vm-1", Address: &addr}); err != nil || c.Address != addr {
		t.Fatalf("set: %+v %v", c, err)
	}
	if _, err := e.cl.RemoveComputer(ct, "vm-1"); err != nil {
		t.Fatal(err)
	}
	_, err = e.cl.GetComputer(ct, "vm-1")
	refused(t, "get removed", err, 404, "not enrolled")

	var msgs []string
	for {
		m, err := events.NextMsg(100 * time.Millisecond)
		if err != nil {
			break
		}
		var ev messages.ComputerEvent
		if err := messages.Decode(m.Data, &ev, true); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, ev.State+": "+ev.Message)
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{"available: enrolled", "reloading: held by job j-1", "maintenance: drained: disk replaced (job j-1 finishes first)",
		"maintenance: job j-1 ended ready", "inuse: undrained", "available: released (used", "failed: job j-3 ended failed",
		"available: job j-4 ended canceled", "enrolment changed", "removed from the inventory"} {
		if !strings.Contains(joined, want) {
			t.Errorf("events lack %q:\n%s", want, joined)
		}
	}
}

// waitComputerJob waits until the enrolment records the end of job (its
// job and a state other than reloading); ended false accepts any state
// but reloading.
func (e *env) waitComputerJob(name, job string, maintenance bool) messages.Enrollment {
	e.t.Helper()
	var got messages.Enrollment
	poll.Until(e.t, name+" to record the end of "+job, func() bool {
		got = e.computer(name)
		if got.Job != job {
			return false
		}
		if maintenance {
			return got.Image != "" || got.Reason != "disk replaced"
		}
		return got.State != messages.ComputerReloading
	})
	return got
}

// Invariant 8: a computer handed to a reservation is reloaded for the next
// one whatever its job's reload says, unless its release said the
// reservation never used it.
func TestUsedComputerAlwaysReloaded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	loads := e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.enroll(enrolled("vm-8"))
	run := func(id string) messages.Request {
		t.Helper()
		e.submit(byName(id, "vm-8"))
		e.waitState(id, messages.StateReady)
		e.waitComputerJob("vm-8", id, false)
		for _, r := range loads.requests() {
			if r.JobID == id {
				return r
			}
		}
		t.Fatalf("no load request for %s", id)
		return messages.Request{}
	}
	// the first load: the image on it is unknown, so reimaged
	if r := run("r-1"); r.Reload != messages.ReloadAlways || r.Computer.Address != "10.1.0.17:2222" || r.Computer.Attributes["vm_path"] != "/DC0/vm/lab/vm-8" {
		t.Fatalf("first load: reload %q computer %+v", r.Reload, r.Computer)
	}
	// handed out (inuse, tainted): the next job reloads although if-needed
	if r := run("r-2"); r.Reload != messages.ReloadAlways {
		t.Fatalf("second job after a ready one: reload %q, want always", r.Reload)
	}
	if _, err := e.cl.ReleaseComputer(ctx(t), "vm-8", false); err != nil {
		t.Fatal(err)
	}
	if r := run("r-3"); r.Reload != messages.ReloadIfNeeded {
		t.Fatalf("after release used:false: reload %q, want if-needed (may skip)", r.Reload)
	}
	if _, err := e.cl.ReleaseComputer(ctx(t), "vm-8", true); err != nil {
		t.Fatal(err)
	}
	if r := run("r-4"); r.Reload != messages.ReloadAlways {
		t.Fatalf("after release used:true: reload %q, want always", r.Reload)
	}
	_, err := e.cl.ReleaseComputer(ctx(t), "vm-8", true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.cl.ReleaseComputer(ctx(t), "vm-8", true)
	refused(t, "release of an available computer", err, 409, "not in use")
	var out any
	err = e.cl.do(ctx(t), subj.ComputerRelease(), []byte(`{"name":"vm-8"}`), &out)
	refused(t, "release without used", err, 400, "used: is required")
}

// The host key an OS worker learned after a reimage is written into the
// enrolment when the job ends ready, and the next job's requests carry it.
func TestLearnedHostKeyGoesIntoTheEnrolment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	key := &messages.LearnedHostKey{Key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBB", Attempt: 1, Recorded: time.Now().UTC().Truncate(time.Second)}
	posts := make(chan messages.Request, 4)
	e.worker(messages.StepPostload, "windows", func(r messages.Request) reply {
		posts <- r
		return reply{} // answered below, with the key
	})
	e.enroll(enrolled("vm-k"))
	e.submit(byName("k-1", "vm-k"))
	r := <-posts
	if r.Computer.LearnedHostKey != nil || !r.Reloaded {
		t.Fatalf("first post-load: %+v reloaded %v", r.Computer.LearnedHostKey, r.Reloaded)
	}
	res := resultFor(r, messages.OutcomeReady, "configured")
	key.JobID = "k-1"
	res.LearnedHostKey = key
	publishResult(t, e.js, res)
	e.waitState("k-1", messages.StateReady)
	c := e.waitComputerJob("vm-k", "k-1", false)
	if c.LearnedHostKey == nil || c.LearnedHostKey.Key != key.Key || c.LearnedHostKey.JobID != "k-1" {
		t.Fatalf("enrolment's learned key: %+v", c.LearnedHostKey)
	}
	e.submit(byName("k-2", "vm-k"))
	r = <-posts
	if r.Computer.LearnedHostKey == nil || r.Computer.LearnedHostKey.Key != key.Key {
		t.Fatalf("the next job's request carries %+v", r.Computer.LearnedHostKey)
	}
	// an operator's key replaces what was learned
	pinned := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPINNED"
	publishResult(t, e.js, resultFor(r, messages.OutcomeFail, "no"))
	e.waitState("k-2", messages.StateFailed)
	e.waitComputer("vm-k", messages.ComputerFailed)
	c, err := e.cl.SetComputer(ctx(t), messages.ComputerSet{Name: "vm-k", HostKey: &pinned})
	if err != nil || c.HostKey != pinned || c.LearnedHostKey != nil {
		t.Fatalf("set host key: %+v %v", c, err)
	}
}

// A coordinator that dies between a job's hold and record and its first
// dispatch: after a restart the load is dispatched (the job holds its
// computer) and the computer's state agrees with the job's end.
func TestCrashBeforeLaunch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	crashed := make(chan struct{})
	first := e.coordinatorWith(Config{StepCap: 2 * time.Second}, func(c *Coordinator) {
		c.hookBeforeLaunch = func(messages.JobRecord) error { close(crashed); return errors.New("crash") }
	})
	loader := e.worker(messages.StepLoad, "vmware", always(messages.OutcomeReady))
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.enroll(enrolled("vm-c"))
	e.submit(byName("c-1", "vm-c"))
	<-crashed
	first.Stop()
	kv, err := e.js.KeyValue(ctx(t), subj.InventoryBucket())
	if err != nil {
		t.Fatal(err)
	}
	en, err := kv.Get(ctx(t), "vm-c")
	if err != nil {
		t.Fatal(err)
	}
	var before messages.Enrollment
	if err := json.Unmarshal(en.Value(), &before); err != nil || before.State != messages.ComputerReloading || heldJob(before) != "c-1" {
		t.Fatalf("before the restart: %+v %v", before, err)
	}
	jobs, err := e.js.KeyValue(ctx(t), subj.JobsBucket())
	if err != nil {
		t.Fatal(err)
	}
	var queued messages.JobRecord
	if r, err := jobs.Get(ctx(t), "c-1"); err != nil || json.Unmarshal(r.Value(), &queued) != nil || queued.State != messages.StateLoading || len(queued.Steps) != 0 {
		t.Fatalf("before the restart the job is %+v (%v), want loading with no step", queued, err)
	}
	if n := len(loader.attempts("c-1")); n != 0 {
		t.Fatalf("%d loads dispatched before the restart, want none", n)
	}
	e.coordinator(Config{StepCap: 2 * time.Second})
	rec := e.waitState("c-1", messages.StateReady)
	c := e.waitComputerJob("vm-c", "c-1", false)
	if c.State != messages.ComputerInUse || !c.Tainted || c.Image != rec.Spec.Image.Name {
		t.Fatalf("after the restart the computer says %+v for a job %s", c, rec.State)
	}
}

// Bulk enrolment, and computer.list pages by name, never above the
// server's max payload, following next to the end.
func TestComputerListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.coordinator(Config{})
	const n = 600
	comps := make([]messages.Computer, n)
	for i := range comps {
		comps[i] = enrolled(fmt.Sprintf("pc-%04d", i))
		comps[i].Attributes["note"] = strings.Repeat("x", 900) // about 2 KiB each: 1.2 MB in all
		comps[i].Attributes["rack"] = strings.Repeat("y", 900)
	}
	got, err := e.cl.ImportComputers(ctx(t), comps)
	if err != nil || got.Added != n {
		t.Fatalf("import: %+v %v", got, err)
	}
	if again, err := e.cl.ImportComputers(ctx(t), comps); err != nil || again.Unchanged != n || again.Added != 0 {
		t.Fatalf("import again: %+v %v", again, err)
	}
	poll.Until(t, "the index to see every computer", func() bool { return e.coordinatorsIndexLen() == n })
	var names []string
	after, pages := "", 0
	for {
		msg, err := e.nc.Request(subj.ComputerList(), messages.Encode(messages.ComputerListRequest{Limit: MaxComputerPage, After: after}), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(msg.Data)) > e.nc.MaxPayload() {
			t.Fatalf("page of %d bytes exceeds max payload %d", len(msg.Data), e.nc.MaxPayload())
		}
		var page messages.ComputerListReply
		if err := json.Unmarshal(msg.Data, &page); err != nil { // a page may exceed the 64 KiB of a request body
			t.Fatal(err)
		}
		pages++
		for _, c := range page.Computers {
			names = append(names, c.Name)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(names) != n || names[0] != "pc-0000" || names[n-1] != fmt.Sprintf("pc-%04d", n-1) || pages < 2 {
		t.Fatalf("listed %d names in %d pages (%v ... )", len(names), pages, names[:min(3, len(names))])
	}
	small, err := e.cl.ListComputers(ctx(t), messages.ComputerListRequest{Limit: 5, After: "pc-0100"})
	if err != nil || len(small.Computers) != 5 || small.Computers[0].Name != "pc-0101" || small.Next != "pc-0105" {
		t.Fatalf("a page of 5 after pc-0100: %d %v next %q", len(small.Computers), err, small.Next)
	}
	var out any
	err = e.cl.do(ctx(t), subj.ComputerList(), []byte(`{"state":"busy"}`), &out)
	refused(t, "list by unknown state", err, 400, "available, reloading, inuse, maintenance, failed")
	err = e.cl.do(ctx(t), subj.ComputerAdd(), []byte(`{"computers":[{"name":"a","provisioner":"vmware","type":"virtualmachine"},{"name":"b","provisioner":"vmware","type":"desk"}]}`), &out)
	refused(t, "bulk add with a bad entry", err, 400, "computers[1].type")
	if _, err := e.cl.GetComputer(ctx(t), "a"); err == nil {
		t.Error("a bad bulk add enrolled its good entries")
	}
}

func (e *env) coordinatorsIndexLen() int {
	r, err := e.cl.ListComputers(ctx(e.t), messages.ComputerListRequest{Limit: MaxComputerPage})
	if err != nil {
		return -1
	}
	n := len(r.Computers)
	for r.Next != "" {
		if r, err = e.cl.ListComputers(ctx(e.t), messages.ComputerListRequest{Limit: MaxComputerPage, After: r.Next}); err != nil {
			return -1
		}
		n += len(r.Computers)
	}
	return n
}

// A computer drained while its job ran records the job's end once: the
// sweeps after it change nothing (no rewrite, no event, every second).
func TestDrainedEndRecordedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	co := e.coordinator(Config{})
	release := make(chan struct{})
	e.worker(messages.StepLoad, "vmware", func(messages.Request) reply {
		return reply{outcome: messages.OutcomeReady, detail: "cloned", wait: release}
	})
	e.worker(messages.StepPostload, "windows", always(messages.OutcomeReady))
	e.submit(spec("d-1", "vm-d"))
	e.waitComputer("vm-d", messages.ComputerReloading)
	if _, err := e.cl.DrainComputer(ctx(t), "vm-d", "fan noise"); err != nil {
		t.Fatal(err)
	}
	close(release)
	e.waitState("d-1", messages.StateReady)
	e.waitComputerJob("vm-d", "d-1", true)
	inv, err := e.js.KeyValue(ctx(t), subj.InventoryBucket())
	if err != nil {
		t.Fatal(err)
	}
	before, err := inv.Get(ctx(t), "vm-d")
	if err != nil {
		t.Fatal(err)
	}
	co.sweep(ctx(t))
	co.sweep(ctx(t))
	after, err := inv.Get(ctx(t), "vm-d")
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision() != before.Revision() {
		t.Fatalf("the sweeps rewrote the drained computer: revision %d -> %d: %s", before.Revision(), after.Revision(), after.Value())
	}
}
