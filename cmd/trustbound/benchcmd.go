package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/trustbound/trustbound/bench"
)

// benchChildArg is the hidden first argument of `trustbound bench` that
// makes the process the harness's child coordinator (bench.ServeCoordinator
// on stdin and stdout); the harness starts it itself.
const benchChildArg = "__coordinator"

// cmdBench runs the performance harness (package bench) and writes its
// table to stdout and results.json, results.txt and the SVG plots to --out.
// The coordinator under measurement runs in a child process (this binary
// again), so that its CPU time and memory are measured alone.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == benchChildArg {
		return bench.ServeCoordinator(ctx, os.Stdin, stdout)
	}
	fs := newFlags("bench", stderr)
	quick := fs.Bool("quick", false, "shrink every size so the run takes seconds (rough figures)")
	out := fs.String("out", "bench-out", "directory for results.json, results.txt, throughput.svg and latency.svg")
	tmp := fs.String("tmp", "", "directory for the benchmark's temporary stores (default: the system's)")
	inProcess := fs.Bool("in-process", false, "run the coordinator in this process instead of a child (its CPU per round trip is then an estimate)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErr("unexpected arguments %q", fs.Args())
	}
	o := bench.Options{Quick: *quick, TempDir: *tmp, Progress: stderr}
	if !*inProcess {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this binary to run the child coordinator (--in-process avoids it): %w", err)
		}
		o.Coordinator = []string{exe, "bench", benchChildArg}
	}
	r, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	if err := r.WriteText(stdout); err != nil {
		return err
	}
	if err := r.WriteFiles(*out); err != nil {
		return fmt.Errorf("writing the results to %s: %w", *out, err)
	}
	fmt.Fprintf(stderr, "results written to %s\n", *out)
	return nil
}
