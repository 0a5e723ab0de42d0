package token

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/attest"
)

// certNotAfter is RFC 5280's "no well-defined expiration date": a token
// key's certificate is only a carrier for the key, whose publication the
// keyring bounds.
var certNotAfter = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// JWKS returns the JWK Set of the keys published at now (GET /certs): for
// each, kid, alg, use "sig" and, as Azure Attestation's /certs does, x5c
// with a self-signed certificate for the key.
func (i *Issuer) JWKS(now time.Time) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	published := map[string]bool{}
	for _, k := range i.ring.Published(now) {
		cert, err := i.certificate(k)
		if err != nil {
			return nil, err
		}
		published[k.ID] = true
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig",
			Certificates: []*x509.Certificate{cert}})
	}
	// The certificates of keys no longer published are not kept: a
	// long-running issuer rotating its keys would otherwise hold one per
	// rotation for ever.
	i.mu.Lock()
	for kid := range i.certs {
		if !published[kid] {
			delete(i.certs, kid)
		}
	}
	i.mu.Unlock()
	return json.Marshal(set)
}

// certificate returns the self-signed certificate of k, made once per
// issuer: subject CN the issuer name, valid from the key's NotBefore.
func (i *Issuer) certificate(k Key) (*x509.Certificate, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if c, ok := i.certs[k.ID]; ok {
		return c, nil
	}
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(certSerial(k.ID)),
		Subject:               pkix.Name{CommonName: i.name},
		NotBefore:             k.NotBefore.UTC().Truncate(time.Second),
		NotAfter:              certNotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(i.rand, tmpl, tmpl, k.Public(), k.Private)
	if err != nil {
		return nil, fmt.Errorf("token: certificate for key %s: %w", k.ID, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("token: certificate for key %s: %w", k.ID, err)
	}
	i.certs[k.ID] = c
	return c, nil
}

// openIDConfiguration is the discovery document. Azure Attestation
// publishes jwks_uri, id_token_signing_alg_values_supported,
// response_types_supported, claims_supported (and revocation_endpoint,
// which trustbound has no counterpart of); issuer and
// subject_types_supported are what OpenID Connect Discovery requires and
// its clients check.
type openIDConfiguration struct {
	Issuer          string   `json:"issuer"`
	JWKSURI         string   `json:"jwks_uri"`
	ResponseTypes   []string `json:"response_types_supported"`
	SubjectTypes    []string `json:"subject_types_supported"`
	SigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported []string `json:"claims_supported"`
}

// OpenIDConfiguration returns the document served at
// baseURL/.well-known/openid-configuration: the issuer, jwks_uri
// baseURL/certs, the algorithms of the current keys, and the claims tokens
// carry.
func (i *Issuer) OpenIDConfiguration(baseURL string) ([]byte, error) {
	u, err := url.Parse(baseURL)
	if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("token: base URL %q is not an absolute http(s) URL without query", baseURL)
	}
	return json.Marshal(openIDConfiguration{
		Issuer:          i.name,
		JWKSURI:         strings.TrimSuffix(baseURL, "/") + "/certs",
		ResponseTypes:   []string{"token"},
		SubjectTypes:    []string{"public"},
		SigningAlgs:     i.ring.currentAlgorithms(),
		ClaimsSupported: claimsSupported(),
	})
}

// claimsSupported lists every top-level claim a token may carry: the ones
// Claims names and those AzureClaims produces for each TEE and format.
func claimsSupported() []string {
	names := map[string]bool{}
	for _, n := range namedClaims {
		names[n] = true
	}
	vmpl := uint32(0)
	for _, c := range []attest.Claims{
		{TEE: attest.SEVSNP, Format: attest.FormatSNPReport, VMPL: &vmpl},
		{TEE: attest.SEVSNP, Format: attest.FormatAzureSNPVTPM, Platform: map[string]string{"secure_boot": "true"}},
		{TEE: attest.SGX, Format: attest.FormatSGXQuoteV3, Platform: map[string]string{"config_svn": "0"}},
		{TEE: attest.TDX, Format: attest.FormatTDXQuote, TCB: attest.TCB{Evaluated: true}},
	} {
		for n := range AzureClaims(&c) {
			names[n] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// certSerial derives a certificate serial number from a kid, so that the
// published certificate of a key keeps its serial across restarts.
func certSerial(kid string) []byte {
	h := sha256.Sum256([]byte(kid))
	h[0] &= 0x7f // positive
	h[0] |= 0x01 // and non-zero
	return h[:16]
}
