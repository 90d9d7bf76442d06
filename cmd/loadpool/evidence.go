package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go/jetstream"
)

func runEvidence(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "evidence", "JOB [--dir DIR]", "Save the evidence of a job (the screenshots and serial console logs a loader saved when a\nwait ran out) from the object store <prefix>_evidence into DIR/<attempt>/<name>, and list it.\n`nats obj get vcl_evidence JOB/1/screenshot.png` fetches one object the same way.")
	dir := fs.String("dir", "", "directory to write into (default evidence-JOB)")
	if len(args) > 1 && !strings.HasPrefix(args[0], "-") {
		args = append(args[1:len(args):len(args)], args[0]) // JOB --dir DIR as well as --dir DIR JOB
	}
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: give the job id", errUsage)
	}
	job := fs.Arg(0)
	if err := messages.ValidJobID("JOB", job); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *dir == "" {
		*dir = "evidence-" + job
	}
	cn, cfg, err := clientConn("evidence")
	if err != nil {
		return err
	}
	defer cn.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	js, err := jetstream.New(cn.nc)
	if err != nil {
		return err
	}
	bucket := cfg.subjects().EvidenceBucket()
	store, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return fmt.Errorf("object store %s: %w (the coordinator makes it when LOADPOOL_EVIDENCE is on)", bucket, err)
	}
	n, err := saveJobEvidence(ctx, store, job, *dir, stdout)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no evidence of job %s in %s: evidence is saved only when a wait runs out and the provisioner can capture the console", job, bucket)
	}
	return nil
}

// saveJobEvidence writes every object under <job>/ into dir and prints a
// line for each; it returns how many it wrote.
func saveJobEvidence(ctx context.Context, store jetstream.ObjectStore, job, dir string, w io.Writer) (int, error) {
	objs, err := store.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list evidence: %w", err)
	}
	n := 0
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Name, job+"/")
		if !ok || o.Deleted || !filepath.IsLocal(rest) {
			continue
		}
		file := filepath.Join(dir, filepath.FromSlash(rest))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return n, err
		}
		if err := store.GetFile(ctx, o.Name, file); err != nil {
			return n, fmt.Errorf("get %s: %w", o.Name, err)
		}
		fmt.Fprintf(w, "%s  %7d bytes  %s  -> %s\n", o.ModTime.UTC().Format(time.RFC3339), o.Size, o.Name, file)
		n++
	}
	return n, nil
}
