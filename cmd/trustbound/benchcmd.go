package main

import (
	"context"
	"fmt"
	"io"

	"github.com/trustbound/trustbound/bench"
)

// cmdBench runs the performance harness (package bench) and writes its
// table to stdout and results.json, results.txt and the SVG plots to --out.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	quick := fs.Bool("quick", false, "shrink every size so the run takes seconds (rough figures)")
	out := fs.String("out", "bench-out", "directory for results.json, results.txt, throughput.svg and latency.svg")
	tmp := fs.String("tmp", "", "directory for the benchmark's temporary stores (default: the system's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErr("unexpected arguments %q", fs.Args())
	}
	r, err := bench.Run(ctx, bench.Options{Quick: *quick, TempDir: *tmp, Progress: stderr})
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
