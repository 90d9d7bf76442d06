//go:build dev

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loadpool/loadpool/pool"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/loaderworker/lab"
	"github.com/loadpool/loadpool/loaderworker/xcat"
	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
	"github.com/loadpool/loadpool/osworker/linux"
	"github.com/loadpool/loadpool/osworker/windows"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/ssh"
)

// devOptions are the demo's flags.
type devOptions struct {
	port      int
	computers int
	samples   bool
	exitAfter bool
	bootDelay time.Duration
	backends  bool
}

func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "dev", "[flags]", "Run everything in one process: an embedded NATS server, a coordinator, loader and OS\nworkers, and SIMULATED computers (in-process SSH servers on loopback). Submits sample jobs,\nshows their progress, then keeps serving so you can submit more with `nats req` or\n`loadpool submit`. Nothing is kept: the data lives in a temporary directory.")
	var o devOptions
	fs.IntVar(&o.port, "nats-port", 4222, "port of the embedded NATS server (0: any free port)")
	fs.IntVar(&o.computers, "computers", 4, "simulated Linux virtual machines (vm-01...)")
	fs.BoolVar(&o.samples, "samples", true, "submit the sample jobs")
	fs.BoolVar(&o.exitAfter, "exit-after-samples", false, "exit when the sample jobs have ended (exit 1 if one ended otherwise than expected)")
	fs.DurationVar(&o.bootDelay, "boot-delay", 2*time.Second, "how long a simulated computer takes to boot")
	fs.BoolVar(&o.backends, "backends", true, "also run the vCenter simulator and the xCAT emulator behind the real vmware and xcat provisioners")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if o.computers < 1 || o.computers > 5000 {
		return fmt.Errorf("%w: --computers must be 1 to 5000", errUsage)
	}
	cfg, log, err := setup()
	if err != nil {
		return err
	}
	log, closeLog, err := demoLogs(cfg, log, stdout)
	if err != nil {
		return err
	}
	defer closeLog()
	cfg.observeDefaults("dev")
	dir, err := os.MkdirTemp("", "loadpool-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.DataDir, cfg.NATSURL, cfg.NATSPort = dir, "", o.port
	if o.port != 0 && !portFree(cfg.NATSHost, o.port) {
		log.Warn("port taken: the embedded NATS server uses a free port instead", "port", o.port)
		cfg.NATSPort = 0
	}
	cn, err := connect(cfg, log, "dev", true)
	if err != nil {
		return err
	}
	defer cn.Close()
	d, err := newDevLab(ctx, cfg, log, cn.nc, o)
	if err != nil {
		return err
	}
	defer d.Stop()
	obs, err := startObservers(ctx, cfg, log, cn.nc, true)
	if err != nil {
		return err
	}
	defer obs.Stop()
	printWelcome(stdout, cn.url)
	obs.print(stdout)
	return d.run(ctx, cn, stdout, o)
}

// devLab is everything `loadpool dev` runs.
type devLab struct {
	stack
	sim       *devlab.Sim
	computers []*devlab.Computer
	cleanups  []func()
	// enrolled is every demo computer as the inventory knows it.
	enrolled []messages.Computer
	subj     messages.Subjects
	nc       *nats.Conn
}

func newDevLab(ctx context.Context, cfg Config, log *slog.Logger, nc *nats.Conn, o devOptions) (*devLab, error) {
	d := &devLab{sim: devlab.NewSim("ubuntu-24.04", "debian-12", "rocky-9"), subj: cfg.subjects(), nc: nc}
	signer, err := devlab.NewSigner()
	if err != nil {
		return nil, err
	}
	if err := d.addComputers(o, signer.PublicKey(), log); err != nil {
		d.Stop()
		return nil, err
	}
	c, err := startCoordinator(ctx, cfg, log, nc)
	if err != nil {
		d.Stop()
		return nil, err
	}
	d.add(c)
	labProv, err := lab.New(lab.Inventory{Computers: []lab.Computer{{Name: "lab-01", Images: []string{"ubuntu-24.04"}}}})
	if err != nil {
		d.Stop()
		return nil, err
	}
	for name, prov := range map[string]loaderworker.Provisioner{devlab.SimName: d.sim, lab.Name: labProv} {
		if err := d.startLoader(ctx, cfg, log, name, prov); err != nil {
			d.Stop()
			return nil, err
		}
	}
	if o.backends {
		if err := d.startVMware(ctx, cfg, log); err != nil {
			d.Stop()
			return nil, err
		}
		if err := d.startXCAT(ctx, cfg, log, "blade-01"); err != nil {
			d.Stop()
			return nil, err
		}
	}
	if err := d.startOS(ctx, cfg, log, linux.Module{}, signer); err != nil {
		d.Stop()
		return nil, err
	}
	if o.backends {
		if err := d.startOS(ctx, cfg, log, windows.Module{}, signer); err != nil {
			d.Stop()
			return nil, err
		}
	}
	return d, nil
}

func (d *devLab) addComputers(o devOptions, key ssh.PublicKey, log *slog.Logger) error {
	quiet := quietLogger()
	mk := func(name, provisioner, typ string) (*devlab.Computer, error) {
		c, err := devlab.NewComputer(devlab.Config{Name: name, Shell: &devlab.Linux{Starting: time.Second},
			Authorized: key, BootDelay: o.bootDelay, Logger: quiet})
		if err != nil {
			return nil, err
		}
		d.computers = append(d.computers, c)
		d.enrolled = append(d.enrolled, messages.Computer{Name: name, Provisioner: provisioner, Type: typ, Address: c.Addr()})
		return c, nil
	}
	for i := 1; i <= o.computers; i++ {
		c, err := mk(fmt.Sprintf("vm-%02d", i), devlab.SimName, messages.TypeVirtualMachine)
		if err != nil {
			return err
		}
		d.sim.Add(c)
	}
	if o.backends {
		// Behind the simulated vCenter and the xCAT emulator: booted by them.
		for _, name := range []string{"vmvc-01", demoSnapshotVM} {
			if _, err := mk(name, "vmware", messages.TypeVirtualMachine); err != nil {
				return err
			}
		}
		if _, err := mk("blade-01", xcat.Name, messages.TypeBlade); err != nil {
			return err
		}
		d.enrolled[len(d.enrolled)-1].Attributes = map[string]string{"node": "blade-01"}
		if err := d.addWindowsComputer(o, key); err != nil {
			return err
		}
	}
	if err := d.addHungComputer(o, key); err != nil {
		return err
	}
	// A standalone lab computer: installed by hand, already running, its
	// host key known (pinned in its enrolment).
	c, err := mk("lab-01", lab.Name, messages.TypeLab)
	if err != nil {
		return err
	}
	if err := c.Boot("ubuntu-24.04"); err != nil {
		return err
	}
	d.enrolled[len(d.enrolled)-1].HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.HostKey())))
	log.Info("simulated computers ready", "virtual_machines", o.computers, "lab_computers", 1)
	return nil
}

func (d *devLab) startLoader(ctx context.Context, cfg Config, log *slog.Logger, name string, prov loaderworker.Provisioner) error {
	w, err := loaderworker.New(d.nc, loaderworker.Config{Subjects: d.subj, Name: name, Evidence: cfg.Evidence, Logger: log.With("role", "loader"), Settings: devSettings(cfg, 0)}, prov)
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	d.add(w)
	return nil
}

func (d *devLab) startOS(ctx context.Context, cfg Config, log *slog.Logger, m osworker.Module, signer ssh.Signer) error {
	user := "root"
	if m.Family() == windows.Family {
		user = "Administrator"
	}
	w, err := osworker.New(d.nc, osworker.Config{Subjects: d.subj, SSHUser: user, Signer: signer, DialTimeout: 5 * time.Second, Logger: log.With("role", "os"), Settings: devSettings(cfg, 64)}, m, nil)
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	d.add(w)
	return nil
}

// Stop stops the workers and coordinator, the simulated back ends, then
// the simulated computers.
func (d *devLab) Stop() {
	d.stack.Stop()
	for _, f := range slices.Backward(d.cleanups) {
		f()
	}
	for _, c := range d.computers {
		c.Close()
	}
}

func (d *devLab) computer(name string) *devlab.Computer {
	for _, c := range d.computers {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// sample is a job the demo submits and the state it should end in.
type sample struct {
	spec messages.JobSpec
	want string
	what string
	prep func()
}

func (d *devLab) samples() []sample {
	vm := linuxJob
	flaky := vm("demo-retry", "vm-02", "debian-12")
	missing := vm("demo-fail", "vm-03", "no-such-image")
	labJob := messages.JobSpec{ID: "demo-lab", Computer: messages.Computer{Name: "lab-01"}, Image: messages.Image{Name: "ubuntu-24.04", OSFamily: "linux"}}
	out := []sample{
		{spec: vm("demo-linux", "vm-01", "ubuntu-24.04"), want: messages.StateReady, what: "a Linux VM: load, wait for SSH and systemd, configure"},
		{spec: flaky, want: messages.StateReady, what: "a load that fails transiently once: retry, then ready on attempt 2",
			prep: func() { d.sim.FailNext("vm-02", 1) }},
		{spec: missing, want: messages.StateFailed, what: "an image the provisioner does not have: fail at once"},
		{spec: labJob, want: messages.StateReady, what: "a standalone lab computer: never reimaged, only checked and configured"},
	}
	out = append(out, d.backendSamples()...)
	out = append(out, d.windowsSamples()...)
	out = append(out, d.evidenceSamples()...)
	var kept []sample
	for _, s := range out {
		if d.computer(s.spec.Computer.Name) != nil {
			kept = append(kept, s)
		}
	}
	return kept
}

func printWelcome(w io.Writer, url string) {
	fmt.Fprintf(w, `
loadpool dev — everything in one process, with SIMULATED computers.
NATS: %s   (the stock nats CLI works without flags when this is 127.0.0.1:4222)

Watch:   nats sub 'vcl.event.>'      nats micro ls      nats req vcl.job.list '{}'
         LOADPOOL_NATS_URL=%s loadpool status

`, url, url)
}

// run submits the samples, prints every event, and serves until ctx ends
// (or, with exitAfter, until the samples have ended).
func (d *devLab) run(ctx context.Context, cn *conn, w io.Writer, o devOptions) error {
	var mu sync.Mutex
	computerEvents := strings.TrimSuffix(d.subj.ComputerEvent(">"), ">")
	sub, err := d.nc.Subscribe(d.subj.Events(), func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(m.Subject, computerEvents) {
			var ev messages.ComputerEvent
			if json.Unmarshal(m.Data, &ev) == nil {
				printComputerEvent(w, ev)
			}
			return
		}
		var ev messages.Event
		if json.Unmarshal(m.Data, &ev) == nil {
			printEvent(w, ev)
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	cl := coordinator.NewClient(d.nc, d.subj)
	if err := d.enrol(ctx, cl, w, &mu); err != nil {
		return err
	}
	if o.samples {
		bad, err := d.runSamples(ctx, cl, w, &mu)
		if err != nil {
			return err
		}
		mu.Lock()
		d.printInventoryTips(w, cn.url)
		mu.Unlock()
		if o.exitAfter && bad > 0 {
			return fmt.Errorf("%d sample job(s) did not end as expected: %w", bad, errFailed)
		}
		if o.exitAfter {
			return nil
		}
	}
	all, err := allComputers(ctx, cl, messages.ComputerListRequest{}, 0)
	mu.Lock()
	fmt.Fprintf(w, "\nServing on %s; submit more jobs, or stop with Ctrl-C. The lab (SIMULATED computers):\n$ loadpool computers\n", cn.url)
	if err != nil {
		fmt.Fprintf(w, "(listing the inventory failed: %v)\n", explain(err))
	}
	_ = printComputers(w, all)
	if last := d.computer(fmt.Sprintf("vm-%02d", o.computers)); last != nil {
		fmt.Fprintf(w, "\nFor example (a job names an enrolled computer, nothing else about it):\n"+
			"  export LOADPOOL_NATS_URL=%s\n"+
			"  loadpool submit --computer %s --image rocky-9 --os-family linux --reload always --wait\n"+
			"  nats req %s '{\"computer\":\"%s\",\"image\":{\"name\":\"debian-12\",\"os_family\":\"linux\"}}'\n",
			cn.url, last.Name(), d.subj.JobSubmit(), last.Name())
	}
	mu.Unlock()
	<-ctx.Done()
	return nil
}

// runSamples submits the samples, waits for them, then tells the
// inventory's story; it returns how many ended otherwise than expected.
func (d *devLab) runSamples(ctx context.Context, cl *coordinator.Client, w io.Writer, mu *sync.Mutex) (int, error) {
	samples := d.samples()
	for _, s := range samples {
		if s.prep != nil {
			s.prep()
		}
		mu.Lock()
		fmt.Fprintf(w, "sample %s: %s\n", s.spec.ID, s.what)
		mu.Unlock()
		if _, err := cl.Submit(ctx, s.spec); err != nil {
			return 0, fmt.Errorf("submitting sample %s: %w", s.spec.ID, explain(err))
		}
	}
	bad := 0
	for _, s := range samples {
		rec, err := waitEnded(ctx, cl, s.spec.ID)
		if err != nil {
			return 0, err
		}
		mu.Lock()
		mark := "as expected"
		if rec.State != s.want {
			mark = "UNEXPECTED (wanted " + s.want + ")"
			bad++
		}
		fmt.Fprintf(w, "\nsample %s ended %s after %d attempt(s): %s\n", rec.ID, rec.State, rec.Attempt, mark)
		printRecord(w, rec)
		mu.Unlock()
	}
	more, err := d.inventoryStory(ctx, cl, w, mu)
	return bad + more, err
}

// waitEnded follows the job's events until it ends, then reads its record.
func waitEnded(ctx context.Context, cl *coordinator.Client, id string) (messages.JobRecord, error) {
	for {
		rec, err := cl.Get(ctx, id)
		if err != nil {
			return rec, explain(err)
		}
		if messages.Terminal(rec.State) {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// quietLogger drops the simulated computers' own logs.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// devSettings are the demo's pool settings: the environment's, a short
// grace, and at least minConcurrency steps at once.
func devSettings(cfg Config, minConcurrency int) pool.Config {
	s := cfg.Config.WithDefaults()
	s.Grace = 2 * time.Second
	s.Concurrency = max(s.Concurrency, minConcurrency)
	return s
}
