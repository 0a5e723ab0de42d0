package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"

	"github.com/trustbound/trustbound/agent"
	agenttee "github.com/trustbound/trustbound/agent/tee"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
)

// simFlags describe a simulated TEE: what "hardware" would have measured.
type simFlags struct {
	tee                                   string
	measurement, hostData, signer, config string
	productID, svn                        uint
	debug                                 bool
}

func (s *simFlags) register(fs interface {
	StringVar(*string, string, string, string)
	UintVar(*uint, string, uint, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.StringVar(&s.tee, "simulate", "", "use a SIMULATED TEE: snp or sgx (the manifest must allow simulation)")
	fs.StringVar(&s.measurement, "sim-measurement", "", "simulated launch measurement, hex (SNP 48 bytes, SGX MRENCLAVE 32 bytes)")
	fs.StringVar(&s.hostData, "sim-host-data", "", "simulated SNP HOST_DATA (32 bytes hex), e.g. the init-data digest trustbound deploy pins")
	fs.StringVar(&s.signer, "sim-signer", "", "simulated SGX MRSIGNER (32 bytes hex)")
	fs.StringVar(&s.config, "sim-config-id", "", "simulated SGX CONFIGID (64 bytes hex)")
	fs.UintVar(&s.productID, "sim-product-id", 0, "simulated SGX ISVPRODID")
	fs.UintVar(&s.svn, "sim-svn", 0, "simulated SGX ISVSVN or SNP GUEST_SVN")
	fs.BoolVar(&s.debug, "sim-debug", false, "simulate a debuggable TEE")
}

func decodeFixed(name, s string, dst []byte) error {
	if s == "" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return usageErr("%s must be %d bytes of hex", name, len(dst))
	}
	copy(dst, b)
	return nil
}

// attester returns the TEE the agent runs in.
func (s *simFlags) attester() (attest.Attester, error) {
	switch s.tee {
	case "snp":
		t := &simtee.SNP{Debug: s.debug, GuestSVN: uint32(s.svn)}
		if err := decodeFixed("--sim-measurement", s.measurement, t.Measurement[:]); err != nil {
			return nil, err
		}
		if err := decodeFixed("--sim-host-data", s.hostData, t.HostData[:]); err != nil {
			return nil, err
		}
		return t, nil
	case "sgx":
		if s.productID > 0xffff || s.svn > 0xffff {
			return nil, usageErr("--sim-product-id and --sim-svn are 16-bit for SGX")
		}
		t := &simtee.SGX{Debug: s.debug, ProductID: uint16(s.productID), SVN: uint16(s.svn)}
		if err := decodeFixed("--sim-measurement", s.measurement, t.MREnclave[:]); err != nil {
			return nil, err
		}
		if err := decodeFixed("--sim-signer", s.signer, t.MRSigner[:]); err != nil {
			return nil, err
		}
		if err := decodeFixed("--sim-config-id", s.config, t.ConfigID[:]); err != nil {
			return nil, err
		}
		return t, nil
	case "":
		return nil, usageErr("--tee simulated needs --simulate snp|sgx")
	}
	return nil, usageErr("--simulate must be snp or sgx")
}

// agentTEE returns the TEE the agent attests with, as --tee (teeFlag)
// says: simulated (the default with --simulate) or a real guest interface
// (auto, the default otherwise, detects it).
func (s *simFlags) agentTEE(ctx context.Context, teeFlag string) (attest.Attester, error) {
	kind := agenttee.KindAuto
	if s.tee != "" {
		kind = agenttee.KindSimulated
	}
	if teeFlag != "" {
		k, err := agenttee.ParseKind(teeFlag)
		if err != nil {
			return nil, usageErr("--tee: %v", err)
		}
		kind = k
	}
	if kind == agenttee.KindSimulated {
		return s.attester()
	}
	if s.tee != "" {
		return nil, usageErr("--simulate is for --tee simulated, not --tee %s", kind)
	}
	t, err := agenttee.Open(ctx, kind, agenttee.Config{})
	if errors.Is(err, agenttee.ErrNoTEE) {
		return nil, usageErr("%v", err) // the operator must choose: exit 2
	}
	return t, err
}

func cmdAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("agent", stderr)
	var cf coordinatorFlags
	cf.register(fs)
	var sf simFlags
	sf.register(fs)
	caSHA256 := fs.String("ca-sha256", "", "refuse to run unless the SHA-256 of the --ca file is this (hex); trustbound deploy pins it on the agent's command line")
	teeFlag := fs.String("tee", "", "TEE interface: auto, configfs-tsm, sev-guest, tdx-guest, azure-vtpm or simulated (default: simulated with --simulate, else auto, which detects the interface)")
	workload := fs.String("workload", "", "workload name in the manifest (required)")
	out := fs.String("out", "trustbound-out", "directory for identity.key, identity.crt, ca.crt and secrets/ (mode 0600)")
	renew := fs.Bool("renew", false, "keep running: attest again and rewrite --out when the certificate is past 2/3 of its lifetime, until interrupted")
	serve := fs.String("serve", "", "keep running and serve Azure's key-release sidecar API (GET /status, POST /attest/raw, /attest/maa, /key/release) on this loopback address, e.g. 127.0.0.1:8080")
	bearerFile := fs.String("key-release-bearer-file", "", "with --serve: file holding the coordinator's key-release access token, for /key/release requests without access_token")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *workload == "" {
		return usageErr("--workload is required")
	}
	tee, err := sf.agentTEE(ctx, *teeFlag)
	if err != nil {
		return err
	}
	c, err := agentClient(&cf, *caSHA256)
	if err != nil {
		return err
	}
	var sidecarLn net.Listener
	var bearer []byte
	if *serve != "" {
		if *bearerFile != "" {
			b, err := readBounded(*bearerFile, maxTokenFile)
			if err != nil {
				return fmt.Errorf("--key-release-bearer-file: %w", err)
			}
			bearer = bytes.TrimSpace(b)
		}
		if sidecarLn, err = agent.ListenSidecar(*serve); err != nil {
			return usageErr("--serve: %v", err)
		}
		defer sidecarLn.Close()
	} else if *bearerFile != "" {
		return usageErr("--key-release-bearer-file is for --serve")
	}
	id, res, err := agent.Run(ctx, c, tee, *workload)
	if err != nil {
		return err
	}
	if err := id.Write(*out, res); err != nil {
		return err
	}
	label := ""
	if res.Simulated {
		label = " on a SIMULATED TEE"
	}
	fmt.Fprintf(stdout, "%s attested%s as %s\n", *workload, label, res.SPIFFEID)
	names := make([]string, 0, len(res.Secrets))
	for n := range res.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "  secret %s (%d bytes) -> %s/secrets/%s\n", n, len(res.Secrets[n]), *out, n)
	}
	fmt.Fprintf(stdout, "  certificate and key -> %s/identity.crt, %s/identity.key\n", *out, *out)
	var loop func(context.Context) error
	if *renew {
		r := &agent.Renewer{Client: c, TEE: tee, Workload: *workload, Identity: id,
			Failed: func(err error) { fmt.Fprintf(stderr, "renewal failed, retrying: %v\n", err) }}
		loop = func(ctx context.Context) error {
			return r.Loop(ctx, res, func(res *agent.Result) error {
				if err := id.Write(*out, res); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s renewed as %s\n", *workload, res.SPIFFEID)
				return nil
			})
		}
	}
	switch {
	case sidecarLn != nil:
		fmt.Fprintf(stdout, "  key-release sidecar API -> http://%s\n", sidecarLn.Addr())
		err = serveSidecar(ctx, sidecarLn, &agent.Sidecar{Client: c, TEE: tee, Workload: *workload, Identity: id, Bearer: bearer}, loop)
	case loop != nil:
		err = loop(ctx)
	default:
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// serveSidecar serves the key-release sidecar API on ln until ctx is done,
// running loop (the renewal, if any) beside it; the first to fail stops
// the other.
func serveSidecar(ctx context.Context, ln net.Listener, sc *agent.Sidecar, loop func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		err := sc.Serve(ctx, ln)
		cancel()
		served <- err
	}()
	if loop == nil {
		return <-served
	}
	err := loop(ctx)
	cancel()
	if serr := <-served; serr != nil && !errors.Is(serr, context.Canceled) {
		return serr
	}
	return err
}
