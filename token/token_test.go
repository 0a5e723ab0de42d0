package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const testIssuer = "https://coordinator.test"

// Private keys are made once per test binary: RSA generation is slow.
var (
	keysOnce sync.Once
	ecPrivs  [3]*ecdsa.PrivateKey
	rsaPrivs [2]*rsa.PrivateKey
)

func testPrivs(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		for i := range ecPrivs {
			ecPrivs[i], _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		for i := range rsaPrivs {
			rsaPrivs[i], _ = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
}

// testKey wraps test private key n of alg (ES256: 0..2, RS256: 0..1).
func testKey(t *testing.T, alg string, n int, now time.Time) Key {
	t.Helper()
	testPrivs(t)
	var priv crypto.Signer = ecPrivs[n]
	if alg == RS256 {
		priv = rsaPrivs[n]
	}
	k, err := NewKey(alg, priv, now)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newIssuer returns an issuer for alg over a keyring holding key 0 of alg,
// with tokens living 5 minutes.
func newIssuer(t *testing.T, alg string) (*Issuer, *Keyring) {
	t.Helper()
	ring, err := NewKeyring(5*time.Minute, testKey(t, alg, 0, t0))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: 5 * time.Minute, Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	return iss, ring
}

// verifiedSNP returns verified claims of a real (not simulated) SNP guest.
func verifiedSNP() *attest.Claims {
	vmpl := uint32(0)
	return &attest.Claims{
		TEE: attest.SEVSNP, Format: attest.FormatSNPReport, Measurement: attest.Hex{0xab, 0xcd}, HostData: attest.Hex{1},
		ReportData: attest.Hex{2}, SVN: 3, VMPL: &vmpl, RevocationChecked: true,
		TCB:      attest.TCB{Components: map[string]uint64{"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68}},
		Platform: map[string]string{"smt_allowed": "true", "family_id": "00", "image_id": "01"},
	}
}

// testRuntime is runtime JSON as a workload sends it: trustbound's own
// fields, an EC identity key and an RSA key for key-vault-style release.
func testRuntime(t *testing.T) []byte {
	t.Helper()
	testPrivs(t)
	id, err := api.NewJWK(api.KeyIdentity, "sig", &ecPrivs[2].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	doc := map[string]any{
		"nonce": "n1", "workload": "web",
		"keys": []any{id, map[string]any{"kid": "wrap", "kty": "RSA", "key_ops": []string{"encrypt"},
			"n": b64(rsaPrivs[1].N.Bytes()), "e": "AQAB"}},
		"hpke": api.HPKEKey{KEM: 0x20, KDF: 1, AEAD: 1, PublicKey: []byte{1, 2, 3}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testResult(t *testing.T) AttestationResult {
	return AttestationResult{
		Claims: verifiedSNP(), Status: StatusAffirming, PolicyID: "manifest:m1", PolicyHash: "egjnANIzEpS2WgpE4Nk-QEwM69XRCgTs42_G0qLlbnk",
		Subject: "spiffe://prod.test/confidential-vm/web", Nonce: "n1", Workload: "web", Model: "confidential-vm",
		ManifestDigest: "sha256:m1", EvidenceDigest: "sha256:e1", Runtime: testRuntime(t),
	}
}

// payload decodes a token's payload without verifying it.
func payload(t *testing.T, raw string) map[string]any {
	t.Helper()
	return jwsPart(t, raw, 1)
}

// header decodes a token's protected header.
func header(t *testing.T, raw string) map[string]any {
	t.Helper()
	return jwsPart(t, raw, 0)
}

// jwsPart decodes part i (0 header, 1 payload) of a compact JWS as a JSON
// object.
func jwsPart(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// path walks nested JSON objects.
func path(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// tamperPayload re-encodes the payload with workload changed, keeping the
// header and signature.
func tamperPayload(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	m := payload(t, raw)
	m["x-tb-workload"] = "evil"
	b, _ := json.Marshal(m)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// tamperSignature flips one bit of the signature.
func tamperSignature(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 1
	return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// compact assembles a JWS by hand from a header, claims and signing input
// signer.
func compact(t *testing.T, hdr map[string]any, claims any, sign func(input []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(hdr)
	p, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	for _, alg := range []string{ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			iss, ring := newIssuer(t, alg)
			c, err := NewClaims(testResult(t))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := iss.Issue(c, t0)
			if err != nil {
				t.Fatal(err)
			}
			key, _ := ring.Current(alg)
			if h := header(t, raw); h["alg"] != alg || h["kid"] != key.ID || h["typ"] != "JWT" {
				t.Errorf("header %v", h)
			}
			got, err := iss.Verify(raw, t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if got.Issuer != testIssuer || got.Subject != "spiffe://prod.test/confidential-vm/web" || got.Nonce != "n1" ||
				got.Workload != "web" || got.Model != "confidential-vm" || got.Simulated || got.ManifestDigest != "sha256:m1" ||
				got.EvidenceDigest != "sha256:e1" || got.EATProfile != EATProfile || got.Version != "1.0" || len(got.ID) != 32 {
				t.Errorf("claims %+v", got)
			}
			if d := got.Expiry.Time().Sub(got.IssuedAt.Time()); d != 5*time.Minute || !got.NotBefore.Time().Equal(t0) {
				t.Errorf("lifetime %v, nbf %v", d, got.NotBefore.Time())
			}
			if got.TEE.TEE != attest.SEVSNP || got.TEE.Measurement.String() != "abcd" || !got.TEE.RevocationChecked {
				t.Errorf("TEE claims %+v", got.TEE)
			}
			sub := got.Submods["sev-snp"]
			if sub.Status != StatusAffirming || sub.PolicyID != "manifest:m1" || sub.TrustVector == nil || sub.AnnotatedEvidence == nil {
				t.Errorf("submod %+v", sub)
			}
			if got.Azure["x-ms-attestation-type"] != "sevsnpvm" || got.Azure["x-ms-sevsnpvm-launchmeasurement"] != "abcd" ||
				got.Azure["x-ms-sevsnpvm-guestsvn"] != json.Number("3") || got.Azure["x-ms-sevsnpvm-is-debuggable"] != false {
				t.Errorf("azure claims %v", got.Azure)
			}
			if len(got.Runtime.Keys) != 2 || got.Runtime.Keys[0].Kid != api.KeyIdentity || got.Runtime.HPKE.KEM != 0x20 {
				t.Errorf("runtime %+v", got.Runtime)
			}
			jwks, err := got.Runtime.JWKs()
			if err != nil || len(jwks) != 2 || jwks[1].Kty != "RSA" || jwks[1].KeyOps[0] != "encrypt" || jwks[1].E != "AQAB" {
				t.Errorf("runtime JWKs %+v, %v", jwks, err)
			}

			// The wire shape, as any JWT reader sees it.
			p := payload(t, raw)
			for _, tc := range []struct {
				path []string
				want any
			}{
				{[]string{"iss"}, testIssuer},
				{[]string{"sub"}, "spiffe://prod.test/confidential-vm/web"},
				{[]string{"nonce"}, "n1"},
				{[]string{"eat_profile"}, "tag:github.com,2023:veraison/ear"},
				{[]string{"ear.verifier-id", "developer"}, "trustbound"},
				{[]string{"ear.verifier-id", "build"}, "trustbound"},
				{[]string{"submods", "sev-snp", "ear.status"}, "affirming"},
				{[]string{"submods", "sev-snp", "ear.appraisal-policy-id"}, "manifest:m1"},
				{[]string{"submods", "sev-snp", "ear.trustworthiness-vector", "instance-identity"}, 2.0},
				{[]string{"submods", "sev-snp", "ear.trustworthiness-vector", "executables"}, 2.0},
				{[]string{"submods", "sev-snp", "ear.trustworthiness-vector", "hardware"}, 2.0},
				{[]string{"submods", "sev-snp", "ear.trustworthiness-vector", "runtime-opaque"}, 2.0},
				{[]string{"submods", "sev-snp", "ear.trustworthiness-vector", "file-system"}, 0.0},
				{[]string{"submods", "sev-snp", "ear.veraison.annotated-evidence", "measurement"}, "abcd"},
				{[]string{"x-ms-ver"}, "1.0"},
				{[]string{"x-ms-attestation-type"}, "sevsnpvm"},
				{[]string{"x-ms-policy-hash"}, "egjnANIzEpS2WgpE4Nk-QEwM69XRCgTs42_G0qLlbnk"},
				{[]string{"x-ms-sevsnpvm-hostdata"}, "01"},
				{[]string{"x-ms-sevsnpvm-vmpl"}, 0.0},
				{[]string{"x-ms-runtime", "nonce"}, "n1"},
				{[]string{"x-ms-runtime", "hpke", "kem"}, 32.0},
				{[]string{"x-tb-simulated"}, false},
				{[]string{"x-tb-workload"}, "web"},
				{[]string{"x-tb-manifest-digest"}, "sha256:m1"},
				{[]string{"x-tb-evidence-digest"}, "sha256:e1"},
			} {
				if got := path(p, tc.path...); got != tc.want {
					t.Errorf("%s = %#v, want %#v", strings.Join(tc.path, "."), got, tc.want)
				}
			}
			keys, _ := path(p, "x-ms-runtime", "keys").([]any)
			if len(keys) != 2 || path(keys[1].(map[string]any), "key_ops").([]any)[0] != "encrypt" || path(keys[0].(map[string]any), "kid") != api.KeyIdentity {
				t.Errorf("x-ms-runtime.keys = %v", keys)
			}
			for _, n := range []string{"iat", "nbf", "exp", "jti"} {
				if p[n] == nil {
					t.Errorf("no %s", n)
				}
			}
		})
	}
}

// The coordinator's current call fills Claims by hand; Issue completes
// what the TEE claims determine.
func TestIssueCompletesHandBuiltClaims(t *testing.T) {
	iss, _ := newIssuer(t, ES256)
	sim := verifiedSNP()
	sim.Simulated, sim.RevocationChecked = true, false
	raw, err := iss.Issue(Claims{
		Nonce:      "n1",
		VerifierID: map[string]string{"developer": "trustbound", "build": "trustbound/v1"},
		Submods:    map[string]Submod{"tee": {Status: StatusAffirming, PolicyID: "manifest:m1"}},
		Workload:   "web", ManifestDigest: "sha256:m1", EvidenceDigest: "sha256:e1",
		TEE:     *sim,
		Runtime: Runtime{Keys: []api.JWK{{Kid: api.KeyIdentity, Kty: "EC", Crv: "P-256", X: "x", Y: "y"}}, HPKE: api.HPKEKey{KEM: 0x20, PublicKey: []byte{1}}},
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := iss.Verify(raw, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Simulated || got.TEE.TEE != attest.SEVSNP || !got.TEE.Simulated || got.Azure["x-ms-attestation-type"] != "sevsnpvm" || got.Version != "1.0" {
		t.Errorf("claims %+v", got)
	}
	sub := got.Submods["tee"]
	// Simulated evidence is not genuine hardware: no EAR reader may take it
	// for an affirmed TEE.
	if sub.Status != StatusContraindicated || sub.TrustVector.Hardware != UnrecognizedHardware || sub.TrustVector.InstanceIdentity != NoClaim || sub.AnnotatedEvidence == nil {
		t.Errorf("submod %+v %+v", sub, sub.TrustVector)
	}
	if len(got.Runtime.Keys) != 1 || got.Runtime.Keys[0].X != "x" || got.Runtime.HPKE.KEM != 0x20 {
		t.Errorf("runtime %+v", got.Runtime)
	}
	if _, err := iss.Issue(Claims{Submods: map[string]Submod{"tee": {Status: "great"}}}, t0); !errors.Is(err, ErrClaims) {
		t.Errorf("unknown EAR status: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	iss, ring := newIssuer(t, ES256)
	if err := ring.Rotate(t0, testKey(t, RS256, 0, t0)); err != nil { // adds a current RS256 key
		t.Fatal(err)
	}
	esKey, _ := ring.Current(ES256)
	rsKey, _ := ring.Current(RS256)
	raw, err := iss.Issue(Claims{Workload: "web"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	otherName, err := NewIssuer(Config{Issuer: "https://other.test", Keyring: ring, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	otherRaw, _ := otherName.Issue(Claims{Workload: "web"}, t0)

	body := jwt.Claims{Issuer: testIssuer, IssuedAt: jwt.NewNumericDate(t0), NotBefore: jwt.NewNumericDate(t0), Expiry: jwt.NewNumericDate(t0.Add(time.Hour))}
	sign := func(alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		out, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPubDER, _ := x509.MarshalPKIXPublicKey(rsKey.Public())
	hs256 := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	}

	for name, tc := range map[string]struct {
		raw string
		at  time.Time
	}{
		"expired":               {raw, t0.Add(5*time.Minute + time.Second)},
		"at exp":                {raw, t0.Add(5 * time.Minute)},
		"not yet valid":         {raw, t0.Add(-time.Second)},
		"other issuer name":     {otherRaw, t0},
		"unknown key":           {sign(jose.ES256, stranger, "nobody", body), t0},
		"stranger with our kid": {sign(jose.ES256, stranger, esKey.ID, body), t0},
		"no kid":                {sign(jose.ES256, esKey.Private, "", body), t0},
		"no exp": {sign(jose.ES256, esKey.Private, esKey.ID, jwt.Claims{Issuer: testIssuer, IssuedAt: jwt.NewNumericDate(t0),
			NotBefore: jwt.NewNumericDate(t0)}), t0},
		"tampered payload":   {tamperPayload(t, raw), t0},
		"tampered signature": {tamperSignature(t, raw), t0},
		"garbage":            {"a.b.c", t0},
		"empty":              {"", t0},
		// Algorithm confusion: a header naming another algorithm than the
		// key's, signed correctly for what the header says.
		"RS256 key, header ES256":                 {sign(jose.ES256, esKey.Private, rsKey.ID, body), t0},
		"ES256 key, header RS256":                 {sign(jose.RS256, rsKey.Private, esKey.ID, body), t0},
		"HS256 with the RSA public key as secret": {compact(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": rsKey.ID}, body, hs256(rsaPubDER)), t0},
		"HS256 with the kid as secret":            {compact(t, map[string]any{"alg": "HS256", "kid": esKey.ID}, body, hs256([]byte(esKey.ID))), t0},
		"none":                                    {compact(t, map[string]any{"alg": "none", "kid": esKey.ID}, body, func([]byte) []byte { return nil }), t0},
		"None":                                    {compact(t, map[string]any{"alg": "None", "kid": esKey.ID}, body, func([]byte) []byte { return nil }), t0},
	} {
		if _, err := iss.Verify(tc.raw, tc.at); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	// Each confusion is refused for its own reason, not by accident.
	for _, tc := range []struct{ raw, want string }{
		{sign(jose.ES256, esKey.Private, rsKey.ID, body), "header algorithm \"ES256\", but key"},
		{sign(jose.RS256, rsKey.Private, esKey.ID, body), "header algorithm \"RS256\", but key"},
		{compact(t, map[string]any{"alg": "HS256", "kid": rsKey.ID}, body, hs256(rsaPubDER)), "unexpected signature algorithm \"HS256\""},
		{compact(t, map[string]any{"alg": "none", "kid": esKey.ID}, body, func([]byte) []byte { return nil }), "unexpected signature algorithm \"none\""},
		{sign(jose.ES256, stranger, esKey.ID, body), "error in cryptographic primitive"},
	} {
		if _, err := iss.Verify(tc.raw, t0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error saying %q", err, tc.want)
		}
	}
	// Control: the same hand-made signing path is accepted when honest.
	if _, err := iss.Verify(sign(jose.RS256, rsKey.Private, rsKey.ID, body), t0); err != nil {
		t.Errorf("an honest RS256 token was refused: %v", err)
	}
	if _, err := iss.Verify(raw, t0.Add(5*time.Minute-time.Second)); err != nil {
		t.Errorf("a token just before exp was refused: %v", err)
	}
}

func TestRotation(t *testing.T) {
	const ttl, maxLife = 5 * time.Minute, 10 * time.Minute
	a := testKey(t, ES256, 0, t0)
	ring, err := NewKeyring(maxLife, a)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	byA, err := iss.Issue(Claims{Workload: "web"}, t0.Add(4*time.Minute)) // exp t0+9m
	if err != nil {
		t.Fatal(err)
	}
	before, err := ring.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}

	rotated := t0.Add(5 * time.Minute)
	b := testKey(t, ES256, 1, rotated)
	if err := ring.Rotate(rotated, b); err != nil {
		t.Fatal(err)
	}
	if err := ring.Rotate(rotated, b); err == nil {
		t.Error("the same key was rotated in twice")
	}
	byB, err := iss.Issue(Claims{Workload: "web"}, rotated)
	if err != nil {
		t.Fatal(err)
	}
	if header(t, byB)["kid"] != b.ID || header(t, byA)["kid"] != a.ID {
		t.Fatal("tokens not signed by the expected keys")
	}
	retire := rotated.Add(maxLife)
	if old := ring.Published(rotated)[1]; old.ID != a.ID || !old.Retire.Equal(retire) || !ring.Published(rotated)[0].Retire.IsZero() {
		t.Errorf("published %+v", ring.Published(rotated))
	}

	// During the overlap both keys are published and both tokens verify.
	if got := jwksKids(t, iss, rotated.Add(time.Minute)); len(got) != 2 || got[0] != b.ID || got[1] != a.ID {
		t.Errorf("JWKS during overlap: %v", got)
	}
	if _, err := iss.Verify(byA, t0.Add(9*time.Minute-time.Second)); err != nil {
		t.Errorf("the old key's token was refused before it expired: %v", err)
	}
	if _, err := iss.Verify(byB, rotated.Add(time.Minute)); err != nil {
		t.Error(err)
	}

	// A token by the old key that has not expired (signed by a stale
	// replica that never saw the rotation) is accepted until the key
	// retires, then refused although its exp is still ahead.
	staleRing, err := ParseKeyring(before)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := NewIssuer(Config{Issuer: testIssuer, Keyring: staleRing, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	late, err := stale.Issue(Claims{Workload: "web"}, retire.Add(-time.Minute)) // exp retire+4m
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(late, retire.Add(-time.Second)); err != nil {
		t.Errorf("old key refused before its retirement: %v", err)
	}
	if _, err := iss.Verify(late, retire); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a published token key") {
		t.Errorf("old key accepted at its retirement: %v", err)
	}
	// After the overlap only the new key is published.
	if got := jwksKids(t, iss, retire); len(got) != 1 || got[0] != b.ID {
		t.Errorf("JWKS after retirement: %v", got)
	}

	// The next rotation drops the retired key from the keyring.
	c := testKey(t, ES256, 2, retire)
	if err := ring.Rotate(retire, c); err != nil {
		t.Fatal(err)
	}
	j, _ := ring.MarshalJSON()
	if strings.Contains(string(j), a.ID) || !strings.Contains(string(j), b.ID) {
		t.Errorf("keyring after second rotation: %s", j)
	}
}

func jwksKids(t *testing.T, iss *Issuer, now time.Time) []string {
	t.Helper()
	b, err := iss.JWKS(now)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestKeyringJSON(t *testing.T) {
	ring, err := NewKeyring(8*time.Hour, testKey(t, ES256, 0, t0), testKey(t, RS256, 0, t0))
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Rotate(t0.Add(time.Hour), testKey(t, ES256, 1, t0)); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ring)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeyring(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.MaxLifetime() != 8*time.Hour {
		t.Errorf("max lifetime %v", back.MaxLifetime())
	}
	want, got := ring.Published(t0.Add(time.Hour)), back.Published(t0.Add(time.Hour))
	if len(got) != 3 || len(want) != 3 {
		t.Fatalf("published %d keys, want 3", len(got))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Algorithm != want[i].Algorithm || !got[i].NotBefore.Equal(want[i].NotBefore) || !got[i].Retire.Equal(want[i].Retire) {
			t.Errorf("key %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// A token signed before the round trip verifies after it.
	iss, _ := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: time.Minute, Algorithm: RS256})
	raw, _ := iss.Issue(Claims{}, t0.Add(time.Hour))
	iss2, _ := NewIssuer(Config{Issuer: testIssuer, Keyring: back, TTL: time.Minute})
	if _, err := iss2.Verify(raw, t0.Add(time.Hour)); err != nil {
		t.Errorf("after round trip: %v", err)
	}

	var doc map[string]any
	_ = json.Unmarshal(b, &doc)
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	key0 := func(m map[string]any) map[string]any { return m["keys"].([]any)[0].(map[string]any) }
	for name, bad := range map[string][]byte{
		"unknown field": mutate(func(m map[string]any) { m["extra"] = 1 }),
		"version":       mutate(func(m map[string]any) { m["version"] = 2 }),
		"lifetime":      mutate(func(m map[string]any) { m["maxLifetimeSeconds"] = 0 }),
		"kid":           mutate(func(m map[string]any) { key0(m)["kid"] = "x" }),
		"alg":           mutate(func(m map[string]any) { key0(m)["alg"] = RS256 }),
		"HS256":         mutate(func(m map[string]any) { key0(m)["alg"] = "HS256" }),
		"two current":   mutate(func(m map[string]any) { delete(key0(m), "retire") }),
		"no keys":       mutate(func(m map[string]any) { m["keys"] = []any{} }),
		"pkcs8":         mutate(func(m map[string]any) { key0(m)["pkcs8"] = "AAAA" }),
		"trailing":      append(append([]byte{}, b...), '{', '}'),
		"not json":      []byte("x"),
	} {
		if _, err := ParseKeyring(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKeysAndIssuerRefuse(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewKey(ES256, p384, t0); err == nil {
		t.Error("a P-384 key was accepted for ES256")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := NewKey(RS256, small, t0); err == nil {
		t.Error("a 1024-bit RSA key was accepted")
	}
	testPrivs(t)
	if _, err := NewKey(RS256, ecPrivs[0], t0); err == nil {
		t.Error("an EC key was accepted for RS256")
	}
	if _, err := NewKey("HS256", ecPrivs[0], t0); err == nil {
		t.Error("HS256 was accepted")
	}
	if _, err := GenerateKey("none", t0); err == nil {
		t.Error("none was accepted")
	}
	k, err := GenerateKey(ES256, t0)
	if err != nil || k.ID == "" || !k.NotBefore.Equal(t0) {
		t.Fatalf("GenerateKey: %+v, %v", k, err)
	}
	// RFC 7638 thumbprint: SHA-256 over the canonical members, base64url.
	x := k.Private.Public().(*ecdsa.PublicKey)
	raw, _ := x.Bytes()
	canon := `{"crv":"P-256","kty":"EC","x":"` + base64.RawURLEncoding.EncodeToString(raw[1:33]) + `","y":"` + base64.RawURLEncoding.EncodeToString(raw[33:]) + `"}`
	sum := sha256.Sum256([]byte(canon))
	if k.ID != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("kid %s is not the RFC 7638 thumbprint", k.ID)
	}
	if _, err := NewKeyring(time.Minute, k, testKey(t, ES256, 0, t0)); err == nil {
		t.Error("two current ES256 keys accepted")
	}
	if _, err := NewKeyring(0, k); err == nil {
		t.Error("zero lifetime accepted")
	}
	ring, _ := NewKeyring(time.Minute, k)
	for name, cfg := range map[string]Config{
		"TTL beyond keyring": {Issuer: testIssuer, Keyring: ring, TTL: 2 * time.Minute},
		"no key for alg":     {Issuer: testIssuer, Keyring: ring, TTL: time.Minute, Algorithm: RS256},
		"HS256":              {Issuer: testIssuer, Keyring: ring, TTL: time.Minute, Algorithm: "HS256"},
		"no issuer":          {Keyring: ring, TTL: time.Minute},
		"no keyring":         {Issuer: testIssuer, TTL: time.Minute},
		"relative jku":       {Issuer: testIssuer, Keyring: ring, TTL: time.Minute, JWKSURL: "/certs"},
	} {
		if _, err := NewIssuer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	iss, err := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: time.Minute, JWKSURL: testIssuer + "/certs"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := iss.Issue(Claims{}, t0)
	if header(t, tok)["jku"] != testIssuer+"/certs" {
		t.Errorf("no jku: %v", header(t, tok))
	}
}

func TestGenerateRSAKey(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA key generation")
	}
	k, err := GenerateKey(RS256, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := k.Private.(*rsa.PrivateKey).N.BitLen(); n != RSABits {
		t.Errorf("%d bits", n)
	}
}

// Issuing, verifying and publishing go on while the keyring rotates.
func TestConcurrentRotation(t *testing.T) {
	iss, ring := newIssuer(t, ES256)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				raw, err := iss.Issue(Claims{Workload: "web"}, t0)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := iss.Verify(raw, t0.Add(time.Minute)); err != nil {
					t.Error(err)
					return
				}
				if _, err := iss.JWKS(t0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 1; i < 3; i++ {
		if err := ring.Rotate(t0, testKey(t, ES256, i, t0)); err != nil {
			t.Error(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
}

// Policy-management tokens are signed by the same keys as attestation
// tokens, but carry typ policy+jwt and aud attestation-policy and none of
// the attestation claims; Verify refuses them, and a token with either
// mark.
func TestPolicyTokensAreNotAttestationTokens(t *testing.T) {
	iss, _ := newIssuer(t, RS256)
	raw, err := iss.IssuePolicy(map[string]any{"x-ms-policy-result": "Updated"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if h := header(t, raw); h["typ"] != PolicyTokenType {
		t.Errorf("header %v", h)
	}
	p := payload(t, raw)
	if p["aud"] != PolicyAudience || p["x-ms-policy-result"] != "Updated" || p["iss"] == nil || p["exp"] == nil {
		t.Errorf("payload %v", p)
	}
	for _, absent := range []string{"eat_profile", "submods", "x-tb-workload", "x-tb-simulated", "x-ms-ver"} {
		if _, ok := p[absent]; ok {
			t.Errorf("policy token carries %s", absent)
		}
	}
	if _, err := iss.Verify(raw, t0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "typ") {
		t.Errorf("Verify of a policy token: %v", err)
	}
	// aud alone suffices.
	c := Claims{TEE: attest.Claims{TEE: attest.SEVSNP}, Submods: map[string]Submod{"sev-snp": {Status: StatusNone}}}
	c.Audience = []string{PolicyAudience}
	raw, err = iss.Issue(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(raw, t0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "aud") {
		t.Errorf("Verify of a token for aud %s: %v", PolicyAudience, err)
	}
	if _, err := iss.IssuePolicy(map[string]any{"aud": "rp"}, t0); err == nil {
		t.Error("a policy result set aud")
	}
}

// The issuer keeps the JWS signers (and so the private keys) of current
// keys only: after a rotation, the first token signed with the new key
// drops the old key's signers, whatever their token type.
func TestSignerCacheDropsRotatedKeys(t *testing.T) {
	a := testKey(t, ES256, 0, t0)
	ring, err := NewKeyring(10*time.Minute, a, testKey(t, RS256, 0, t0))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	kids := func() map[string]int {
		iss.mu.Lock()
		defer iss.mu.Unlock()
		out := map[string]int{}
		for k := range iss.signers {
			out[k.kid]++
		}
		return out
	}
	if _, err := iss.Issue(Claims{Workload: "web"}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.IssuePolicy(map[string]any{"x": "y"}, t0); err != nil {
		t.Fatal(err)
	}
	if got := kids(); len(got) != 1 || got[a.ID] != 2 {
		t.Fatalf("signers before the rotation: %v, want 2 of %s", got, a.ID)
	}
	b := testKey(t, ES256, 1, t0.Add(time.Minute))
	if err := ring.Rotate(t0.Add(time.Minute), b); err != nil {
		t.Fatal(err)
	}
	raw, err := iss.Issue(Claims{Workload: "web"}, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(); len(got) != 1 || got[b.ID] != 1 {
		t.Fatalf("signers after the rotation: %v, want 1 of %s and none of %s", got, b.ID, a.ID)
	}
	if _, err := iss.Verify(raw, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	// A signer made for a key rotated out meanwhile signs, but is not kept.
	if _, err := iss.signer(&a, "JWT"); err != nil {
		t.Fatal(err)
	}
	if got := kids(); len(got) != 1 || got[b.ID] != 1 {
		t.Fatalf("signers after signing with a rotated-out key: %v", got)
	}
}

// The JWKS keeps the certificates of published keys only: after a key
// is rotated out and retired, its certificate is dropped.
func TestJWKSDropsRetiredKeysCertificates(t *testing.T) {
	a := testKey(t, ES256, 0, t0)
	ring, err := NewKeyring(10*time.Minute, a)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	kept := func() []string {
		iss.mu.Lock()
		defer iss.mu.Unlock()
		return slices.Sorted(maps.Keys(iss.certs))
	}
	jwks := func(now time.Time) []string {
		raw, err := iss.JWKS(now)
		if err != nil {
			t.Fatal(err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range set.Keys {
			if len(k.Certificates) != 1 {
				t.Fatalf("key %s has %d certificates", k.KeyID, len(k.Certificates))
			}
			kids = append(kids, k.KeyID)
		}
		slices.Sort(kids)
		return kids
	}
	b := testKey(t, ES256, 1, t0.Add(time.Minute))
	if err := ring.Rotate(t0.Add(time.Minute), b); err != nil {
		t.Fatal(err)
	}
	both := slices.Sorted(slices.Values([]string{a.ID, b.ID}))
	if got := jwks(t0.Add(2 * time.Minute)); !slices.Equal(got, both) || !slices.Equal(kept(), both) {
		t.Fatalf("while a is still published: JWKS %v, certificates kept %v; want %v", got, kept(), both)
	}
	// a retires 10 minutes after the rotation.
	if got := jwks(t0.Add(12 * time.Minute)); !slices.Equal(got, []string{b.ID}) || !slices.Equal(kept(), []string{b.ID}) {
		t.Fatalf("after a retired: JWKS %v, certificates kept %v; want only %s", got, kept(), b.ID)
	}
}

func TestPayload(t *testing.T) {
	if got, err := Payload("eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln"); err != nil || string(got) != `{"jti":"x"}` {
		t.Fatalf("Payload = %q, %v", got, err)
	}
	for raw, want := range map[string]string{
		"token-1":              "1 dot-separated parts, want 3 (a compact JWS)",
		"a.b.c.d":              "4 dot-separated parts",
		"a.eyJ=.c":             "payload: illegal base64",
		"eyJhbGciOiJFUzI1NiJ9": "1 dot-separated parts",
	} {
		if got, err := Payload(raw); err == nil || !strings.Contains(err.Error(), want) || got != nil {
			t.Errorf("Payload(%q) = %q, %v; want an error containing %q", raw, got, err, want)
		}
	}
}
