package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/manifest"
)

func cmdQuickstart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("quickstart", stderr)
	keep := fs.String("dir", "", "keep the coordinator's data and the agents' output in this directory (default: a temporary one, removed at exit)")
	logLevel := fs.String("log-level", "error", "coordinator log level (logs go to stderr)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	dir := *keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "trustbound-quickstart-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	return quickstart(ctx, stdout, dir, logger)
}

// qsRow is one line of the closing table.
type qsRow struct {
	workload, model, tee, inside, outside, verdict string
}

// quickstart runs the whole trust path against a real coordinator on
// loopback: an owner sets the sample manifest, three simulated workloads
// (one per deployment model) attest and receive their secrets, then a
// tampered workload and a replayed nonce are refused.
func quickstart(ctx context.Context, out io.Writer, dir string, logger *slog.Logger) error {
	fmt.Fprintln(out, "trustbound quickstart: the whole trust path, on SIMULATED TEEs.")
	fmt.Fprintln(out, "No TEE hardware is used; simulated evidence proves nothing, and every token and certificate issued for it says 'simulated'.")
	fmt.Fprintln(out)

	srv, err := startServer(ctx, serverOptions{dataDir: filepath.Join(dir, "coordinator"), listen: "127.0.0.1:0", logger: logger})
	if err != nil {
		return fmt.Errorf("starting the coordinator: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.shutdown(sctx)
	}()
	fmt.Fprintf(out, "1. coordinator serving at %s (embedded bbolt store in %s)\n", srv.url, filepath.Join(dir, "coordinator"))

	client, err := clientWithCA(srv.url, srv.caPEM)
	if err != nil {
		return err
	}

	// The owner: a fresh key, named in the sample manifest.
	ownerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	pub, err := publicKeyPEM(&ownerKey.PublicKey)
	if err != nil {
		return err
	}
	raw := manifest.SampleWith(pub)
	m, err := manifest.Parse(raw)
	if err != nil {
		return fmt.Errorf("sample manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("sample manifest: %w", err)
	}
	owner := agent.Owner{Name: m.Owners[0].Name, Key: ownerKey}
	set, err := client.SetManifest(ctx, owner, raw, srv.bootstrap)
	if err != nil {
		return fmt.Errorf("setting the manifest: %w", err)
	}
	fmt.Fprintf(out, "2. owner %q signed and set the manifest (with the coordinator's bootstrap token): %d workloads, %d secrets, digest %s\n",
		owner.Name, len(m.Workloads), len(m.Secrets), set.Digest[:16])
	for _, s := range m.Secrets {
		if s.Type != manifest.User {
			continue
		}
		value := make([]byte, 24)
		if _, err := rand.Read(value); err != nil {
			return err
		}
		res, err := client.SetSecret(ctx, owner, s.Name, value)
		if err != nil {
			return fmt.Errorf("setting secret %s: %w", s.Name, err)
		}
		fmt.Fprintf(out, "   owner %q set user secret %s (version %d; its value is never printed)\n", owner.Name, s.Name, res.Version)
	}

	fmt.Fprintln(out, "3. each workload's agent: keys made in the TEE, challenge, evidence, attest, release (secrets sealed with HPKE to the TEE's key)")
	var rows []qsRow
	for _, w := range m.Workloads {
		b, err := deploy.BoundaryOf(w.Model, w.TEE)
		if err != nil {
			return err
		}
		row := qsRow{workload: w.Name, model: string(w.Model), tee: string(w.TEE) + " (simulated)", inside: strings.Join(b.Inside, "; "), outside: strings.Join(b.Outside, "; ")}
		tee, err := agent.SimulatedFor(w)
		if err != nil {
			return err
		}
		id, res, err := agent.Run(ctx, client, tee, w.Name)
		if err != nil {
			return fmt.Errorf("workload %s was not served: %w", w.Name, err)
		}
		if err := id.Write(filepath.Join(dir, "agents", w.Name), res); err != nil {
			return err
		}
		names := make([]string, 0, len(res.Secrets))
		for n := range res.Secrets {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintf(out, "   %-10s attested: %s; secrets %s -> %s\n", w.Name, res.SPIFFEID, strings.Join(names, ", "), filepath.Join(dir, "agents", w.Name))
		row.verdict = "affirming, served"
		rows = append(rows, row)
	}

	fmt.Fprintln(out, "4. what must be refused is refused:")
	first := m.Workloads[0]
	tampered, err := agent.SimulatedFor(first)
	if err != nil {
		return err
	}
	switch t := tampered.(type) {
	case *simtee.SNP:
		t.Measurement[0] ^= 0xff
	case *simtee.SGX:
		t.MREnclave[0] ^= 0xff
	}
	_, _, err = agent.Run(ctx, client, tampered, first.Name)
	if p := (*api.Problem)(nil); !errors.As(err, &p) || p.Status != http.StatusForbidden || !strings.Contains(p.Detail, "measurements:") {
		return fmt.Errorf("a tampered workload (wrong measurement) was not refused for its measurement: %v", err)
	}
	fmt.Fprintf(out, "   tampered %s (wrong measurement): refused: %v\n", first.Name, err)
	rows = append(rows, qsRow{workload: first.Name + " (tampered)", model: string(first.Model), tee: string(first.TEE) + " (simulated)", verdict: "refused: wrong measurement"})

	honest, err := agent.SimulatedFor(first)
	if err != nil {
		return err
	}
	id, err := agent.NewIdentity()
	if err != nil {
		return err
	}
	req, err := id.Evidence(ctx, client, honest, first.Name)
	if err != nil {
		return err
	}
	if _, err := client.Attest(ctx, req); err != nil {
		return fmt.Errorf("attesting before the replay: %w", err)
	}
	_, err = client.Attest(ctx, req)
	if p := (*api.Problem)(nil); !errors.As(err, &p) || p.Status != http.StatusUnauthorized || !strings.Contains(p.Detail, "already used") {
		return fmt.Errorf("a replayed nonce was not refused as such: %v", err)
	}
	fmt.Fprintf(out, "   %s replaying evidence with a used nonce: refused: %v\n", first.Name, err)
	rows = append(rows, qsRow{workload: first.Name + " (replay)", model: string(first.Model), tee: string(first.TEE) + " (simulated)", verdict: "refused: replayed nonce"})

	fmt.Fprintln(out)
	printVerdicts(out, rows)
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Done. 'trustbound serve', 'trustbound agent' and 'trustbound status' run the same path as separate processes (see README).")
	return nil
}

// printVerdicts prints the closing table: one row per workload and
// attempt, each workload followed by who is inside and outside its trust
// boundary.
func printVerdicts(out io.Writer, rows []qsRow) {
	w := [3]int{len("WORKLOAD"), len("MODEL"), len("TEE")}
	for _, r := range rows {
		w[0], w[1], w[2] = max(w[0], len(r.workload)), max(w[1], len(r.model)), max(w[2], len(r.tee))
	}
	line := func(a, b, c, d string) { fmt.Fprintf(out, "%-*s  %-*s  %-*s  %s\n", w[0], a, w[1], b, w[2], c, d) }
	line("WORKLOAD", "MODEL", "TEE", "VERDICT")
	for _, r := range rows {
		line(r.workload, r.model, r.tee, r.verdict)
		if r.inside != "" {
			fmt.Fprintf(out, "    inside the boundary:  %s\n    outside the boundary: %s\n", r.inside, r.outside)
		}
	}
}
