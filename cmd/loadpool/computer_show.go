package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/messages"
)

func runComputerShow(ctx context.Context, args []string, stdout io.Writer) error {
	fs := verbFlags(stdout, "show")
	asJSON := fs.Bool("json", false, "print the enrolment as JSON (the value of KV vcl_inventory)")
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	return inventory("show", func(cl *coordinator.Client) error {
		e, err := cl.GetComputer(ctx, name)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, e)
		}
		printEnrollment(stdout, e)
		return nil
	})
}

// printEnrollment prints a computer for a person to read.
func printEnrollment(w io.Writer, e messages.Enrollment) {
	fmt.Fprintf(w, "computer %s: %s\n", e.Name, describeState(e))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	row("provisioner", e.Provisioner)
	row("type", e.Type)
	row("address", orDefault(e.Address, e.SSHAddress()+" (the name, port 22)"))
	row("control", orDefault(e.Control, messages.ControlSSH+" (default)"))
	row("host key", hostKeyLine(e.Computer))
	if len(e.Attributes) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(e.Attributes)) {
			kv = append(kv, k+"="+e.Attributes[k])
		}
		row("attributes", strings.Join(kv, " "))
	}
	row("image", orDefault(e.Image, "- (none loaded yet)"))
	row("job", orDefault(e.Job, "-"))
	row("since", sinceText(e.Since))
	tw.Flush()
}

func hostKeyLine(c messages.Computer) string {
	switch {
	case c.HostKey != "":
		return c.HostKey + " (pinned)"
	case c.LearnedHostKey != nil:
		l := c.LearnedHostKey
		return fmt.Sprintf("%s (learned after job %s attempt %d reloaded it, %s)", l.Key, l.JobID, l.Attempt, l.Recorded.Local().Format(time.DateTime))
	}
	return "- (learned right after its next reload)"
}

// describeState is the state with what it means for the next job.
func describeState(e messages.Enrollment) string {
	s := e.State
	switch e.State {
	case messages.ComputerMaintenance:
		s += " (new jobs refused"
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		s += ")"
	case messages.ComputerFailed:
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
	case messages.ComputerReloading:
		s += " (job " + e.Job + ")"
	case messages.ComputerInUse:
		s += " (handed to a reservation by job " + e.Job + "; loadpool computer release " + e.Name + " --used=true|false ends it)"
	}
	if e.Tainted {
		s += ", tainted: the next job reloads it"
	} else if e.State == messages.ComputerAvailable && e.Image != "" {
		s += ", not tainted: a job for " + e.Image + " may skip the reload"
	}
	return s
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func sinceText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// listFlags are the filters of computer list and computers.
type listFlags struct {
	state, provisioner string
	limit              int
	json               bool
}

func (l *listFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.state, "state", "", "only computers in this state ("+strings.Join(messages.ComputerStates, ", ")+")")
	fs.StringVar(&l.provisioner, "provisioner", "", "only computers of this provisioner")
	fs.IntVar(&l.limit, "limit", 0, "at most this many computers (0: all)")
	fs.BoolVar(&l.json, "json", false, `print {"computers": [...]} as JSON`)
}

func (l *listFlags) check() error {
	if l.state != "" && !messages.ValidComputerState(l.state) {
		return fmt.Errorf("%w: --state must be one of %s, not %q", errUsage, strings.Join(messages.ComputerStates, ", "), l.state)
	}
	if l.provisioner != "" {
		if err := messages.ValidToken("--provisioner", l.provisioner); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if l.limit < 0 {
		return fmt.Errorf("%w: --limit must be 0 (all) or more, not %d", errUsage, l.limit)
	}
	return nil
}

func runComputerList(ctx context.Context, args []string, stdout io.Writer) error {
	return listComputers(ctx, verbFlags(stdout, "list"), args, stdout)
}

func runComputers(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "computers", "[--state S] [--provisioner P] [--limit N] [--json]",
		"Print the lab inventory as a table: name, provisioner, state, image, tainted, job, since.")
	return listComputers(ctx, fs, args, stdout)
}

func listComputers(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var l listFlags
	l.register(fs)
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}
	return inventory("list", func(cl *coordinator.Client) error {
		all, err := allComputers(ctx, cl, messages.ComputerListRequest{State: l.state, Provisioner: l.provisioner}, l.limit)
		if err != nil {
			return err
		}
		if l.json {
			return printJSON(stdout, messages.ComputerListReply{Computers: all})
		}
		return printComputers(stdout, all)
	})
}

// allComputers follows computer.list's pages until the last, or limit
// computers (0: no limit).
func allComputers(ctx context.Context, cl *coordinator.Client, req messages.ComputerListRequest, limit int) ([]messages.Enrollment, error) {
	var all []messages.Enrollment
	for {
		if limit > 0 {
			req.Limit = min(limit-len(all), coordinator.DefaultComputerPage)
		}
		page, err := cl.ListComputers(ctx, req)
		if err != nil {
			return all, err
		}
		all = append(all, page.Computers...)
		if limit > 0 && len(all) >= limit {
			return all[:limit], nil
		}
		if page.Next == "" {
			return all, nil
		}
		if page.Next <= req.After {
			return all, fmt.Errorf("the coordinator's listing went backwards (next %q after %q): stopped after %d computers", page.Next, req.After, len(all))
		}
		req.After = page.Next
	}
}

// printComputers prints the inventory table.
func printComputers(w io.Writer, comps []messages.Enrollment) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROVISIONER\tSTATE\tIMAGE\tTAINTED\tJOB\tSINCE")
	for _, e := range comps {
		tainted := "no"
		if e.Tainted {
			tainted = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Provisioner, e.State, orDefault(e.Image, "-"), tainted,
			orDefault(e.Job, "-"), sinceText(e.Since))
	}
	return tw.Flush()
}

func runComputerImport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := verbFlags(stdout, "import")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: give one file (- for standard input), not %d arguments", errUsage, len(pos))
	}
	comps, err := readComputers(pos[0])
	if err != nil {
		return err
	}
	return inventory("import", func(cl *coordinator.Client) error {
		r, err := cl.ImportComputers(ctx, comps)
		if err != nil {
			fmt.Fprintf(stdout, "stopped after %d of %d computers: %d added, %d unchanged\n", r.Added+r.Unchanged, len(comps), r.Added, r.Unchanged)
			return err
		}
		fmt.Fprintf(stdout, "%d computers: %d added, %d unchanged\n", len(comps), r.Added, r.Unchanged)
		return nil
	})
}

// maxImportBytes bounds an import file (about 100,000 computers).
const maxImportBytes = 64 << 20

// readComputers reads and checks an import file: {"computers": [...]} or
// [...], each computer strictly (an unknown field is a typo).
func readComputers(path string) ([]messages.Computer, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(data) > maxImportBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d MiB: split it", errUsage, path, maxImportBytes>>20)
	}
	comps, err := decodeComputers(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, path, err)
	}
	return comps, nil
}

func decodeComputers(data []byte) ([]messages.Computer, error) {
	var raw []json.RawMessage
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return nil, errors.New(`is empty: want {"computers": [...]} or a JSON array of computers`)
	case data[0] == '[':
		if err := strictJSON(data, &raw); err != nil {
			return nil, err
		}
	case data[0] == '{':
		var file struct {
			Computers []json.RawMessage `json:"computers"`
		}
		if err := strictJSON(data, &file); err != nil {
			return nil, fmt.Errorf(`%v (want {"computers": [...]})`, err)
		}
		raw = file.Computers
	default:
		return nil, errors.New(`is not JSON: want {"computers": [...]} or a JSON array of computers`)
	}
	if len(raw) == 0 {
		return nil, errors.New("lists no computers")
	}
	comps := make([]messages.Computer, len(raw))
	seen := make(map[string]int, len(raw))
	for i, m := range raw {
		field := fmt.Sprintf("computers[%d]", i)
		if err := strictJSON(m, &comps[i]); err != nil {
			return nil, fmt.Errorf("%s: %v", field, err)
		}
		if err := comps[i].ValidateEnrollment(field); err != nil {
			return nil, err
		}
		if j, dup := seen[comps[i].Name]; dup {
			return nil, fmt.Errorf("%s.name: %s is listed twice (also computers[%d])", field, comps[i].Name, j)
		}
		seen[comps[i].Name] = i
	}
	return comps, nil
}

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("malformed JSON: more than one value")
	}
	return nil
}
