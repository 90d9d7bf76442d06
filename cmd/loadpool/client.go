package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/messages"
)

// clientConn connects to the configured NATS (never an embedded one: a
// client talks to the system that runs elsewhere).
func clientConn(name string) (*conn, Config, error) {
	cfg, log, err := setup()
	if err != nil {
		return nil, cfg, err
	}
	if cfg.NATSURL == "" {
		cfg.NATSURL = fmt.Sprintf("nats://%s:%d", cfg.NATSHost, cfg.NATSPort)
	}
	cn, err := connect(cfg, log, name, false)
	return cn, cfg, err
}

func runSubmit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "submit", "[--file JOB.json | flags] [--wait]", "Submit a job for an enrolled computer. The job is read from --file (JSON as in the README;\n- is standard input) or built from the flags. --wait follows its events and exits 1 unless it ends ready.")
	file := fs.String("file", "", "job spec JSON file (- for standard input)")
	var spec messages.JobSpec
	fs.StringVar(&spec.ID, "id", "", "idempotency key (a reservation id); generated when empty")
	fs.StringVar(&spec.Computer.Name, "computer", "", "an enrolled computer's name (loadpool computers lists them)")
	fs.StringVar(&spec.Image.Name, "image", "", "image name")
	fs.StringVar(&spec.Image.OSFamily, "os-family", "", "OS family of the image: linux, windows")
	fs.StringVar(&spec.Image.OSVersion, "os-version", "", "OS version (picks the wait profile: 7, 2008, xp, 24.04...)")
	fs.BoolVar(&spec.Image.Sysprep, "sysprep", false, "the image is sysprepped (Windows)")
	fs.IntVar(&spec.Image.ReloadMinutes, "reload-minutes", 0, "the image's load-time estimate in minutes")
	fs.StringVar(&spec.Image.Strategy, "strategy", "", "provisioner-specific load strategy (vmware: clone or snapshot)")
	fs.IntVar(&spec.MaxAttempts, "max-attempts", 0, "install attempts (default 3)")
	fs.StringVar(&spec.Reload, "reload", "", "if-needed (default) or always")
	wait := fs.Bool("wait", false, "follow the job until it ends; exit 1 unless it ends ready")
	timeout := fs.Duration("timeout", 0, "with --wait: give up following after this long (0: never)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *file != "" {
		var err error
		if spec, err = readSpec(*file); err != nil {
			return err
		}
	}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cn, cfg, err := clientConn("submit")
	if err != nil {
		return err
	}
	defer cn.Close()
	rec, err := coordinator.NewClient(cn.nc, cfg.subjects()).Submit(ctx, spec)
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(stdout, "job %s %s (attempt %d of %d)\n", rec.ID, rec.State, rec.Attempt, rec.MaxAttempts)
	if !*wait {
		return nil
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	return follow(ctx, cn, cfg, rec.ID, stdout)
}

func readSpec(path string) (messages.JobSpec, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, messages.MaxBodyBytes+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return messages.JobSpec{}, fmt.Errorf("--file: %v", err)
	}
	spec, err := messages.DecodeJobSpec(data)
	if err != nil {
		return spec, fmt.Errorf("%w: %s: %v", errUsage, path, err)
	}
	return spec, nil
}

// explain turns a coordinator error into a sentence for the terminal.
func explain(err error) error {
	var api *coordinator.APIError
	if errors.As(err, &api) {
		return fmt.Errorf("the coordinator answered %d: %s", api.Code, api.Message)
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "no responders") {
		return fmt.Errorf("%v: is a coordinator running on this NATS (loadpool all, coordinator or dev)?", err)
	}
	return err
}

func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "status", "[ID] [--state S] [--limit N] [--json]", "Show one job with its history, or list jobs (the last changed first).")
	state := fs.String("state", "", "list only jobs in this state ("+strings.Join(messages.States, ", ")+")")
	limit := fs.Int("limit", 20, "list at most this many jobs")
	asJSON := fs.Bool("json", false, "print the job record(s) as JSON")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	cn, cfg, err := clientConn("status")
	if err != nil {
		return err
	}
	defer cn.Close()
	cl := coordinator.NewClient(cn.nc, cfg.subjects())
	if fs.NArg() == 1 {
		rec, err := cl.Get(ctx, fs.Arg(0))
		if err != nil {
			return explain(err)
		}
		if *asJSON {
			return printJSON(stdout, rec)
		}
		printRecord(stdout, rec)
		return nil
	}
	jobs, err := cl.List(ctx, messages.ListRequest{State: *state, Limit: *limit})
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		return printJSON(stdout, messages.ListReply{Jobs: jobs})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tATTEMPT\tCOMPUTER\tIMAGE\tUPDATED\tERROR")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", j.ID, j.State, j.Attempt, j.MaxAttempts,
			j.Spec.Computer.Name, j.Spec.Image.Name, j.Updated.Local().Format(time.DateTime), j.Error)
	}
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printRecord(w io.Writer, r messages.JobRecord) {
	fmt.Fprintf(w, "job %s: %s, attempt %d of %d\n", r.ID, r.State, r.Attempt, r.MaxAttempts)
	comp := r.Spec.Computer.Name
	if c := r.Enrolled; c != nil {
		comp += " (" + c.Provisioner + ", " + c.Type + ", " + c.SSHAddress() + ")"
	}
	if r.ForceReload {
		comp += ", reload always (tainted, or not known to run the image)"
	}
	fmt.Fprintf(w, "  computer %s  image %s (%s %s)\n", comp, r.Spec.Image.Name, r.Spec.Image.OSFamily, r.Spec.Image.OSVersion)
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	for _, s := range r.Steps {
		fmt.Fprintf(w, "  attempt %d %-8s %-5s %6s  %s  [%s]\n", s.Attempt, s.Step, s.Outcome,
			s.Finished.Sub(s.Started).Round(time.Second), s.Detail, s.Worker)
		if s.Profile != nil {
			fmt.Fprintf(w, "      profile %s: delay %s, answer %s, ready %s, poll %s, on timeout %s\n", s.Profile.Name,
				s.Profile.InitialDelay, s.Profile.AnswerTimeout, s.Profile.ReadyTimeout, s.Profile.Poll, s.Profile.OnTimeout)
		}
	}
}

func runWatch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "watch", "ID", "Print a job's events, from its first, until it ends. Exits 1 unless it ends ready.")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: give the job id", errUsage)
	}
	if err := messages.ValidJobID("ID", fs.Arg(0)); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cn, cfg, err := clientConn("watch")
	if err != nil {
		return err
	}
	defer cn.Close()
	if _, err := coordinator.NewClient(cn.nc, cfg.subjects()).Get(ctx, fs.Arg(0)); err != nil {
		return explain(err)
	}
	return follow(ctx, cn, cfg, fs.Arg(0), stdout)
}

func runCancel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "cancel", "ID [--reason TEXT]", "Cancel a job: its running step is aborted and its computer freed.")
	reason := fs.String("reason", "canceled from the command line", "why (recorded in the job)")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: give the job id", errUsage)
	}
	cn, cfg, err := clientConn("cancel")
	if err != nil {
		return err
	}
	defer cn.Close()
	rec, err := coordinator.NewClient(cn.nc, cfg.subjects()).Cancel(ctx, fs.Arg(0), *reason)
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(stdout, "job %s %s\n", rec.ID, rec.State)
	return nil
}

// follow prints the job's events from the first one until one says the
// job ended; it returns errFailed unless the job ended ready.
func follow(ctx context.Context, cn *conn, cfg Config, id string, w io.Writer) error {
	var last messages.Event
	err := coordinator.NewClient(cn.nc, cfg.subjects()).Follow(ctx, id, func(ev messages.Event) bool {
		printEvent(w, ev)
		last = ev
		return !messages.Terminal(ev.State)
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("stopped following job %s before it ended (it goes on: loadpool watch %s)", id, id)
	case err != nil:
		return fmt.Errorf("reading events of %s: %v", id, err)
	case last.State != messages.StateReady:
		return errFailed
	}
	return nil
}

func printEvent(w io.Writer, ev messages.Event) {
	step := ev.Step
	if step == "" {
		step = "-"
	}
	fmt.Fprintf(w, "%s  %-8s attempt %d  %-8s %-11s %s  [%s]\n", ev.Time.Local().Format(time.TimeOnly), ev.JobID,
		ev.Attempt, step, ev.State, ev.Message, ev.Source)
	printETA(w, ev)
}
