package agent

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// FuzzSidecarRequest feeds arbitrary bodies to the request decoder of
// the sidecar's API: it never panics, and what it accepts has every
// required member.
func FuzzSidecarRequest(f *testing.F) {
	for _, seed := range []string{
		`{"runtime_data":"eA=="}`,
		`{"maa_endpoint":"h:1","runtime_data":"eA==","extra":[1,2]}`,
		`{"maa_endpoint":"h","akv_endpoint":"h","kid":"k/1","access_token":"t"}`,
		`{"runtime_data":`, `{} {}`, `[]`, `null`, `{"kid":7}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseSidecarRequest(body, "maa_endpoint", "runtime_data")
		if err == nil && (req.MAAEndpoint == "" || req.RuntimeData == "") {
			t.Fatalf("accepted %q without a required member", body)
		}
		loopbackHost(string(body))
	})
}

// FuzzReleasePayload feeds arbitrary release results (the verified
// payload of the coordinator's JWS) to the unwrapping: it never panics
// and never yields a key from bytes not wrapped to the sidecar's key.
func FuzzReleasePayload(f *testing.F) {
	hsm, _ := json.Marshal(map[string]any{"schema_version": "1.0", "header": map[string]string{"kid": sidecarWrapKeyID, "alg": "dir", "enc": sidecarEnc},
		"ciphertext": base64.RawURLEncoding.EncodeToString(make([]byte, 300))})
	good, _ := json.Marshal(map[string]any{"request": map[string]string{"enc": sidecarEnc, "kid": "https://c/keys/k/1"},
		"response": map[string]any{"key": map[string]any{"key": map[string]string{"kid": "https://c/keys/k/1", "kty": "oct", "key_hsm": base64.RawURLEncoding.EncodeToString(hsm)}}}})
	f.Add(good)
	f.Add([]byte(`{"response":{"key":{"key":{"kid":"/keys/k/","kty":"RSA","key_hsm":"e30"}}}}`))
	f.Add([]byte(`{}`))
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if jwk, err := openReleasePayload(payload, "k", key); err == nil {
			t.Fatalf("a key (%d bytes of JWK) came out of a payload not wrapped to the sidecar", len(jwk))
		}
	})
}
