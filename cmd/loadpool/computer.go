package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/messages"
)

// The operator's commands of the lab inventory: `loadpool computer VERB`
// and `loadpool computers` (design.md "The lab inventory").

type computerVerb struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout io.Writer) error
}

func computerVerbs() []computerVerb {
	return []computerVerb{
		{"add", "NAME --provisioner P --type T [--address A] [--host-key KEY | --host-key-file F] [--control ssh|qga] [--attr k=v ...]",
			"Enrol a computer. Enrolling it again with the same fields changes nothing; different ones are refused (409): use set.", runComputerAdd},
		{"import", "FILE", "Enrol many computers from a JSON file: {\"computers\": [...]} or a JSON array of computers\n" +
			"(fields as in `nats req vcl.computer.add`: name, provisioner, type, address, host_key, control, attributes).\n" +
			"- reads standard input. Computers already enrolled with the same fields are counted unchanged.", runComputerImport},
		{"set", "NAME [--provisioner P] [--type T] [--address A] [--host-key KEY | --host-key-file F] [--control C] [--attr k=v ...]",
			"Change enrolment fields of a computer no live job holds; fields not given are kept.", runComputerSet},
		{"remove", "NAME", "Remove a computer from the inventory (refused while a live job holds it).", runComputerRemove},
		{"show", "NAME [--json]", "Show a computer's enrolment and state.", runComputerShow},
		{"list", "[--state S] [--provisioner P] [--limit N] [--json]", "List the enrolled computers by name (every page).", runComputerList},
		{"drain", "NAME --reason TEXT", "Put a computer in maintenance: new jobs are refused (409, with the reason); a live job finishes first.", runComputerDrain},
		{"undrain", "NAME", "Put a drained computer back in service.", runComputerUndrain},
		{"release", "NAME --used=true|false", "End the reservation of a computer in use; --used=false (never used) clears its taint.\n" +
			"A computer handed to a reservation is reloaded by its next job unless released --used=false:\n" +
			"then a job for the image it runs may skip the reload.", runComputerRelease},
	}
}

func computerUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: loadpool computer VERB [flags]   (loadpool computer VERB --help for its flags)")
	fmt.Fprintln(w, "\nThe lab inventory: every computer is enrolled once; jobs name it.")
	fmt.Fprintln(w, "\nVerbs:")
	for _, v := range computerVerbs() {
		fmt.Fprintf(w, "  %-8s %s\n", v.name, strings.SplitN(v.summary, "\n", 2)[0])
	}
	fmt.Fprintln(w, "\nloadpool computers prints every computer as a table.")
}

func runComputer(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		computerUsage(stdout)
		return fmt.Errorf("%w: give a verb: add, import, set, remove, show, list, drain, undrain or release", errUsage)
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		computerUsage(stdout)
		return nil
	}
	for _, v := range computerVerbs() {
		if v.name == args[0] {
			return v.run(ctx, args[1:], stdout)
		}
	}
	return fmt.Errorf("%w: unknown verb %q: want add, import, set, remove, show, list, drain, undrain or release", errUsage, args[0])
}

func verbFlags(w io.Writer, name string) *flag.FlagSet {
	for _, v := range computerVerbs() {
		if v.name == name {
			return flags(w, "computer "+name, v.args, v.summary)
		}
	}
	panic("unknown verb " + name)
}

// inventory connects to NATS and returns a client of the coordinator.
func inventory(name string, do func(cl *coordinator.Client) error) error {
	cn, cfg, err := clientConn("computer " + name)
	if err != nil {
		return err
	}
	defer cn.Close()
	if err := do(coordinator.NewClient(cn.nc, cfg.subjects())); err != nil {
		return explain(err)
	}
	return nil
}

func runComputerAdd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := verbFlags(stdout, "add")
	var e enrolFlags
	e.register(fs, false)
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	key, _, err := e.key(fs)
	if err != nil {
		return err
	}
	switch {
	case e.provisioner == "":
		return fmt.Errorf("%w: --provisioner is required (the provisioner that loads %s: vmware, xcat, lab, ...)", errUsage, name)
	case e.typ == "":
		return fmt.Errorf("%w: --type is required: %s, %s or %s", errUsage, messages.TypeVirtualMachine, messages.TypeBlade, messages.TypeLab)
	}
	c := messages.Computer{Name: name, Provisioner: e.provisioner, Type: e.typ, Address: e.address, HostKey: key,
		Control: e.control, Attributes: e.attrs.m}
	if len(c.Attributes) == 0 {
		c.Attributes = nil
	}
	if err := c.ValidateEnrollment("computer"); err != nil {
		return flagError(err)
	}
	return inventory("add", func(cl *coordinator.Client) error {
		got, err := cl.AddComputer(ctx, c)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "computer %s enrolled: %s\n", got.Name, got.State)
		return nil
	})
}

func runComputerSet(ctx context.Context, args []string, stdout io.Writer) error {
	fs := verbFlags(stdout, "set")
	var e enrolFlags
	e.register(fs, true)
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	s, err := e.set(fs, name)
	if err != nil {
		return err
	}
	return inventory("set", func(cl *coordinator.Client) error {
		got, err := cl.SetComputer(ctx, s)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "computer %s changed\n", got.Name)
		printEnrollment(stdout, got)
		return nil
	})
}

// set builds computer.set's body from the flags given, checked as far as
// they can be without the enrolment.
func (e *enrolFlags) set(fs *flag.FlagSet, name string) (messages.ComputerSet, error) {
	s := messages.ComputerSet{Name: name}
	str := func(flagName string, v *string) *string {
		if given(fs, flagName) {
			return v
		}
		return nil
	}
	s.Provisioner, s.Type, s.Address, s.Control = str("provisioner", &e.provisioner), str("type", &e.typ), str("address", &e.address), str("control", &e.control)
	key, ok, err := e.key(fs)
	if err != nil {
		return s, err
	}
	if ok {
		s.HostKey = &key
	}
	if e.attrs.set {
		s.Attributes = &e.attrs.m
	}
	if s == (messages.ComputerSet{Name: name}) {
		return s, fmt.Errorf("%w: nothing to change: give at least one of --provisioner, --type, --address, --host-key, --host-key-file, --control, --attr", errUsage)
	}
	// Check the fields given, laid over a valid enrolment (an empty
	// --provisioner or --type is refused as missing).
	probe := s.Apply(messages.Computer{Name: name, Provisioner: "x", Type: messages.TypeLab})
	if err := probe.ValidateEnrollment("computer"); err != nil {
		return s, flagError(err)
	}
	return s, nil
}

func runComputerRemove(ctx context.Context, args []string, stdout io.Writer) error {
	return simpleVerb(ctx, args, stdout, "remove", func(cl *coordinator.Client, name string) error {
		if _, err := cl.RemoveComputer(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "computer %s removed from the inventory\n", name)
		return nil
	})
}

func runComputerUndrain(ctx context.Context, args []string, stdout io.Writer) error {
	return simpleVerb(ctx, args, stdout, "undrain", func(cl *coordinator.Client, name string) error {
		got, err := cl.UndrainComputer(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "computer %s back in service: %s\n", got.Name, describeState(got))
		return nil
	})
}

func simpleVerb(ctx context.Context, args []string, stdout io.Writer, verb string, do func(*coordinator.Client, string) error) error {
	fs := verbFlags(stdout, verb)
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	return inventory(verb, func(cl *coordinator.Client) error { return do(cl, name) })
}

func runComputerDrain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := verbFlags(stdout, "drain")
	reason := fs.String("reason", "", "why it is taken out of service (required; a job refused for it says so)")
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("%w: --reason is required: say why %s is out of service (\"disk replaced\", \"bad NIC\")", errUsage, name)
	}
	return inventory("drain", func(cl *coordinator.Client) error {
		got, err := cl.DrainComputer(ctx, name, *reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "computer %s drained: %s\n", got.Name, describeState(got))
		return nil
	})
}

func runComputerRelease(ctx context.Context, args []string, stdout io.Writer) error {
	fs := verbFlags(stdout, "release")
	var used usedFlag
	fs.Var(&used, "used", "whether the reservation used the computer (required): --used=true or --used=false")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 2 && (pos[1] == "true" || pos[1] == "false") {
		return fmt.Errorf("%w: write --used=%s (with '='): a bare --used means true", errUsage, pos[1])
	}
	name, err := nameOf(pos)
	if err != nil {
		return err
	}
	if !used.set {
		return fmt.Errorf("%w: --used=true or --used=false is required: did the reservation use %s? (false clears its taint)", errUsage, name)
	}
	return inventory("release", func(cl *coordinator.Client) error {
		got, err := cl.ReleaseComputer(ctx, name, used.v)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "computer %s released (used: %t): %s\n", got.Name, used.v, describeState(got))
		return nil
	})
}
