// Package token issues and verifies attestation-result tokens: JWTs signed
// by the coordinator's token key that carry the appraised claims, the
// workload's TEE-held keys and the EAR status; it never sees evidence.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
)

// EATProfile is the EAR profile the tokens follow.
const EATProfile = "tag:github.com,2023:veraison/ear"

// Claims is the body of a trustbound attestation token.
type Claims struct {
	jwt.Claims
	Nonce string `json:"nonce,omitempty"`
	// EATProfile and Submods give the token the EAR shape.
	EATProfile string            `json:"eat_profile"`
	VerifierID map[string]string `json:"ear.verifier-id"`
	Submods    map[string]Submod `json:"submods"`
	// trustbound's own claims.
	Workload       string        `json:"x-tb-workload"`
	Model          string        `json:"x-tb-model"`
	Simulated      bool          `json:"x-tb-simulated"`
	ManifestDigest string        `json:"x-tb-manifest-digest"`
	EvidenceDigest string        `json:"x-tb-evidence-digest"`
	TEE            attest.Claims `json:"x-tb-tee"`
	// Runtime carries the TEE-held keys bound into the evidence.
	Runtime Runtime `json:"x-ms-runtime"`
}

// Submod is one EAR appraisal (trustbound issues one: "tee").
type Submod struct {
	Status   string `json:"ear.status"`
	PolicyID string `json:"ear.appraisal-policy-id"`
}

// Runtime is the token's view of the workload's runtime data.
type Runtime struct {
	Keys []api.JWK   `json:"keys"`
	HPKE api.HPKEKey `json:"hpke"`
}

// Issuer signs tokens with one ES256 key. It is safe for concurrent use.
type Issuer struct {
	key    *ecdsa.PrivateKey
	kid    string
	issuer string
	ttl    time.Duration
}

// NewIssuer returns an issuer for key (ECDSA P-256) naming itself iss in
// every token, whose tokens live ttl.
func NewIssuer(key *ecdsa.PrivateKey, iss string, ttl time.Duration) (*Issuer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("token: key must be ECDSA P-256 (ES256)")
	}
	if ttl <= 0 {
		return nil, errors.New("token: lifetime must be positive")
	}
	return &Issuer{key: key, kid: KeyID(&key.PublicKey), issuer: iss, ttl: ttl}, nil
}

// GenerateKey makes a new token key.
func GenerateKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// KeyID is the key's JWK thumbprint-like identifier: hex SHA-256 of its
// uncompressed point, first 16 bytes.
func KeyID(pub *ecdsa.PublicKey) string {
	raw, _ := pub.Bytes()
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:16])
}

// Public returns the verification key.
func (i *Issuer) Public() crypto.PublicKey { return &i.key.PublicKey }

// Issue fills iss, iat, nbf, exp and jti and signs c.
func (i *Issuer) Issue(c Claims, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	c.Issuer = i.issuer
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.Expiry = jwt.NewNumericDate(now.Add(i.ttl))
	c.ID = hex.EncodeToString(jti)
	c.EATProfile = EATProfile
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: i.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", i.kid))
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}

// ErrInvalid is wrapped by every refusal of Verify.
var ErrInvalid = errors.New("invalid attestation token")

// Verify checks the signature, issuer and validity window of a token
// issued by i, at now, and returns its claims.
func (i *Issuer) Verify(raw string, now time.Time) (*Claims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var c Claims
	if err := tok.Claims(&i.key.PublicKey, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: i.issuer, Time: now}, 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &c, nil
}
