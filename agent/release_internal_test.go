package agent

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
)

// A release whose second secret does not open fails as a whole, and the
// first secret, already unwrapped, is zeroed before Open returns: nothing
// of a half-opened release stays in memory.
func TestOpenZeroesSecretsOnError(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ca, err := identity.NewCA("example.org", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	rel := release(t, ca, id, now)
	pub, err := keybroker.RecipientKey(id.hpke)
	if err != nil {
		t.Fatal(err)
	}
	info := api.SecretInfo("w", "t", 3)
	sealed, err := keybroker.Wrap(pub, info, []byte("second value"))
	if err != nil {
		t.Fatal(err)
	}
	rel.Secrets = append(rel.Secrets, api.WrappedSecret{Name: "t", Type: "user", Version: 3, Info: info, Sealed: sealed})

	// Both open as sent.
	res, err := id.Open(rel, now)
	if err != nil || string(res.Secrets["s"]) != "v" || string(res.Secrets["t"]) != "second value" {
		t.Fatalf("Open of an intact release: %v, %v", res, err)
	}

	// The second is corrupted: Open fails, and the buffer it unwrapped for
	// the first is zero when it returns.
	rel.Secrets[1].Sealed = bytes.Clone(sealed)
	rel.Secrets[1].Sealed[len(sealed)-1] ^= 1
	var opened [][]byte
	unwrap := func(s api.WrappedSecret) ([]byte, error) {
		v, err := keybroker.Unwrap(id.HPKE, s)
		if err == nil {
			opened = append(opened, v)
		}
		return v, err
	}
	got, err := openSecrets(rel, unwrap)
	if err == nil || !strings.Contains(err.Error(), `secret "t" does not open`) || got != nil {
		t.Fatalf("openSecrets with a corrupted second secret = %v, %v", got, err)
	}
	if len(opened) != 1 || len(opened[0]) != 1 {
		t.Fatalf("unwrapped %d secrets before the failure, want the first (1 byte)", len(opened))
	}
	if opened[0][0] != 0 {
		t.Errorf("the first secret's buffer holds %q after the failed release, want zeros", opened[0])
	}
	// Open itself fails the same way.
	if res, err := id.Open(rel, now); err == nil || res != nil {
		t.Fatalf("Open with a corrupted second secret = %v, %v", res, err)
	}

	// A secret released twice is refused, and the first copy zeroed.
	rel.Secrets[1] = rel.Secrets[0]
	opened = nil
	if _, err := openSecrets(rel, unwrap); err == nil || !strings.Contains(err.Error(), "released twice") {
		t.Fatalf("openSecrets with a duplicate = %v", err)
	}
	if len(opened) != 1 || opened[0][0] != 0 {
		t.Errorf("the first copy was not zeroed: %q", opened)
	}
}

// releaseFixture is a coordinator's release signer and a sidecar's wrapping
// key, from which tests build release results as the coordinator does.
type releaseFixture struct {
	signer  *rsa.PrivateKey
	kid     string
	set     *jose.JSONWebKeySet
	wrapKey *rsa.PrivateKey
	value   []byte // the key released
}

func newReleaseFixture(t *testing.T) *releaseFixture {
	t.Helper()
	signer, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wrapKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const kid = "token-key-1"
	set := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &signer.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}}}
	return &releaseFixture{signer: signer, kid: kid, set: set, wrapKey: wrapKey, value: bytes.Repeat([]byte{0x42}, 32)}
}

// payload is the JSON of a Key Vault release result for keyID ("…/keys/
// name/version"), the key wrapped with enc, edited by edit.
func (f *releaseFixture) payload(t *testing.T, keyID, enc string, edit func(res map[string]any, hsm map[string]any)) []byte {
	t.Helper()
	wrapped, err := keybroker.WrapRSAAES(&f.wrapKey.PublicKey, crypto.SHA256, f.value)
	if err != nil {
		t.Fatal(err)
	}
	hsm := map[string]any{"schema_version": "1.0", "header": map[string]any{"kid": sidecarWrapKeyID, "alg": "dir", "enc": enc},
		"ciphertext": base64.RawURLEncoding.EncodeToString(wrapped)}
	res := map[string]any{
		"request":  map[string]any{"api-version": "7.4", "enc": enc, "kid": keyID},
		"response": map[string]any{"key": map[string]any{"key": map[string]any{"kid": keyID, "kty": "oct", "key_ops": []string{}}}},
	}
	if edit != nil {
		edit(res, hsm)
	}
	hb, err := json.Marshal(hsm)
	if err != nil {
		t.Fatal(err)
	}
	res["response"].(map[string]any)["key"].(map[string]any)["key"].(map[string]any)["key_hsm"] = base64.RawURLEncoding.EncodeToString(hb)
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign is payload as a compact RS256 JWS by key, with kid in its header.
func sign(t *testing.T, key *rsa.PrivateKey, kid string, payload []byte) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The sidecar trusts a release result only when a key the coordinator
// publishes (GET /certs) signed it, under that key's kid.
func TestVerifyRelease(t *testing.T) {
	f := newReleaseFixture(t)
	payload := f.payload(t, "https://coordinator.test/keys/app-aes/1", sidecarEnc, nil)
	good := sign(t, f.signer, f.kid, payload)
	got, err := verifyRelease(good, f.set)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("verifyRelease of a published key's signature = %q, %v", got, err)
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	tampered := f.payload(t, "https://coordinator.test/keys/app-aes/2", sidecarEnc, nil)
	hmac, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("a shared secret of 32 bytes ....")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := hmac.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	hsCompact, _ := hs.CompactSerialize()
	for _, tc := range []struct {
		name, value, want string
	}{
		// A key not in /certs that claims the published kid.
		{"signed by a key not in /certs", sign(t, stranger, f.kid, payload), "signature"},
		{"unknown signer kid", sign(t, f.signer, "token-key-2", payload), `signed by key "token-key-2"`},
		{"no kid", sign(t, f.signer, "", payload), `signed by key ""`},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(tampered) + "." + parts[2], "signature"},
		{"HS256", hsCompact, "release result"},
		{"not a JWS", "{}", "release result"},
	} {
		if p, err := verifyRelease(tc.value, f.set); err == nil || !strings.Contains(err.Error(), tc.want) || p != nil {
			t.Errorf("%s: verifyRelease = %q, %v; want a refusal containing %q", tc.name, p, err, tc.want)
		}
	}
}

// A verified release result is opened only when it is the key asked for
// (and version, when asked), wrapped with the enc asked for.
func TestOpenReleasePayload(t *testing.T) {
	f := newReleaseFixture(t)
	const keyID = "https://coordinator.test/keys/app-aes/1"
	for _, kid := range []string{"app-aes", "app-aes/1"} {
		jwk, err := openReleasePayload(f.payload(t, keyID, sidecarEnc, nil), kid, f.wrapKey)
		if err != nil {
			t.Fatalf("%s: %v", kid, err)
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(jwk); err != nil || !bytes.Equal(k.Key.([]byte), f.value) {
			t.Fatalf("%s: the JWK %s is not the released key (%v)", kid, jwk, err)
		}
	}
	for _, tc := range []struct {
		name, keyID, kid, enc string
		edit                  func(res, hsm map[string]any)
		want                  string
	}{
		{"another key", "https://coordinator.test/keys/app-rsa/1", "app-aes", sidecarEnc, nil, "is not key"},
		{"a key whose name extends the one asked", "https://coordinator.test/keys/app-aes-old/1", "app-aes", sidecarEnc, nil, "is not key"},
		{"another version", keyID, "app-aes/2", sidecarEnc, nil, "is not key"},
		{"no version", "https://coordinator.test/keys/app-aes", "app-aes", sidecarEnc, nil, "is not key"},
		{"the name further up the path", "https://coordinator.test/keys/app-aes/keys/other/1", "app-aes", sidecarEnc, nil, "is not key"},
		{"another enc, in the request and key_hsm", keyID, "app-aes", "RSA_AES_KEY_WRAP_384", nil, "request.enc"},
		{"another enc in key_hsm", keyID, "app-aes", sidecarEnc, func(_, hsm map[string]any) {
			hsm["header"].(map[string]any)["enc"] = "CKM_RSA_AES_KEY_WRAP"
		}, "key_hsm header"},
		{"another wrapping key", keyID, "app-aes", sidecarEnc, func(_, hsm map[string]any) {
			hsm["header"].(map[string]any)["kid"] = "SomeOtherKey"
		}, "key_hsm header"},
		{"request for another key", keyID, "app-aes", sidecarEnc, func(res, _ map[string]any) {
			res["request"].(map[string]any)["kid"] = "https://coordinator.test/keys/other/1"
		}, "request.kid"},
	} {
		_, err := openReleasePayload(f.payload(t, tc.keyID, tc.enc, tc.edit), tc.kid, f.wrapKey)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: openReleasePayload = %v, want a refusal containing %q", tc.name, err, tc.want)
		}
	}
	// A key wrapped to another RSA key does not unwrap.
	other := newReleaseFixture(t)
	if _, err := openReleasePayload(f.payload(t, keyID, sidecarEnc, nil), "app-aes", other.wrapKey); err == nil || !strings.Contains(err.Error(), "unwrap") {
		t.Errorf("a key wrapped to another key: %v", err)
	}
}
