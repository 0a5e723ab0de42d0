// Command trustbound is the confidential-computing control plane: the
// coordinator (serve), the workload agent (agent), the owner's tools
// (manifest, secret, policy, keygen, status) and a self-contained
// demonstration of the whole trust path on simulated TEEs (quickstart). It
// is the only place that parses flags or reads the environment; run wires
// everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitRefused = 1 // the command ran and the answer is no (or it failed)
	exitUsage   = 2
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"quickstart", "run a coordinator and three simulated workloads end to end, then exit", cmdQuickstart},
		{"serve", "run the coordinator", cmdServe},
		{"agent", "attest a workload and receive its secrets and certificate", cmdAgent},
		{"manifest", "validate | set | get the deployment manifest", cmdManifest},
		{"secret", "set a user secret (owner-signed)", cmdSecret},
		{"policy", "set | get appraisal policies (owner-signed) | dry-run evidence against drafts offline", cmdPolicy},
		{"status", "show workloads, trust boundaries and verdicts (owner-signed)", cmdStatus},
		{"audit", "list recorded releases: who got which secret, when (owner-signed)", cmdAudit},
		{"verify-coordinator", "verify a coordinator's own evidence before trusting it; writes its CA for --ca (exit 1: refused)", cmdVerifyCoordinator},
		{"verify", "verify one piece of evidence and print its claims (exit 1: refused)", cmdVerify},
		{"collateral", "export | import vendor collateral for offline verification", cmdCollateral},
		{"keygen", "make an owner key pair", cmdKeygen},
		{"deploy", "write what deploys a workload: cloud-init (cvm), ARM (azure-cvm), Kata pod + pinned policy (kata), SGX pod (sgx-container)", cmdDeploy},
		{"bench", "measure verification, round trips and memory against their baselines (--quick; --out DIR)", cmdBench},
		{"advise", "which deployment model fits a workload, and why: trust boundary, caveats, claims to pin", cmdAdvise},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: trustbound <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n'trustbound <command> -h' shows a command's flags.")
}

// errUsage marks errors that are the caller's words being off.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "trustbound %s: %v\n", c.name, err)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "trustbound %s: %v\n", c.name, err)
			return exitRefused
		}
	}
	fmt.Fprintf(stderr, "trustbound: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// newFlags returns a flag set that reports errors as usage errors.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("trustbound "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}
