// Package agent is the workload side of the trust path: inside the TEE it
// generates the workload's keys, binds them and the coordinator's nonce
// into evidence, attests, and unwraps the secrets and certificate released
// to it; keys never leave the process.
package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/token"
)

// Identity is the key material a workload generates inside its TEE: a
// signing key for its certificate and an HPKE key that releases are sealed
// to.
type Identity struct {
	Signer *ecdsa.PrivateKey
	HPKE   hpke.PrivateKey
	hpke   api.HPKEKey
}

// NewIdentity generates the workload's keys.
func NewIdentity() (*Identity, error) {
	sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	hk, pub, err := keybroker.NewTEEKey()
	if err != nil {
		return nil, err
	}
	return &Identity{Signer: sk, HPKE: hk, hpke: pub}, nil
}

// RuntimeData returns the exact runtime data document binding nonce and
// the identity's public keys, for workload.
func (id *Identity) RuntimeData(workload, nonce string) ([]byte, error) {
	return id.runtimeData(workload, nonce, nil)
}

// runtimeData is RuntimeData with extra public keys after the identity
// key (the sidecar's RSA wrapping key for a Key Vault style release).
func (id *Identity) runtimeData(workload, nonce string, extra []api.JWK) ([]byte, error) {
	jwk, err := api.NewJWK(api.KeyIdentity, "sig", &id.Signer.PublicKey)
	if err != nil {
		return nil, err
	}
	keys := append([]api.JWK{jwk}, extra...)
	return json.Marshal(api.RuntimeData{Nonce: nonce, Workload: workload, Keys: keys, HPKE: id.hpke})
}

// Evidence fetches a challenge and produces evidence from the TEE that
// binds it and the identity's keys.
func (id *Identity) Evidence(ctx context.Context, c *Client, tee attest.Attester, workload string) (*api.AttestRequest, error) {
	return id.evidence(ctx, c, tee, workload, nil)
}

// evidence is Evidence with extra public keys bound in the runtime data.
func (id *Identity) evidence(ctx context.Context, c *Client, tee attest.Attester, workload string, extra []api.JWK) (*api.AttestRequest, error) {
	ch, err := c.Challenge(ctx)
	if err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	rd, err := id.runtimeData(workload, ch.Nonce, extra)
	if err != nil {
		return nil, err
	}
	ev, err := tee.Attest(ctx, attest.NativeReportData(rd))
	if err != nil {
		return nil, fmt.Errorf("evidence from the %s TEE: %w", tee.TEE(), err)
	}
	ev.RuntimeData = rd
	return &api.AttestRequest{Workload: workload, Evidence: *ev}, nil
}

// Result is what an attested workload received, in memory.
type Result struct {
	Token       string
	Claims      attest.Claims
	SPIFFEID    string
	Certificate string // PEM
	CA          string // PEM
	Secrets     map[string][]byte
	Simulated   bool
}

// Run performs the whole trust path for workload: keys, challenge,
// evidence, attest, release, unwrap. Everything it returns is in memory;
// Write stores it, Start (the enclave library) never does.
func Run(ctx context.Context, c *Client, tee attest.Attester, workload string) (*Identity, *Result, error) {
	return run(ctx, c, tee, workload, time.Now())
}

// run is the in-memory core of Run and Start: fresh TEE-held keys, then
// the trust path with them, the release opened at now.
func run(ctx context.Context, c *Client, tee attest.Attester, workload string, now time.Time) (*Identity, *Result, error) {
	if c == nil || tee == nil || workload == "" {
		return nil, nil, errors.New("agent: a coordinator client, a TEE and a workload name are required")
	}
	id, err := NewIdentity()
	if err != nil {
		return nil, nil, err
	}
	res, err := id.Attest(ctx, c, tee, workload, now)
	if err != nil {
		return nil, nil, err
	}
	return id, res, nil
}

// Attest runs the trust path with the identity's existing keys: challenge,
// evidence, attest and release in one request (Client.AttestRelease), and
// Open at now. Against a coordinator older than that route (404 or 405
// without a problem document) it presents the same evidence to Attest,
// then the token to Release. Renewal calls it again with the same keys.
func (id *Identity) Attest(ctx context.Context, c *Client, tee attest.Attester, workload string, now time.Time) (*Result, error) {
	req, err := id.Evidence(ctx, c, tee, workload)
	if err != nil {
		return nil, err
	}
	both, err := c.AttestRelease(ctx, &api.AttestReleaseRequest{Workload: req.Workload, Evidence: req.Evidence})
	switch {
	case err == nil:
		return id.OpenAttestRelease(both, now)
	case !routeUnknown(err):
		return nil, fmt.Errorf("attest-release: %w", err)
	}
	// An older coordinator: the route is unknown to it, so the nonce of
	// the evidence is still unused.
	ar, err := c.Attest(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	rel, err := c.Release(ctx, &api.ReleaseRequest{Token: ar.Token})
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	res, err := id.Open(rel, now)
	if err != nil {
		return nil, err
	}
	res.Token, res.Claims = ar.Token, ar.Claims
	return res, nil
}

// Open unwraps a release with the identity's HPKE key, and checks that the
// certificate is an X.509-SVID for the identity's signing key, issued by the
// CA in the release and naming the SPIFFE ID the release states.
//
// rel.Certificate is the chain: the leaf, then the intermediate CA that
// issued it (one per manifest version); rel.CA is the root. Open verifies
// leaf → intermediate → root.
//
// Open takes releases whose secrets are sealed one by one (/v1/release).
// A release under one HPKE context names the token it was decided on,
// which only the response carrying the token can check: it is refused
// here, and opened by OpenAttestRelease.
func (id *Identity) Open(rel *api.ReleaseResponse, now time.Time) (*Result, error) {
	return id.open(rel, "", now)
}

// OpenAttestRelease opens the release of a /v1/attest-release answer as
// Open does, and checks that its HPKE context names the token of the same
// answer (its jti) and exactly the secrets released, in order. The result
// carries the answer's token and claims.
func (id *Identity) OpenAttestRelease(ar *api.AttestReleaseResponse, now time.Time) (*Result, error) {
	if ar.Release.Context == nil {
		return nil, errors.New("release: the attest-release answer has no HPKE context")
	}
	jti, err := tokenID(ar.Token)
	if err != nil {
		return nil, fmt.Errorf("attest-release: %w", err)
	}
	res, err := id.open(&ar.Release, jti, now)
	if err != nil {
		return nil, err
	}
	res.Token, res.Claims = ar.Token, ar.Claims
	return res, nil
}

// maxTokenSize bounds the token tokenID reads.
const maxTokenSize = 64 << 10

// tokenID returns the jti claim of a compact JWS, without verifying it:
// the HPKE context a release opens under binds the id, and the coordinator
// the answer came from is the one that signed it.
func tokenID(raw string) (string, error) {
	if len(raw) > maxTokenSize {
		return "", fmt.Errorf("token: %d bytes, more than %d", len(raw), maxTokenSize)
	}
	payload, err := token.Payload(raw)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	var c struct {
		ID *string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("token: payload: %w", err)
	}
	if c.ID == nil || *c.ID == "" {
		return "", errors.New("token: payload: no jti")
	}
	return *c.ID, nil
}

// open is Open with the id of the token a release under one HPKE context
// must name ("": such a release is refused).
func (id *Identity) open(rel *api.ReleaseResponse, tokenID string, now time.Time) (*Result, error) {
	chain, err := parseChainPEM(rel.Certificate)
	if err != nil {
		return nil, fmt.Errorf("release: certificate: %w", err)
	}
	cert := chain[0]
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&id.Signer.PublicKey) {
		return nil, errors.New("release: the certificate is not for this workload's key")
	}
	root, err := parseCertPEM(rel.CA)
	if err != nil {
		return nil, fmt.Errorf("release: CA: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	got, err := identity.VerifySVID(chain, identity.VerifyOptions{Roots: roots, Now: now, Usage: x509.ExtKeyUsageClientAuth})
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	if got.String() != rel.SPIFFEID {
		return nil, fmt.Errorf("release: certificate names %s, release says %s", got, rel.SPIFFEID)
	}
	var secrets map[string][]byte
	if rel.Context == nil {
		secrets, err = openSecrets(rel, func(s api.WrappedSecret) ([]byte, error) { return keybroker.Unwrap(id.HPKE, s) })
	} else {
		rc := *rel.Context
		secrets, err = openContext(rel, tokenID, func(ss []api.WrappedSecret) ([][]byte, error) { return keybroker.UnwrapAll(id.HPKE, rc, ss) })
	}
	if err != nil {
		return nil, err
	}
	return &Result{SPIFFEID: rel.SPIFFEID, Certificate: rel.Certificate, CA: rel.CA, Secrets: secrets, Simulated: rel.Simulated}, nil
}

// openSecrets unwraps every secret of rel with unwrap. On any error it
// zeroes the values already unwrapped before returning: a release that
// fails half way leaves no secret in memory.
func openSecrets(rel *api.ReleaseResponse, unwrap func(api.WrappedSecret) ([]byte, error)) (_ map[string][]byte, err error) {
	out := make(map[string][]byte, len(rel.Secrets))
	defer func() {
		if err != nil {
			zeroSecrets(out)
		}
	}()
	for _, s := range rel.Secrets {
		if s.Info != api.SecretInfo(rel.Workload, s.Name, s.Version) {
			return nil, fmt.Errorf("release: secret %q carries unexpected context", s.Name)
		}
		if _, dup := out[s.Name]; dup {
			return nil, fmt.Errorf("release: secret %q is released twice", s.Name)
		}
		v, err := unwrap(s)
		if err != nil {
			clear(v)
			return nil, fmt.Errorf("release: %w", err)
		}
		out[s.Name] = v
	}
	return out, nil
}

// openContext opens the secrets of a release sealed under one HPKE
// context (rel.Context) with unwrapAll, in the order given, after the
// checks openSecrets makes of each (its info string, no name twice) and a
// check that the context's info is that of a release to rel.Workload on
// the token tokenID of exactly rel.Secrets, in order (api.ReleaseInfo). On
// any error it zeroes whatever unwrapAll opened before returning.
func openContext(rel *api.ReleaseResponse, tokenID string, unwrapAll func([]api.WrappedSecret) ([][]byte, error)) (map[string][]byte, error) {
	if tokenID == "" {
		return nil, errors.New("release: the secrets are sealed under one HPKE context, which names a token: open the whole attest-release answer (OpenAttestRelease)")
	}
	seen := make(map[string]bool, len(rel.Secrets))
	for _, s := range rel.Secrets {
		if s.Info != api.SecretInfo(rel.Workload, s.Name, s.Version) {
			return nil, fmt.Errorf("release: secret %q carries unexpected context", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("release: secret %q is released twice", s.Name)
		}
		seen[s.Name] = true
	}
	if rel.Context.Info != api.ReleaseInfo(rel.Workload, tokenID, rel.Secrets) {
		return nil, errors.New("release: the secrets' HPKE context carries unexpected info (another workload, another token, or other secrets than those released)")
	}
	if len(rel.Secrets) == 0 {
		return map[string][]byte{}, nil // nothing sealed, nothing to open
	}
	values, err := unwrapAll(rel.Secrets)
	if err == nil && len(values) != len(rel.Secrets) {
		err = fmt.Errorf("%d values opened of %d secrets", len(values), len(rel.Secrets))
	}
	if err != nil {
		for _, v := range values {
			clear(v)
		}
		return nil, fmt.Errorf("release: %w", err)
	}
	out := make(map[string][]byte, len(values))
	for i, s := range rel.Secrets {
		out[s.Name] = values[i]
	}
	return out, nil
}

func parseCertPEM(s string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// parseChainPEM parses one or more "CERTIFICATE" PEM blocks, leaf first,
// with nothing but whitespace around them.
func parseChainPEM(s string) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
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
		chain, rest = append(chain, c), r
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after the certificates")
	}
	return chain, nil
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Write stores the result under dir with owner-only permissions:
// identity.key, identity.crt, ca.crt and secrets/<name>.
func (id *Identity) Write(dir string, res *Result) error {
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		return err
	}
	// An existing directory may have looser permissions: tighten them.
	for _, d := range []string{dir, filepath.Join(dir, "secrets")} {
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Signer)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"identity.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"identity.crt": []byte(res.Certificate),
		"ca.crt":       []byte(res.CA),
	}
	for name, v := range res.Secrets {
		if !safeName.MatchString(name) || name == "." || name == ".." {
			return fmt.Errorf("refusing to write secret with unsafe name %q", name)
		}
		files[filepath.Join("secrets", name)] = v
	}
	for name, b := range files {
		if err := writeFile0600(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

func writeFile0600(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
