package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/manifest"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	var of ownerFlags
	of.register(fs)
	file := fs.String("manifest", "", "show the workloads and trust boundaries of a manifest file, without a coordinator")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var st *api.Status
	if *file != "" {
		m, _, err := manifest.Load(*file)
		if err != nil {
			return err
		}
		st = &api.Status{AllowSimulated: m.AllowSimulated}
		for _, w := range m.Workloads {
			b, err := deploy.BoundaryOf(w.Model, w.TEE)
			if err != nil {
				return err
			}
			st.Workloads = append(st.Workloads, api.WorkloadStatus{Name: w.Name, Model: string(w.Model), TEE: string(w.TEE), Inside: b.Inside, Outside: b.Outside})
		}
	} else {
		c, o, err := of.connect()
		if err != nil {
			return err
		}
		if st, err = c.Status(ctx, o); err != nil {
			return err
		}
		if st.ManifestDigest == "" {
			fmt.Fprintln(stdout, "no manifest is set")
			return nil
		}
		fmt.Fprintf(stdout, "manifest %s\n", st.ManifestDigest)
	}
	if st.AllowSimulated {
		fmt.Fprintln(stdout, "allowSimulated: SIMULATED TEEs are accepted; their tokens and certificates say so")
	}
	printStatus(stdout, st.Workloads)
	return nil
}

// printStatus prints one row per workload, then who is inside and outside
// each trust boundary.
func printStatus(w io.Writer, ws []api.WorkloadStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tMODEL\tTEE\tATTESTED\tREFUSED\tRELEASED\tLAST VERDICT")
	for _, s := range ws {
		tee := s.TEE
		if s.Simulated {
			tee += " (simulated)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, s.Model, tee, s.Attested, s.Refused, s.Released, orDash(s.LastVerdict))
	}
	tw.Flush()
	fmt.Fprintln(w)
	printBoundaries(w, ws)
}

func printBoundaries(w io.Writer, ws []api.WorkloadStatus) {
	for _, s := range ws {
		fmt.Fprintf(w, "%s (%s on %s)\n  inside the boundary:  %s\n  outside the boundary: %s\n",
			s.Name, s.Model, s.TEE, strings.Join(s.Inside, ", "), strings.Join(s.Outside, ", "))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
