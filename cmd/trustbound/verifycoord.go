package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/coordinator"
)

// simulatedCoordinatorMeasurement is the launch measurement of the
// simulated SNP TEE a coordinator attests itself with off TEE hardware:
// SHA-384("trustbound coordinator (simulated)"). Anyone can mint evidence
// with it (the simulated vendor keys are public); verify-coordinator
// accepts it only with --allow-simulated.
var simulatedCoordinatorMeasurement = sha512.Sum384([]byte("trustbound coordinator (simulated)"))

// coordinatorSelfAttester is the TEE the coordinator attests itself with.
// trustbound has no in-guest attester for real hardware yet, so this is
// always the simulated SNP TEE, and its evidence is labelled simulated.
func coordinatorSelfAttester() attest.Attester {
	return simtee.SNP{Measurement: simulatedCoordinatorMeasurement}
}

// errCoordinatorNotVerified marks every reason verify-coordinator refuses.
var errCoordinatorNotVerified = errors.New("coordinator not verified")

func notVerified(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCoordinatorNotVerified, fmt.Sprintf(format, args...))
}

// maxCoordinatorResponse bounds what verify-coordinator reads per request.
const maxCoordinatorResponse = 4 << 20

func cmdVerifyCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify-coordinator", stderr)
	measurement := fs.String("measurement", "", "hex launch measurement the coordinator's TEE must report (required unless --allow-simulated)")
	allowSim := fs.Bool("allow-simulated", false, "accept a SIMULATED coordinator TEE with trustbound's fixed simulated measurement (proves nothing about hardware)")
	at := fs.String("at", "", "verify as of this time (RFC 3339); default now")
	out := fs.String("out", "coordinator-ca.pem", "where to write the verified CA certificate (PEM), for --ca")
	coll := fs.String("collateral", "", "offline collateral for the coordinator's evidence (as in 'trustbound verify')")
	cacheDir := fs.String("cache", defaultCacheDir(), "collateral cache directory (used when --collateral is not given)")
	// The URL may come before or after the flags.
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErr("verify-coordinator URL [--measurement HEX | --allow-simulated] [--at TIME] [--out FILE]")
	}
	rawURL := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("verify-coordinator takes one URL, got also %q", fs.Args())
	}
	base, err := url.Parse(rawURL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return usageErr("the coordinator URL must be https://host[:port], got %q", rawURL)
	}
	var want []byte
	if *measurement != "" {
		if want, err = hex.DecodeString(*measurement); err != nil || len(want) == 0 {
			return usageErr("--measurement must be hex")
		}
	} else if !*allowSim {
		return usageErr("--measurement is required (or --allow-simulated, to accept the simulated coordinator TEE)")
	}
	now, err := atTime(*at)
	if err != nil {
		return err
	}
	reg, err := offlineRegistry(*coll, false, *cacheDir, now)
	if err != nil {
		return err
	}
	v, err := verifyCoordinator(ctx, coordinatorCheck{base: base, measurement: want, allowSimulated: *allowSim, now: now, verifiers: reg})
	if err != nil {
		return err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.ca.Raw})
	if err := os.WriteFile(*out, caPEM, 0o644); err != nil {
		return err
	}
	label := ""
	if v.claims.Simulated {
		label = " (SIMULATED TEE: proves nothing about hardware)"
	}
	fmt.Fprintf(stdout, "coordinator %s verified: %s measurement %s%s\n  issuer %s, service CA sha256 %s, %d token keys\n  CA written to %s (use --ca %s)\n",
		base, v.claims.TEE, v.claims.Measurement, label, v.runtime.Issuer, v.runtime.ServiceCA, len(v.runtime.TokenKeys), *out, *out)
	return nil
}

// coordinatorCheck is what one verification of a coordinator expects.
type coordinatorCheck struct {
	base *url.URL
	// measurement is the expected launch measurement; nil accepts only the
	// simulated coordinator measurement, and only with allowSimulated.
	measurement    []byte
	allowSimulated bool
	now            time.Time
	verifiers      *attest.Registry
	// client is the bootstrap HTTP client; nil: one that skips TLS
	// verification, which this check then does itself.
	client *http.Client
}

// verifiedCoordinator is what verifyCoordinator established.
type verifiedCoordinator struct {
	ca      *x509.Certificate
	claims  *attest.Claims
	runtime coordinator.SelfRuntimeData
}

// verifyCoordinator fetches the coordinator's evidence without trusting
// its TLS certificate, verifies the evidence and its binding, appraises
// the measurement, and only then checks that the TLS certificates the
// coordinator presented and the token keys it publishes are the ones the
// evidence names.
func verifyCoordinator(ctx context.Context, chk coordinatorCheck) (*verifiedCoordinator, error) {
	hc := chk.client
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			// Bootstrap only: the server's certificate is checked below,
			// against the CA its verified evidence names.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, //nolint:gosec
		}}
	}
	var peers [][]*x509.Certificate
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, chk.base.JoinPath(path).String(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxCoordinatorResponse+1))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		if len(body) > maxCoordinatorResponse {
			return nil, fmt.Errorf("GET %s: answer larger than %d bytes", path, maxCoordinatorResponse)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
		}
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
			return nil, notVerified("GET %s: no TLS certificate presented", path)
		}
		peers = append(peers, resp.TLS.PeerCertificates)
		return body, nil
	}

	// 1. Fetch and parse the evidence.
	body, err := get(coordinator.PathCoordinatorEvidence)
	if err != nil {
		return nil, err
	}
	var se coordinator.SelfEvidence
	if err := json.Unmarshal(body, &se); err != nil {
		return nil, notVerified("evidence: %v", err)
	}
	if se.Evidence == nil || len(se.Evidence.RuntimeData) == 0 {
		return nil, notVerified("evidence: missing, or without runtime data")
	}
	var rd coordinator.SelfRuntimeData
	dec := json.NewDecoder(bytes.NewReader(se.Evidence.RuntimeData))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rd); err != nil || dec.More() {
		return nil, notVerified("runtime data: not the coordinator's document: %v", err)
	}

	// 2. Verify: signatures and chains to the vendor's roots.
	claims, err := chk.verifiers.Verify(ctx, se.Evidence, attest.Options{Now: chk.now, AllowSimulated: chk.allowSimulated})
	if err != nil {
		return nil, fmt.Errorf("%w: evidence: %w", errCoordinatorNotVerified, err)
	}
	// 3. The evidence binds the runtime data.
	if err := attest.BindsNative(claims.ReportData, se.Evidence.RuntimeData); err != nil {
		return nil, fmt.Errorf("%w: runtime data: %w", errCoordinatorNotVerified, err)
	}

	// 4. Appraise against the expected values; collect every violation.
	var violations []error
	if se.Simulated != claims.Simulated {
		violations = append(violations, notVerified("simulated label: the answer says %v, the evidence %v", se.Simulated, claims.Simulated))
	}
	if claims.Debug {
		violations = append(violations, notVerified("the coordinator's TEE is debuggable"))
	}
	switch {
	case chk.measurement != nil:
		if !bytes.Equal(claims.Measurement, chk.measurement) {
			violations = append(violations, notVerified("measurement: got %s, want %x", claims.Measurement, chk.measurement))
		}
	case !claims.Simulated:
		violations = append(violations, notVerified("measurement: the evidence is from a real TEE; pass the expected --measurement (it reports %s)", claims.Measurement))
	case !bytes.Equal(claims.Measurement, simulatedCoordinatorMeasurement[:]):
		violations = append(violations, notVerified("measurement: got %s, want the simulated coordinator's %x", claims.Measurement, simulatedCoordinatorMeasurement))
	}
	if err := errors.Join(violations...); err != nil {
		return nil, err
	}

	// 5. The service CA is the one the evidence names, and it certifies
	// the TLS certificate of every answer.
	caBody, err := get(api.PathCA)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(caBody)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, notVerified("service CA: %s is not a PEM certificate", api.PathCA)
	}
	sum := sha256.Sum256(blk.Bytes)
	if hex.EncodeToString(sum[:]) != strings.ToLower(rd.ServiceCA) {
		return nil, notVerified("service CA: %s serves sha256 %x, the evidence names %s", api.PathCA, sum, rd.ServiceCA)
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !ca.IsCA {
		return nil, notVerified("service CA: not a CA certificate: %v", err)
	}
	jwksBody, err := get(api.PathCerts)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, chain := range peers {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: chk.base.Hostname(),
			CurrentTime: chk.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return nil, fmt.Errorf("%w: TLS certificate: not certified by the service CA the evidence names: %w", errCoordinatorNotVerified, err)
		}
	}

	// 6. The token keys /certs publishes are the ones the evidence names.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwksBody, &set); err != nil {
		return nil, notVerified("token keys: %s: %v", api.PathCerts, err)
	}
	var got []string
	for _, k := range set.Keys {
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, notVerified("token keys: %s: %v", api.PathCerts, err)
		}
		got = append(got, base64.RawURLEncoding.EncodeToString(tp))
	}
	named := slices.Clone(rd.TokenKeys)
	slices.Sort(got)
	slices.Sort(named)
	if !slices.Equal(got, named) {
		return nil, notVerified("token keys: %s publishes %v, the evidence names %v", api.PathCerts, got, named)
	}
	return &verifiedCoordinator{ca: ca, claims: claims, runtime: rd}, nil
}
