package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/manifest"
)

const policyUsage = `policy set --owner NAME --key KEY NAME FILE | policy get --owner NAME --key KEY NAME |
  policy dry-run --manifest FILE --workload NAME [--policy [NAME=]FILE]... [--runtime-data FILE] [--at RFC3339] [--collateral PATH|--no-collateral] [--allow-simulated] EVIDENCE...`

// maxPolicyFile bounds a policy text read from a file: what the
// coordinator accepts in one request.
const maxPolicyFile = api.MaxBody

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s", policyUsage)
	}
	switch args[0] {
	case "set":
		fs := newFlags("policy set", stderr)
		var of ownerFlags
		of.register(fs)
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return usageErr("policy set --owner NAME --key KEY NAME FILE")
		}
		text, err := readPolicyFile(fs.Arg(1))
		if err != nil {
			return err
		}
		c, o, err := of.connect()
		if err != nil {
			return err
		}
		res, err := c.SetPolicy(ctx, o, fs.Arg(0), text)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "policy %s set: %s, version %d, sha256 %s\n", res.Name, res.Kind, res.Version, res.Hash)
		return nil
	case "get":
		fs := newFlags("policy get", stderr)
		var of ownerFlags
		of.register(fs)
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usageErr("policy get --owner NAME --key KEY NAME")
		}
		c, o, err := of.connect()
		if err != nil {
			return err
		}
		res, err := c.Policy(ctx, o, fs.Arg(0))
		if err != nil {
			return err
		}
		return printJSON(stdout, res)
	case "dry-run":
		return policyDryRun(ctx, args[1:], stdout, stderr)
	}
	return usageErr("unknown policy subcommand %q (set, get, dry-run)", args[0])
}

// policyFiles is the repeated --policy [NAME=]FILE flag.
type policyFiles []string

func (p *policyFiles) String() string     { return strings.Join(*p, ",") }
func (p *policyFiles) Set(v string) error { *p = append(*p, v); return nil }

// dryRunOutput is what `trustbound policy dry-run` prints.
type dryRunOutput struct {
	Verdict string             `json:"verdict"`
	Layers  []api.LayerVerdict `json:"layers"`
	Claims  any                `json:"claims,omitempty"`
}

// policyDryRun appraises evidence on this machine, without a coordinator:
// the manifest's reference values for the workload and the policies given
// as files (named by --policy NAME=FILE, or by the file's base name),
// evaluated as the coordinator would. A policy the workload names that is
// not given denies; policies it does not name are evaluated after its own.
func policyDryRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy dry-run", stderr)
	manifestFile := fs.String("manifest", "", "the manifest (required)")
	workload := fs.String("workload", "", "the workload to appraise the evidence as (required)")
	var policies policyFiles
	fs.Var(&policies, "policy", "a draft policy, `[NAME=]FILE` (NAME defaults to the file's base name); repeatable")
	runtimeFile := fs.String("runtime-data", "", "the runtime data the evidence binds (its SHA-256 is the report data); checked when given")
	at := fs.String("at", "", "appraise as of this time (RFC 3339); default now")
	coll := fs.String("collateral", "", "offline collateral, nothing fetched (see 'trustbound verify')")
	noColl := fs.Bool("no-collateral", false, "check signatures and chains only (the manifest layer then refuses real evidence unless the workload allows unchecked revocation)")
	cacheDir := fs.String("cache", defaultCacheDir(), "collateral cache directory (used when --collateral is not given)")
	allowSim := fs.Bool("allow-simulated", false, "accept evidence from trustbound's SIMULATED TEEs")
	issuer := fs.String("issuer", "https://127.0.0.1:8443", "the coordinator URL tokens would name as iss (the authority of release policies)")
	tokenTTL := fs.Duration("token-ttl", 5*time.Minute, "the token lifetime (exp, as release policies see it)")
	showClaims := fs.Bool("claims", false, "print the claims the token would carry as well")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *manifestFile == "" || *workload == "" || fs.NArg() == 0:
		return usageErr("policy dry-run --manifest FILE --workload NAME [--policy [NAME=]FILE]... EVIDENCE...")
	case *coll != "" && *noColl:
		return usageErr("--collateral and --no-collateral exclude each other")
	case *tokenTTL <= 0:
		return usageErr("--token-ttl must be positive")
	}
	now, err := atTime(*at)
	if err != nil {
		return err
	}
	m, raw, err := manifest.Load(*manifestFile)
	if err != nil {
		return err
	}
	wl, ok := m.Workload(*workload)
	if !ok {
		return usageErr("workload %q is not in %s", *workload, *manifestFile)
	}
	cache := coordinator.NewPolicyCache(0, 0)
	drafts := map[string]*coordinator.Policy{}
	for _, spec := range policies {
		name, file, ok := strings.Cut(spec, "=")
		if !ok {
			file, name = spec, filepath.Base(spec)
		}
		if !manifest.IsPolicyName(name) {
			return usageErr("--policy %s: %q is not a policy name (a-z, 0-9, '.', '_', '-'); use NAME=FILE", spec, name)
		}
		if _, dup := drafts[name]; dup {
			return usageErr("--policy: %q given twice", name)
		}
		text, err := readPolicyFile(file)
		if err != nil {
			return err
		}
		p, err := cache.Prepare(ctx, name, "", string(text))
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		drafts[name] = p
	}
	pols, _ := coordinator.ArrangePolicies(wl.Policies, drafts, func(n string) (*coordinator.Policy, error) { return coordinator.MissingPolicy(n), nil })

	ev, err := evidenceFromFiles(fs.Args())
	if err != nil {
		return err
	}
	if *runtimeFile != "" {
		if ev.RuntimeData, err = readBounded(*runtimeFile, maxEvidenceFile); err != nil {
			return err
		}
	}
	reg, err := offlineRegistry(*coll, *noColl, *cacheDir, now)
	if err != nil {
		return err
	}
	res, err := coordinator.DryRun(ctx, coordinator.DryRunInput{
		Verifiers: reg, Options: attest.Options{Now: now, AllowSimulated: *allowSim, SkipCollateral: *noColl},
		Manifest: m, ManifestDigest: manifest.Digest(raw), Workload: wl, Policies: pols, Evidence: ev,
		Issuer: *issuer, TTL: *tokenTTL,
	})
	if err != nil {
		return err
	}
	out := dryRunOutput{Verdict: res.Verdict, Layers: res.Layers}
	if *showClaims && res.Claims != nil {
		out.Claims = res.Claims
	}
	if err := printJSON(stdout, out); err != nil {
		return err
	}
	if res.Verdict != api.VerdictPermit {
		for _, l := range res.Layers {
			if l.Verdict != api.VerdictPermit && l.Name != "" {
				return fmt.Errorf("denied by the %s layer (%s)", l.Layer, l.Name)
			} else if l.Verdict != api.VerdictPermit {
				return fmt.Errorf("denied by the %s layer", l.Layer)
			}
		}
		return errors.New("denied")
	}
	return nil
}

func readPolicyFile(path string) ([]byte, error) { return readBounded(path, maxPolicyFile) }
