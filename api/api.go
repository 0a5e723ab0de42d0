// Package api defines the wire types of trustbound's native HTTP API
// (/v1/...), shared by the coordinator and the agent: plain data with
// encoding rules, no behaviour beyond them.
package api

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/trustbound/trustbound/attest"
)

// Paths of the native API.
const (
	PathChallenge = "/v1/challenge"
	PathAttest    = "/v1/attest"
	PathRelease   = "/v1/release"
	// PathAttestRelease is attest and release in one request
	// (AttestReleaseRequest): one round trip, no token re-verified, and
	// the secrets sealed under one HPKE context.
	PathAttestRelease = "/v1/attest-release"
	PathManifest      = "/v1/manifest"
	PathSecrets       = "/v1/secrets/" // + name
	PathStatus        = "/v1/status"
	PathCA            = "/v1/ca"           // the coordinator's own (TLS) CA
	PathTrustBundle   = "/v1/trust-bundle" // the workload CA of the manifest in force
	PathAudit         = "/v1/audit"
	PathPolicies      = "/v1/policies/" // + name
	PathDryRun        = "/v1/dry-run"
	PathHealth        = "/healthz"
	// PathOpenAPI serves the OpenAPI description of the API.
	PathOpenAPI = "/openapi.yaml"
	// PathCerts (the JWK Set of the token keys) and PathOpenIDConfiguration
	// are where Azure Attestation and OpenID Connect clients look.
	PathCerts               = "/certs"
	PathOpenIDConfiguration = "/.well-known/openid-configuration"
)

// HeaderBootstrap carries the bootstrap token with the first manifest.
const HeaderBootstrap = "Trustbound-Bootstrap"

// MaxBody is the largest request body the coordinator reads, except a
// manifest (PUT /v1/manifest), which may be MaxManifestBody.
const MaxBody = 1 << 20

// MaxManifestBody is the largest manifest the coordinator accepts: the
// manifest package's limit (manifest.MaxSize, which a coordinator test
// holds equal), room for more than 10,000 workloads.
const MaxManifestBody = 16 << 20

// Challenge is a fresh, single-use nonce.
type Challenge struct {
	// Nonce is base64url (no padding) of 32 random bytes.
	Nonce     string    `json:"nonce"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Key IDs in RuntimeData.
const (
	// KeyIdentity is the TEE-held signing key that the workload
	// certificate is issued for.
	KeyIdentity = "tb-identity"
)

// RuntimeData is the document a workload binds into its evidence: the
// report data is attest.NativeReportData(the exact JSON bytes). It carries
// the challenge nonce and the public keys the TEE generated, so that what
// the coordinator releases can only be read, and the certificate only be
// used, inside that TEE.
type RuntimeData struct {
	Nonce    string  `json:"nonce"`
	Workload string  `json:"workload"`
	Keys     []JWK   `json:"keys"`
	HPKE     HPKEKey `json:"hpke"`
}

// HPKEKey is an HPKE recipient public key with its suite (RFC 9180 IDs).
type HPKEKey struct {
	KEM       uint16 `json:"kem"`
	KDF       uint16 `json:"kdf"`
	AEAD      uint16 `json:"aead"`
	PublicKey []byte `json:"publicKey"`
}

// AttestRequest asks the coordinator to verify and appraise evidence for a
// named workload. Evidence.RuntimeData holds the exact RuntimeData JSON.
type AttestRequest struct {
	Workload string          `json:"workload"`
	Evidence attest.Evidence `json:"evidence"`
}

// AttestResponse carries the verdict as a signed token, and the claims for
// the caller's information (the token is what counts).
type AttestResponse struct {
	Token     string        `json:"token"`
	Claims    attest.Claims `json:"claims"`
	Simulated bool          `json:"simulated"`
}

// ReleaseRequest presents an attestation token to get the workload's
// secrets and identity.
type ReleaseRequest struct {
	Token string `json:"token"`
	// Secrets, when given, names the secrets wanted; each must be granted
	// to the workload. Empty means every granted secret.
	Secrets []string `json:"secrets,omitempty"`
}

// ReleaseResponse carries the workload certificate for its TEE-held key and
// every secret granted to it, each wrapped with HPKE to the TEE's key.
type ReleaseResponse struct {
	Workload string `json:"workload"`
	SPIFFEID string `json:"spiffeID"`
	// Certificate is the PEM workload certificate chain, leaf first, then
	// the intermediate of the manifest version; CA the PEM root.
	Certificate string          `json:"certificate"`
	CA          string          `json:"ca"`
	Secrets     []WrappedSecret `json:"secrets"`
	Simulated   bool            `json:"simulated"`
	// Context, when set, is the one HPKE context all of Secrets are sealed
	// under (see ReleaseContext); when absent each secret is sealed on its
	// own (WrappedSecret). /v1/release never sets it.
	Context *ReleaseContext `json:"context,omitempty"`
}

// WrappedSecret is one secret sealed to the workload's HPKE key: Sealed is
// the HPKE single-shot output (encapsulated key then ciphertext), with Info
// as the HPKE info string; or, in a release with a Context, the secret's
// ciphertext in that context, with Info as its additional data.
type WrappedSecret struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Version int    `json:"version"`
	Info    string `json:"info"`
	Sealed  []byte `json:"sealed"`
}

// AttestReleaseRequest is an AttestRequest and a ReleaseRequest in one:
// the evidence is verified and appraised as by /v1/attest, and on success
// the workload's secrets and certificate are released as by /v1/release,
// to the keys of the runtime data the evidence binds.
type AttestReleaseRequest struct {
	Workload string          `json:"workload"`
	Evidence attest.Evidence `json:"evidence"`
	// Secrets, when given, names the secrets wanted (as in
	// ReleaseRequest); empty means every granted secret.
	Secrets []string `json:"secrets,omitempty"`
}

// AttestReleaseResponse is the attestation (the token and the claims, as
// /v1/attest answers) and the release. Release.Context is always set: the
// secrets are sealed under one HPKE context (see ReleaseContext).
type AttestReleaseResponse struct {
	AttestResponse
	Release ReleaseResponse `json:"release"`
}

// ReleaseContext is the one HPKE context every secret of a release is
// sealed under, when the release says so (/v1/attest-release): Enc is the
// encapsulated key and Info the context's info string (ReleaseInfo). The
// release's secrets are then the context's messages in order: the i-th
// secret's Sealed is the i-th ciphertext (no encapsulated key), with its
// Info string (SecretInfo) as the additional data. A recipient opens them
// in the order given.
type ReleaseContext struct {
	Enc  []byte `json:"enc"`
	Info string `json:"info"`
}

// ReleaseInfo is the HPKE info string of the one context of a release:
// it names the workload, the token the release was decided on, and the
// secrets released, in order: their count and the SHA-256 of their names
// and versions. A response whose secrets were cut short, reordered or
// swapped for other versions, or that carries another token, does not
// match the info the context was made with.
func ReleaseInfo(workload, tokenID string, secrets []WrappedSecret) string {
	return fmt.Sprintf("trustbound/v1 release %s for %s: %s", tokenID, workload, ReleaseSecrets(secrets))
}

// ReleaseSecrets is how ReleaseInfo names the secrets of a release, and
// how it ends: "<count> secrets <hex SHA-256 of each secret's name length
// (8 bytes big-endian), name and version (8 bytes big-endian), in order>".
func ReleaseSecrets(secrets []WrappedSecret) string {
	h := sha256.New()
	for _, s := range secrets {
		// Length-prefixed, so no two lists encode alike.
		_, _ = h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s.Name))))
		_, _ = h.Write([]byte(s.Name))
		_, _ = h.Write(binary.BigEndian.AppendUint64(nil, uint64(int64(s.Version))))
	}
	return fmt.Sprintf("%d secrets %s", len(secrets), hex.EncodeToString(h.Sum(nil)))
}

// SecretInfo is the HPKE info string for a secret release: it names the
// secret, its version and the workload, so a sealed value cannot be passed
// off as another.
func SecretInfo(workload, name string, version int) string {
	return fmt.Sprintf("trustbound/v1 secret %s v%d for %s", name, version, workload)
}

// SetSecretRequest is an owner's user-secret value. The value is never echoed.
type SetSecretRequest struct {
	Value []byte `json:"value"`
}

// SetSecretResponse reports the version stored.
type SetSecretResponse struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// ManifestResponse is the current manifest and its identity.
type ManifestResponse struct {
	Digest   string          `json:"digest"`
	Revision int64           `json:"revision"`
	Manifest json.RawMessage `json:"manifest"`
	Raw      []byte          `json:"raw"`
}

// SetManifestResponse reports the manifest now in force.
type SetManifestResponse struct {
	Digest   string `json:"digest"`
	Revision int64  `json:"revision"`
}

// Status is the coordinator's view of its workloads.
type Status struct {
	ManifestDigest string           `json:"manifestDigest,omitempty"`
	AllowSimulated bool             `json:"allowSimulated"`
	Workloads      []WorkloadStatus `json:"workloads"`
}

// WorkloadStatus is one workload, its trust boundary and its record.
type WorkloadStatus struct {
	Name         string    `json:"name"`
	Model        string    `json:"model"`
	TEE          string    `json:"tee"`
	Inside       []string  `json:"inside"`
	Outside      []string  `json:"outside"`
	Attested     int       `json:"attested"`
	Refused      int       `json:"refused"`
	Released     int       `json:"released"`
	LastVerdict  string    `json:"lastVerdict,omitempty"`
	LastAttested time.Time `json:"lastAttested,omitzero"`
	Simulated    bool      `json:"simulated"`
}

// AuditRecord is one recorded release: who received which secret version,
// on which evidence, when — never the value.
type AuditRecord struct {
	At             time.Time `json:"at"`
	Workload       string    `json:"workload"`
	Secret         string    `json:"secret"`
	Version        int       `json:"version"`
	EvidenceDigest string    `json:"evidenceDigest"`
	TokenID        string    `json:"tokenID"`
	Simulated      bool      `json:"simulated"`
}

// Audit pages (GET /v1/audit?after=<cursor>&limit=<n>).
const (
	// DefaultAuditLimit is the page size when limit is not given, and
	// MaxAuditLimit the largest limit accepted.
	DefaultAuditLimit = 1000
	MaxAuditLimit     = 1000
)

// AuditPage is one page of the audit trail, oldest first. Next, when set,
// is the cursor of the following page (after=Next); an empty Next means
// this page is the last one so far. Records are never repeated or skipped
// from one page to the next: a cursor names a position in the trail, which
// only grows at its end.
type AuditPage struct {
	Records []AuditRecord `json:"records"`
	Next    string        `json:"next,omitempty"`
}

// Policy kinds: what the text of an appraisal policy is.
const (
	// PolicyRego is a Rego module (package trustbound, rules allow and
	// deny) over the verified claims.
	PolicyRego = "rego"
	// PolicyRelease is an Azure Key Vault secure key release policy
	// (JSON, version 1.0.0) over the token's claims.
	PolicyRelease = "release"
	// PolicyAttestation is Azure Attestation policy text (version=1.0;
	// authorizationrules and issuancerules) over the Azure claims; its
	// issued claims join the token.
	PolicyAttestation = "attestation"
)

// PolicyVersion is one version of a policy, without its text.
type PolicyVersion struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	// Hash is the lower-case hex SHA-256 of the text.
	Hash  string    `json:"hash"`
	SetBy string    `json:"setBy"`
	SetAt time.Time `json:"setAt"`
}

// PolicyResponse is a policy's current version with its text, and every
// version it has had, oldest first.
type PolicyResponse struct {
	Name string `json:"name"`
	PolicyVersion
	Text     string          `json:"text"`
	Versions []PolicyVersion `json:"versions"`
}

// SetPolicyResponse reports the version stored.
type SetPolicyResponse struct {
	Name string `json:"name"`
	PolicyVersion
}

// DryRunRequest asks for an appraisal of evidence for a workload with
// draft reference values and policies in place of the stored ones. No
// nonce is consumed; the report data is checked against
// Evidence.RuntimeData only when that is given.
type DryRunRequest struct {
	Workload string          `json:"workload"`
	Evidence attest.Evidence `json:"evidence"`
	Draft    *DryRunDraft    `json:"draft,omitempty"`
}

// DryRunDraft replaces stored values for one dry run.
type DryRunDraft struct {
	// Reference replaces the workload's reference values (the manifest's
	// JSON form of a reference).
	Reference json.RawMessage `json:"reference,omitempty"`
	// Policies maps policy names to draft texts. A draft of a policy the
	// workload names replaces it; the other drafts are evaluated after
	// the workload's policies, in name order.
	Policies map[string]string `json:"policies,omitempty"`
}

// Verdicts of one appraisal layer.
const (
	VerdictPermit = "permit"
	VerdictDeny   = "deny"
)

// Appraisal layers, in the order they are evaluated: the evidence is
// verified, its report data binding checked, then the manifest's reference
// values and each policy (layer = its kind) decide.
const (
	LayerEvidence = "evidence"
	LayerBinding  = "binding"
	LayerManifest = "manifest"
)

// LayerVerdict is what one layer decided.
type LayerVerdict struct {
	// Layer is LayerEvidence, LayerBinding, LayerManifest or a policy kind.
	Layer string `json:"layer"`
	// Name is the policy's name (the workload's, for LayerManifest).
	Name    string `json:"name,omitempty"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
}

// DryRunResponse is the verdict of every layer, the claims a token would
// carry, and that token unsigned (alg "none"), which no verifier accepts.
type DryRunResponse struct {
	Verdict string          `json:"verdict"`
	Layers  []LayerVerdict  `json:"layers"`
	Claims  json.RawMessage `json:"claims,omitempty"`
	Token   string          `json:"token,omitempty"`
}

// Problem is an RFC 7807 error body (application/problem+json).
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Error makes a Problem an error on the client side.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%s (%d): %s", p.Title, p.Status, p.Detail)
	}
	return fmt.Sprintf("%s (%d)", p.Title, p.Status)
}

// JWK is the subset of RFC 7517 used for TEE-held public keys: EC, OKP
// and RSA (the RSA encryption key a Key Vault style release wraps to, with
// key_ops ["encrypt"]).
type JWK struct {
	Kid    string   `json:"kid"`
	Kty    string   `json:"kty"`
	Use    string   `json:"use,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
}

var b64 = base64.RawURLEncoding

// NewJWK encodes an ECDSA (P-256, P-384), Ed25519 or RSA public key.
func NewJWK(kid, use string, pub any) (JWK, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // uncompressed point 0x04||X||Y
		if err != nil {
			return JWK{}, err
		}
		n := (len(raw) - 1) / 2
		var crv string
		switch k.Curve {
		case elliptic.P256():
			crv = "P-256"
		case elliptic.P384():
			crv = "P-384"
		default:
			return JWK{}, errors.New("jwk: unsupported curve")
		}
		return JWK{Kid: kid, Kty: "EC", Use: use, Crv: crv, X: b64.EncodeToString(raw[1 : 1+n]), Y: b64.EncodeToString(raw[1+n:])}, nil
	case ed25519.PublicKey:
		return JWK{Kid: kid, Kty: "OKP", Use: use, Crv: "Ed25519", X: b64.EncodeToString(k)}, nil
	case *rsa.PublicKey:
		return JWK{Kid: kid, Kty: "RSA", Use: use, N: b64.EncodeToString(k.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}, nil
	}
	return JWK{}, fmt.Errorf("jwk: unsupported key type %T", pub)
}

// PublicKey decodes the key, checking that EC points are on the curve
// and that RSA keys are at least minRSABits with a sane exponent.
func (j JWK) PublicKey() (any, error) {
	if j.Kty == "RSA" {
		return j.rsaPublicKey()
	}
	x, err := b64.DecodeString(j.X)
	if err != nil {
		return nil, fmt.Errorf("jwk %q: x: %w", j.Kid, err)
	}
	switch {
	case j.Kty == "EC" && (j.Crv == "P-256" || j.Crv == "P-384"):
		y, err := b64.DecodeString(j.Y)
		if err != nil {
			return nil, fmt.Errorf("jwk %q: y: %w", j.Kid, err)
		}
		curve, size := elliptic.P256(), 32
		if j.Crv == "P-384" {
			curve, size = elliptic.P384(), 48
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("jwk %q: coordinates must be %d bytes", j.Kid, size)
		}
		raw := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("jwk %q: %w", j.Kid, err)
		}
		return pub, nil
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("jwk %q: Ed25519 key must be 32 bytes", j.Kid)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("jwk %q: unsupported kty/crv %s/%s", j.Kid, j.Kty, j.Crv)
}

// minRSABits is the smallest RSA modulus a JWK may carry.
const minRSABits = 2048

func (j JWK) rsaPublicKey() (*rsa.PublicKey, error) {
	n, err := b64.DecodeString(j.N)
	if err != nil {
		return nil, fmt.Errorf("jwk %q: n: %w", j.Kid, err)
	}
	e, err := b64.DecodeString(j.E)
	if err != nil {
		return nil, fmt.Errorf("jwk %q: e: %w", j.Kid, err)
	}
	if len(n) == 0 || n[0] == 0 || len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, fmt.Errorf("jwk %q: n and e must be minimal big-endian integers (e at most 4 bytes)", j.Kid)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() < minRSABits || pub.N.BitLen() > 8192 {
		return nil, fmt.Errorf("jwk %q: RSA modulus of %d bits; want %d to 8192", j.Kid, pub.N.BitLen(), minRSABits)
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, fmt.Errorf("jwk %q: RSA exponent %d is not an odd number of at least 3", j.Kid, pub.E)
	}
	return pub, nil
}

// Key returns the key with the given kid.
func (r *RuntimeData) Key(kid string) (JWK, bool) {
	for _, k := range r.Keys {
		if k.Kid == kid {
			return k, true
		}
	}
	return JWK{}, false
}

// ParseRuntimeData decodes runtime data strictly (no unknown fields, no
// trailing data).
func ParseRuntimeData(b []byte) (*RuntimeData, error) {
	var rd RuntimeData
	if err := DecodeStrict(b, &rd); err != nil {
		return nil, fmt.Errorf("runtime data: %w", err)
	}
	if rd.Nonce == "" {
		return nil, errors.New("runtime data: no nonce")
	}
	return &rd, nil
}
