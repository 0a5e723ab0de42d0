package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-sev-guest/abi"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/attest/snp"
	"github.com/trustbound/trustbound/collateral"
	"github.com/trustbound/trustbound/token"
)

// verifyOutput is what `trustbound verify` prints.
type verifyOutput struct {
	Format attest.Format  `json:"format"`
	Claims *attest.Claims `json:"claims"`
	// Azure holds the same facts under Azure Attestation's claim names.
	Azure map[string]any `json:"azureAttestation,omitempty"`
	// Unchecked lists what this run did not check.
	Unchecked []string `json:"unchecked,omitempty"`
}

// maxEvidenceFile bounds what verify reads from one file.
const maxEvidenceFile = 4 << 20

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	at := fs.String("at", "", "verify as of this time (RFC 3339); default now")
	coll := fs.String("collateral", "", "offline collateral, nothing fetched: a bundle from 'trustbound collateral export', a dcap-qvl collateral JSON, a VCEK file, or a directory of such files")
	noColl := fs.Bool("no-collateral", false, "check signatures and chains only; revocation and TCB status are reported unchecked (no appraisal accepts that)")
	cacheDir := fs.String("cache", defaultCacheDir(), "collateral cache directory (used when --collateral is not given)")
	nonce := fs.String("nonce", "", "hex nonce the evidence must bind (its report data, zero-padded)")
	allowSim := fs.Bool("allow-simulated", false, "accept evidence from trustbound's SIMULATED TEEs (labelled simulated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErr("verify FILE... (a report, its certificates, a configfs-tsm capture directory, or JSON evidence)")
	}
	if *coll != "" && *noColl {
		return usageErr("--collateral and --no-collateral exclude each other")
	}
	now, err := atTime(*at)
	if err != nil {
		return err
	}
	var wantNonce []byte
	if *nonce != "" {
		b, err := hex.DecodeString(*nonce)
		if err != nil || len(b) == 0 || len(b) > 64 {
			return usageErr("--nonce must be 1 to 64 bytes of hex")
		}
		wantNonce = b
	}
	ev, err := evidenceFromFiles(fs.Args())
	if err != nil {
		return err
	}

	reg, err := offlineRegistry(*coll, *noColl, *cacheDir, now)
	if err != nil {
		return err
	}
	claims, err := reg.Verify(ctx, ev, attest.Options{Now: now, AllowSimulated: *allowSim, SkipCollateral: *noColl})
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	if wantNonce != nil {
		padded := make([]byte, max(len(claims.ReportData), len(wantNonce)))
		copy(padded, wantNonce)
		if !bytes.Equal(padded, claims.ReportData) {
			return fmt.Errorf("refused: the evidence binds report data %s, not the nonce %s", claims.ReportData, *nonce)
		}
	}
	out := verifyOutput{Format: ev.Format, Claims: claims, Azure: token.AzureClaims(claims)}
	if !claims.RevocationChecked && !claims.Simulated {
		out.Unchecked = append(out.Unchecked, "revocation")
	}
	if !claims.TCB.Evaluated && !claims.Simulated {
		out.Unchecked = append(out.Unchecked, "tcb")
	}
	if wantNonce == nil {
		out.Unchecked = append(out.Unchecked, "nonce (no --nonce given)")
	}
	if claims.Simulated {
		fmt.Fprintln(stderr, "note: SIMULATED TEE evidence: it proves nothing about hardware")
	}
	return printJSON(stdout, out)
}

// offlineRegistry is the verifier registry of the commands that verify
// evidence on this machine: collateral from a bundle only (nothing
// fetched, freshness judged at now), none at all, or fetched into the
// cache directory.
func offlineRegistry(coll string, noColl bool, cacheDir string, now time.Time) (*attest.Registry, error) {
	var fetcher *collateral.Fetcher
	switch {
	case noColl:
	case coll != "":
		// Offline, from a bundle only: nothing is fetched or persisted, so
		// freshness is judged at the verification time (--at), and an old
		// bundle verifies old evidence. (The online cache below keeps the
		// wall clock: --at must never become its notion of now.)
		f, err := collateral.New(collateral.Options{Bundles: []string{coll}, Now: func() time.Time { return now }})
		if err != nil {
			return nil, err
		}
		fetcher = f
	default:
		f, err := collateral.New(collateral.Options{Dir: cacheDir, Client: &http.Client{Timeout: 30 * time.Second}})
		if err != nil {
			return nil, err
		}
		fetcher = f
	}
	cfg := formats.Config{}
	if fetcher != nil {
		cfg.Getter, cfg.Intel = fetcher, fetcher
	}
	return formats.Registry(cfg)
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "trustbound", "collateral")
	}
	return ""
}

// evidenceFromFiles detects what each file is and assembles one piece of
// evidence: an SNP report (raw, or a configfs-tsm outblob) with certificates
// (DER or PEM) or a GHCB certificate table (auxblob); a configfs-tsm report
// directory; an SGX DCAP quote; or JSON evidence (trustbound's Evidence, or
// the Confidential Containers az-snp-vtpm shape).
func evidenceFromFiles(paths []string) (*attest.Evidence, error) {
	var report, auxblob []byte
	var certs [][]byte
	var ev *attest.Evidence
	for _, p := range paths {
		if info, err := os.Stat(p); err == nil && info.IsDir() {
			if report != nil || ev != nil {
				return nil, usageErr("%s: give one piece of evidence at a time", p)
			}
			out, err1 := readBounded(filepath.Join(p, "outblob"), maxEvidenceFile)
			aux, err2 := readBounded(filepath.Join(p, "auxblob"), maxEvidenceFile)
			if err1 != nil {
				return nil, fmt.Errorf("%s: not a configfs-tsm report directory: %w", p, err1)
			}
			if err2 != nil && !errors.Is(err2, os.ErrNotExist) {
				return nil, err2
			}
			report, auxblob = out, aux
			continue
		}
		b, err := readBounded(p, maxEvidenceFile)
		if err != nil {
			return nil, err
		}
		kind, parsed := detect(b)
		if kind != "certs" && kind != "cert-table" && kind != "" && (report != nil || ev != nil) {
			return nil, usageErr("%s: give one piece of evidence at a time", p)
		}
		switch kind {
		case "snp-report":
			report = b
		case "certs":
			certs = append(certs, parsed...)
		case "sgx-quote":
			ev = &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: b}
		case "tdx-quote":
			ev = &attest.Evidence{Format: attest.FormatTDXQuote, Data: b}
		case "az-snp-vtpm":
			ev = &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: b}
		case "az-tdx-vtpm":
			ev = &attest.Evidence{Format: attest.FormatAzureTDXVTPM, Data: b}
		case "evidence-json":
			var e attest.Evidence
			if err := json.Unmarshal(b, &e); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			ev = &e
		case "cert-table":
			auxblob = b
		default:
			return nil, usageErr("%s: not a report, quote, certificate, certificate table or JSON evidence this version reads", p)
		}
	}
	if ev != nil {
		if report != nil {
			return nil, usageErr("give one piece of evidence at a time")
		}
		ev.Certs = append(ev.Certs, certs...)
		return ev, nil
	}
	if report == nil {
		return nil, usageErr("no report or quote among the files")
	}
	if auxblob != nil {
		e, err := snp.EvidenceFromConfigFS(report, auxblob)
		if err != nil {
			return nil, err
		}
		e.Certs = orderSNPCerts(append(e.Certs, certs...))
		return e, nil
	}
	return &attest.Evidence{Format: attest.FormatSNPReport, Data: report, Certs: orderSNPCerts(certs)}, nil
}

// maxTokenFile bounds a file holding a bearer or bootstrap token.
const maxTokenFile = 4 << 10

// atTime is the time of an --at flag (RFC 3339), or now when it is empty.
func atTime(at string) (time.Time, error) {
	if at == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return time.Time{}, usageErr("--at: %v", err)
	}
	return t, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(p string, limit int) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, limit)
	}
	return b, nil
}

// detect names what b is; for certificates it returns their DER.
func detect(b []byte) (string, [][]byte) {
	trimmed := bytes.TrimSpace(b)
	switch {
	case len(b) == abi.ReportSize && binary.LittleEndian.Uint32(b) >= 2 && binary.LittleEndian.Uint32(b) <= 5:
		return "snp-report", nil // an SNP report of a version the verifier may read
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		var ders [][]byte
		for rest := trimmed; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type == "CERTIFICATE" {
				ders = append(ders, blk.Bytes)
			}
		}
		if len(ders) > 0 {
			return "certs", ders
		}
	case bytes.HasPrefix(trimmed, []byte("{")):
		// Recognised by its keys; the verifier then says what is wrong
		// with it, if anything.
		var probe map[string]json.RawMessage
		if json.Unmarshal(trimmed, &probe) == nil {
			_, hcl := probe["hcl_report"]
			_, report := probe["report"]
			_, quote := probe["quote"]
			_, tdQuote := probe["td_quote"]
			_, format := probe["format"]
			switch {
			case tdQuote:
				return "az-tdx-vtpm", nil
			case hcl || (report && quote):
				return "az-snp-vtpm", nil
			case format:
				return "evidence-json", nil
			}
		}
	case len(b) >= 48 && b[0] == 3 && b[1] == 0 && b[2] == 2 && b[3] == 0:
		return "sgx-quote", nil // version 3, ECDSA-256-with-P-256
	case len(b) >= 48 && (b[0] == 4 || b[0] == 5) && b[1] == 0 && b[2] == 2 && b[3] == 0 && binary.LittleEndian.Uint32(b[4:]) == 0x81:
		return "tdx-quote", nil // version 4/5, ECDSA-256-with-P-256, TEE type TDX
	}
	if _, err := x509.ParseCertificate(b); err == nil {
		return "certs", [][]byte{b}
	}
	if _, err := abi.ParseSnpCertTableHeader(b); err == nil {
		return "cert-table", nil
	}
	return "", nil
}

// orderSNPCerts puts the VCEK or VLEK first, as the verifier expects.
func orderSNPCerts(ders [][]byte) [][]byte {
	var first, rest [][]byte
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err == nil && (c.Subject.CommonName == "SEV-VCEK" || c.Subject.CommonName == "SEV-VLEK") {
			first = append(first, d)
		} else {
			rest = append(rest, d)
		}
	}
	return append(first, rest...)
}
