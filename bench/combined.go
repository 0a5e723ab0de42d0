package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
)

// The combined round trip (POST /v1/attest-release): what the agent does
// once it uses that route (see BENCHMARKS.md). The agent package has no
// client for it yet, so the harness speaks it here.

// maxCombinedResponse bounds what the harness reads of one response.
const maxCombinedResponse = 1 << 20

// attestRelease presents evidence to /v1/attest-release.
func attestRelease(ctx context.Context, hc *http.Client, base string, req *api.AttestReleaseRequest) (*api.AttestReleaseResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+api.PathAttestRelease, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCombinedResponse+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCombinedResponse {
		return nil, fmt.Errorf("POST %s: response larger than %d bytes", api.PathAttestRelease, maxCombinedResponse)
	}
	if resp.StatusCode != http.StatusOK {
		p := &api.Problem{}
		if json.Unmarshal(b, p) != nil || p.Title == "" {
			return nil, fmt.Errorf("POST %s: HTTP %d", api.PathAttestRelease, resp.StatusCode)
		}
		return nil, p
	}
	var out api.AttestReleaseResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("POST %s: %w", api.PathAttestRelease, err)
	}
	return &out, nil
}

// openAll is agent.Identity.Open for a release sealed under one HPKE
// context: the certificate chain is checked the same way (leaf for the
// identity's key, leaf → intermediate → root, the SPIFFE ID the release
// states), then every secret is opened in order with keybroker.UnwrapAll.
func openAll(id *agent.Identity, rel *api.ReleaseResponse, now time.Time) (map[string][]byte, error) {
	if rel.Context == nil {
		return nil, errors.New("release: no HPKE context")
	}
	chain, err := parseCerts(rel.Certificate)
	if err != nil {
		return nil, fmt.Errorf("release: certificate: %w", err)
	}
	if pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&id.Signer.PublicKey) {
		return nil, errors.New("release: the certificate is not for this workload's key")
	}
	roots, err := parseCerts(rel.CA)
	if err != nil {
		return nil, fmt.Errorf("release: CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(roots[0])
	got, err := identity.VerifySVID(chain, identity.VerifyOptions{Roots: pool, Now: now, Usage: x509.ExtKeyUsageClientAuth})
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	if got.String() != rel.SPIFFEID {
		return nil, fmt.Errorf("release: certificate names %s, release says %s", got, rel.SPIFFEID)
	}
	for _, s := range rel.Secrets {
		if s.Info != api.SecretInfo(rel.Workload, s.Name, s.Version) {
			return nil, fmt.Errorf("release: secret %q carries unexpected context", s.Name)
		}
	}
	values, err := keybroker.UnwrapAll(id.HPKE, *rel.Context, rel.Secrets)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(values))
	for i, s := range rel.Secrets {
		out[s.Name] = values[i]
	}
	return out, nil
}

// parseCerts reads PEM certificates, at least one.
func parseCerts(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		blk, r := pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out, rest = append(out, c), r
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// roundTripCombined is one workload's whole path over the combined route:
// challenge, evidence from the simulated TEE, attest-and-release, open.
func roundTripCombined(ctx context.Context, tb *testbed, id *agent.Identity, sim attest.Attester, w string) (*api.ReleaseResponse, error) {
	req, err := id.Evidence(ctx, tb.client, sim, w)
	if err != nil {
		return nil, err
	}
	ar, err := attestRelease(ctx, tb.hc, tb.url, &api.AttestReleaseRequest{Workload: req.Workload, Evidence: req.Evidence})
	if err != nil {
		return nil, fmt.Errorf("attest-release: %w", err)
	}
	secrets, err := openAll(id, &ar.Release, time.Now())
	if err != nil {
		return nil, err
	}
	if len(secrets) != 2 {
		return nil, fmt.Errorf("%d secrets released, want 2", len(secrets))
	}
	return &ar.Release, nil
}
