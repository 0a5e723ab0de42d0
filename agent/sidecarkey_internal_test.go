package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"net/http/httptest"
	"testing"
	"unicode/utf8"
)

// writeSidecarKey's hand-built body decodes, with encoding/json, to
// {"key": exactly the JWK text}.
func FuzzWriteSidecarKey(f *testing.F) {
	for _, s := range []string{`{"kty":"oct","k":"AAEC"}`, `a"b\c`, "\x00\x1f\n\t", "é\u2028", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jwk string) {
		if !utf8.ValidString(jwk) {
			t.Skip("the JWK is JSON text, valid UTF-8")
		}
		rec := httptest.NewRecorder()
		writeSidecarKey(rec, []byte(jwk))
		var out map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("body %q: %v", rec.Body.Bytes(), err)
		}
		if len(out) != 1 || out["key"] != jwk {
			t.Fatalf("body %q decodes to %q, want key %q", rec.Body.Bytes(), out, jwk)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" || rec.Code != 200 {
			t.Fatalf("status %d, content type %q", rec.Code, ct)
		}
	})
}

// zeroKey overwrites the private scalars of RSA and ECDSA keys.
func TestZeroKey(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	zeroKey(rk)
	zeroKey(ek)
	zeroKey("not a key") // ignored
	for name, x := range map[string]*big.Int{"RSA D": rk.D, "RSA p": rk.Primes[0], "RSA q": rk.Primes[1], "ECDSA D": ek.D} {
		for _, w := range x.Bits() {
			if w != 0 {
				t.Fatalf("%s survived zeroKey", name)
			}
		}
	}
}
