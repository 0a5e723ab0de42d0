// Package token issues and verifies attestation-result tokens: JWTs signed
// by the coordinator's rotating token keys (ES256, or RS256) that carry the
// appraisal in EAR shape, the TEE's claims under Azure Attestation's names,
// the workload's TEE-held keys (x-ms-runtime) and trustbound's x-tb-*
// claims; it publishes the keys as a JWKS and an OpenID configuration, and
// never sees evidence.
package token

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Config configures an Issuer.
type Config struct {
	// Issuer is the iss of every token, and the issuer the OpenID
	// configuration names (an https URL for OpenID Connect clients).
	Issuer string
	// Keyring holds the signing keys. Required.
	Keyring *Keyring
	// TTL is the lifetime of a token; it may not exceed the keyring's
	// maximum token lifetime.
	TTL time.Duration
	// Algorithm is the algorithm tokens are signed with: ES256 (the
	// default) or RS256. The keyring must have a current key for it.
	Algorithm string
	// JWKSURL, when set, goes into every token's jku header, as in Azure
	// Attestation's tokens. Relying parties should not trust it unchecked.
	JWKSURL string
	// Rand is the source of token ids; nil means crypto/rand.
	Rand io.Reader
}

// Issuer signs tokens with the current key of its algorithm and verifies
// tokens signed by any published key. It is safe for concurrent use.
type Issuer struct {
	name string
	ring *Keyring
	ttl  time.Duration
	alg  string
	jku  string
	rand io.Reader

	mu    sync.Mutex
	certs map[string]*x509.Certificate // self-signed certificate per kid
	// signers holds one JWS signer per current key and token type, made
	// on first use (a signer is a key and a fixed header). When a new
	// key's signer is made, the signers of keys the keyring no longer
	// signs with are dropped, so a rotated-out private key is not kept.
	signers map[signerKey]jose.Signer
}

// signerKey names a cached signer: the key's kid and the token type.
type signerKey struct {
	kid string
	typ jose.ContentType
}

// NewIssuer returns an issuer for cfg.
func NewIssuer(cfg Config) (*Issuer, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("token: issuer name required")
	}
	if cfg.Keyring == nil {
		return nil, errors.New("token: keyring required")
	}
	if cfg.TTL <= 0 {
		return nil, errors.New("token: lifetime must be positive")
	}
	if cfg.TTL > cfg.Keyring.MaxLifetime() {
		return nil, fmt.Errorf("token: lifetime %v exceeds the keyring's maximum token lifetime %v, so rotated keys would retire before their tokens expire",
			cfg.TTL, cfg.Keyring.MaxLifetime())
	}
	alg := cfg.Algorithm
	if alg == "" {
		alg = ES256
	}
	if alg != ES256 && alg != RS256 {
		return nil, fmt.Errorf("token: unsupported signing algorithm %q (ES256 or RS256)", alg)
	}
	if _, ok := cfg.Keyring.Current(alg); !ok {
		return nil, fmt.Errorf("token: the keyring has no current %s key", alg)
	}
	if cfg.JWKSURL != "" {
		if u, err := url.Parse(cfg.JWKSURL); err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("token: JWKS URL %q is not an absolute URL", cfg.JWKSURL)
		}
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	return &Issuer{name: cfg.Issuer, ring: cfg.Keyring, ttl: cfg.TTL, alg: alg, jku: cfg.JWKSURL, rand: r,
		certs: map[string]*x509.Certificate{}, signers: map[signerKey]jose.Signer{}}, nil
}

// Name is the issuer's iss.
func (i *Issuer) Name() string { return i.name }

// Issue sets iss, iat, nbf, exp (now plus the TTL), jti and eat_profile,
// completes what the TEE claims determine and the caller left out (see
// NewClaims), and signs c with the current key.
func (i *Issuer) Issue(c Claims, now time.Time) (string, error) {
	raw, _, err := i.IssueClaims(c, now)
	return raw, err
}

// IssueClaims is Issue that also returns the claims as signed: what
// Verify would return for the token, without reading it back.
func (i *Issuer) IssueClaims(c Claims, now time.Time) (string, *Claims, error) {
	key, ok := i.ring.Current(i.alg)
	if !ok {
		return "", nil, fmt.Errorf("token: the keyring has no current %s key", i.alg)
	}
	jti := make([]byte, 16)
	if _, err := io.ReadFull(i.rand, jti); err != nil {
		return "", nil, fmt.Errorf("token: token id: %w", err)
	}
	c.Issuer = i.name
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.Expiry = jwt.NewNumericDate(now.Add(i.ttl))
	c.ID = hex.EncodeToString(jti)
	c.EATProfile = EATProfile
	if err := c.complete(); err != nil {
		return "", nil, err
	}
	raw, err := i.sign(&key, "JWT", c)
	if err != nil {
		return "", nil, err
	}
	return raw, &c, nil
}

// sign signs claims with key, the header naming typ, kid and jku. The
// payload is claims' own JSON (Claims.MarshalJSON), signed as it is: one
// encoding, where a JWT builder would encode, decode into a map and
// encode again. Claims are encoded by their MarshalJSON directly: its
// output is already compact and HTML-escaped (it is made of json.Marshal
// output), which json.Marshal would scan and copy once more.
func (i *Issuer) sign(key *Key, typ jose.ContentType, claims any) (string, error) {
	var payload []byte
	var err error
	if c, ok := claims.(Claims); ok {
		payload, err = c.MarshalJSON()
	} else {
		payload, err = json.Marshal(claims)
	}
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	signer, err := i.signer(key, typ)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return raw, nil
}

// signer returns the JWS signer of key for tokens of type typ, made once
// while key is a current key of the keyring.
func (i *Issuer) signer(key *Key, typ jose.ContentType) (jose.Signer, error) {
	k := signerKey{key.ID, typ}
	i.mu.Lock()
	defer i.mu.Unlock()
	if s, ok := i.signers[k]; ok {
		return s, nil
	}
	opts := (&jose.SignerOptions{}).WithType(typ).WithHeader(jose.HeaderKey("kid"), key.ID)
	if i.jku != "" {
		opts = opts.WithHeader(jose.HeaderKey("jku"), i.jku)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key.Private}, opts)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	// A miss: the first token of this type, or a rotation. Keep the
	// signers of current keys only, this one included unless a rotation
	// overtook the caller (it still signs this one token).
	current := map[string]bool{}
	for _, alg := range algorithms {
		if c, ok := i.ring.Current(alg); ok {
			current[c.ID] = true
		}
	}
	maps.DeleteFunc(i.signers, func(sk signerKey, _ jose.Signer) bool { return !current[sk.kid] })
	if current[key.ID] {
		i.signers[k] = s
	}
	return s, nil
}

// PolicyTokenType is the JWS typ of policy-management tokens, and
// PolicyAudience their aud: a relying party checking either cannot take
// one for an attestation token, and Verify refuses both.
const (
	PolicyTokenType = "policy+jwt"
	PolicyAudience  = "attestation-policy"
)

// IssuePolicy signs the result of a policy-management request (Azure's
// PolicyResult, or the policy a GET answers) with the current key: typ
// PolicyTokenType, aud PolicyAudience, iss, iat, nbf, exp and jti, and
// result's claims; none of the attestation claims (eat_profile, submods,
// x-tb-*). result may not set a registered JWT claim.
func (i *Issuer) IssuePolicy(result map[string]any, now time.Time) (string, error) {
	key, ok := i.ring.Current(i.alg)
	if !ok {
		return "", fmt.Errorf("token: the keyring has no current %s key", i.alg)
	}
	jti := make([]byte, 16)
	if _, err := io.ReadFull(i.rand, jti); err != nil {
		return "", fmt.Errorf("token: token id: %w", err)
	}
	body := map[string]any{
		"iss": i.name, "aud": PolicyAudience, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(i.ttl).Unix(),
		"jti": hex.EncodeToString(jti),
	}
	for name, v := range result {
		if _, ok := body[name]; ok {
			return "", fmt.Errorf("token: a policy result may not set %q", name)
		}
		body[name] = v
	}
	return i.sign(&key, PolicyTokenType, body)
}

// ErrInvalid is wrapped by every refusal of Verify.
var ErrInvalid = errors.New("invalid attestation token")

// acceptedAlgorithms are the only JWS algorithms Verify parses: "none",
// HMAC and every other algorithm are refused before any key is looked at.
var acceptedAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256}

// Payload returns the decoded payload of a compact JWS without checking its
// signature: for a token verified already, or one whose content is bound
// some other way (the agent's own answer, whose HPKE context binds the
// token id). Errors say what is malformed; they wrap nothing.
func Payload(raw string) ([]byte, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%d dot-separated parts, want 3 (a compact JWS)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return payload, nil
}

// Verify checks, at now, that raw is a compact JWS signed by a published
// key of the keyring found by its kid, with the header algorithm that key
// signs with (no algorithm confusion), and that it names this issuer, has
// exp, nbf and iat and is valid at now; it returns the claims.
func (i *Issuer) Verify(raw string, now time.Time) (*Claims, error) {
	jws, err := jose.ParseSignedCompact(raw, acceptedAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want one signature, got %d", ErrInvalid, len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid in the header", ErrInvalid)
	}
	if typ, ok := h.ExtraHeaders[jose.HeaderType].(string); ok && !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), "jwt") {
		return nil, fmt.Errorf("%w: typ %q is not an attestation token's (JWT)", ErrInvalid, typ)
	}
	key, ok := i.ring.lookup(h.KeyID, now)
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not a published token key (unknown, or retired)", ErrInvalid, h.KeyID)
	}
	if h.Algorithm != key.Algorithm {
		return nil, fmt.Errorf("%w: header algorithm %q, but key %s signs with %s", ErrInvalid, h.Algorithm, key.ID, key.Algorithm)
	}
	payload, err := jws.Verify(key.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if slices.Contains(c.Audience, PolicyAudience) {
		return nil, fmt.Errorf("%w: aud %q is a policy-management token's", ErrInvalid, PolicyAudience)
	}
	if c.Expiry == nil || c.NotBefore == nil || c.IssuedAt == nil {
		return nil, fmt.Errorf("%w: exp, nbf and iat are required", ErrInvalid)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: i.name, Time: now}, 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// RFC 7519: the current time must be before exp (go-jose accepts exp
	// itself). This also keeps tokens within their key's publication.
	if !now.Before(c.Expiry.Time()) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, jwt.ErrExpired)
	}
	return &c, nil
}
