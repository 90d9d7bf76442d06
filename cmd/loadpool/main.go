// Command loadpool is the one binary of loadpool: the coordinator, the
// loader and OS worker pools, the client commands, and a demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "", "run everything in one process with simulated computers and sample jobs (the demo)", runDev},
		{"real", "[--keep]", "boot two real Debian guests (libvirt, QEMU) and run a Linux job on each, over SSH and the guest agent (-tags dev)", runReal},
		{"all", "", "embedded NATS (unless LOADPOOL_NATS_URL) + coordinator + the pools in LOADPOOL_LOADERS and LOADPOOL_OS_FAMILIES", runAll},
		{"coordinator", "", "run a coordinator (any number side by side)", runCoordinator},
		{"loader", "--provisioner NAME", "run a loader worker of one provisioner (lab, vmware, xcat, libvirt)", runLoader},
		{"os", "--family NAME", "run an OS worker of one OS family (linux, windows)", runOS},
		{"submit", "[--file JOB.json | flags] [--wait]", "submit a job; --wait follows its events and exits non-zero unless it ends ready", runSubmit},
		{"status", "[ID] [--state S] [--limit N]", "show one job, or list jobs", runStatus},
		{"watch", "ID", "follow a job's events until it ends", runWatch},
		{"cancel", "ID [--reason TEXT]", "cancel a job", runCancel},
		{"computer", "VERB NAME [flags]", "the lab inventory: add, import, set, remove, show, list, drain, undrain, release a computer", runComputer},
		{"computers", "[--state S] [--provisioner P]", "print the enrolled computers as a table", runComputers},
		{"evidence", "JOB [--dir DIR]", "save a job's evidence (screenshots, console logs of waits that ran out) from the object store", runEvidence},
		{"certs", "--dir DIR --host NAME[,NAME...]", "make a private CA and TLS certificates for the NATS servers (and clients) of a lab", runCerts},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "loadpool loads OS images onto lab computers and gets them ready, over NATS JetStream.")
	fmt.Fprintln(w, "\nUsage: loadpool COMMAND [flags]   (loadpool COMMAND --help for a command's flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nConfiguration comes from LOADPOOL_* environment variables; see the README.")
	fmt.Fprintln(w, "LOADPOOL_NATS_URL unset means an embedded NATS server on 127.0.0.1:4222 (data in .loadpool/).")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(profiled(func() int { return run(ctx, os.Args[1:], os.Stdout, os.Stderr) }))
}

// profiled runs f, writing a CPU profile of it to the file
// LOADPOOL_CPUPROFILE names and, at its end, the allocations to the file
// LOADPOOL_MEMPROFILE names (for `go tool pprof`), when set.
func profiled(f func() int) int {
	if path := os.Getenv("LOADPOOL_MEMPROFILE"); path != "" {
		defer func() {
			out, err := os.Create(path)
			if err == nil {
				err = errors.Join(pprof.Lookup("allocs").WriteTo(out, 0), out.Close())
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "loadpool: LOADPOOL_MEMPROFILE=%s: %v\n", path, err)
			}
		}()
	}
	path := os.Getenv("LOADPOOL_CPUPROFILE")
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadpool: LOADPOOL_CPUPROFILE=%s: %v\n", path, err)
		return 2
	}
	defer out.Close()
	defer pprof.StopCPUProfile()
	return f()
}

// errFailed is returned by submit --wait and watch when the job did not
// end ready; the message has been printed already.
var errFailed = errors.New("job did not end ready")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errFailed):
			return 1
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "loadpool %s: %v\n", c.name, err)
			return 2
		}
		fmt.Fprintf(stderr, "loadpool %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "loadpool: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

var errUsage = errors.New("usage")

// flags makes a command's flag set with a --help that lists them.
func flags(w io.Writer, name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadpool %s %s\n\n%s\n", name, args, summary)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(fs.Output(), "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args; extra positional arguments beyond maxArgs are a usage error.
func parse(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > maxArgs {
		return fmt.Errorf("%w: unexpected argument %q (see --help)", errUsage, fs.Arg(maxArgs))
	}
	return nil
}
