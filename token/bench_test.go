package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
)

// benchToken is an issuer and the claims of a typical native token: a
// verified SNP guest and runtime data with an EC identity key and an
// ML-KEM-768 + X25519 HPKE key (1,216 bytes), as the agent sends it.
func benchToken(b *testing.B) (*Issuer, Claims) {
	b.Helper()
	k, err := GenerateKey(ES256, t0)
	if err != nil {
		b.Fatal(err)
	}
	ring, err := NewKeyring(5*time.Minute, k)
	if err != nil {
		b.Fatal(err)
	}
	iss, err := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	id, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk, err := api.NewJWK(api.KeyIdentity, "sig", &id.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	pub := make([]byte, 1216)
	_, _ = rand.Read(pub)
	rt, err := json.Marshal(api.RuntimeData{Nonce: "n1", Workload: "ledger-vm", Keys: []api.JWK{jwk},
		HPKE: api.HPKEKey{KEM: 0x647a, KDF: 1, AEAD: 2, PublicKey: pub}})
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewClaims(AttestationResult{Claims: verifiedSNP(), Status: StatusAffirming, PolicyID: "manifest:abc",
		Subject: "spiffe://td/confidential-vm/ledger-vm", Nonce: "n1", Workload: "ledger-vm", Model: "confidential-vm",
		ManifestDigest: "abc", EvidenceDigest: "def", Runtime: rt})
	if err != nil {
		b.Fatal(err)
	}
	return iss, c
}

// BenchmarkIssue is what /v1/attest spends on its token.
func BenchmarkIssue(b *testing.B) {
	iss, c := benchToken(b)
	for b.Loop() {
		if _, err := iss.Issue(c, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is what /v1/release spends reading a token.
func BenchmarkVerify(b *testing.B) {
	iss, c := benchToken(b)
	tok, err := iss.Issue(c, t0)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := iss.Verify(tok, t0.Add(time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}
