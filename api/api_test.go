package api

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
)

func TestJWKRoundTrip(t *testing.T) {
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, pub := range []any{&ec256.PublicKey, &ec384.PublicKey, edPub} {
		j, err := NewJWK("k", "sig", pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := j.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Errorf("%T does not round-trip", pub)
		}
	}
	j, _ := NewJWK("k", "sig", &ec256.PublicKey)
	j.Y = j.X // not on the curve
	if _, err := j.PublicKey(); err == nil {
		t.Error("a point off the curve was accepted")
	}
}

func TestOwnerSignature(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, k := range map[string]struct {
		sign func(body string) (string, error)
		pub  any
	}{
		"ecdsa-p384": {func(b string) (string, error) { return SignOwner("alice", ec, "PUT", "/v1/manifest", "n1", []byte(b)) }, &ec.PublicKey},
		"ed25519":    {func(b string) (string, error) { return SignOwner("alice", ed, "PUT", "/v1/manifest", "n1", []byte(b)) }, ed.Public()},
	} {
		h, err := k.sign("body")
		if err != nil {
			t.Fatal(err)
		}
		a, err := ParseOwnerAuth(h)
		if err != nil || a.Name != "alice" || a.Nonce != "n1" {
			t.Fatalf("%s: %+v %v", name, a, err)
		}
		if err := VerifyOwner(k.pub, OwnerPayload("PUT", "/v1/manifest", "n1", []byte("body")), a.Sig); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for what, payload := range map[string][]byte{
			"body":   OwnerPayload("PUT", "/v1/manifest", "n1", []byte("bodz")),
			"path":   OwnerPayload("PUT", "/v1/secrets/x", "n1", []byte("body")),
			"nonce":  OwnerPayload("PUT", "/v1/manifest", "n2", []byte("body")),
			"method": OwnerPayload("POST", "/v1/manifest", "n1", []byte("body")),
		} {
			if VerifyOwner(k.pub, payload, a.Sig) == nil {
				t.Errorf("%s: signature verified over another %s", name, what)
			}
		}
	}
	for _, bad := range []string{"", "Bearer x", "TB-Owner name=a,nonce=b", "TB-Owner name=a,nonce=b,sig=!!", "TB-Owner name=a,name=b,nonce=c,sig=AA", "TB-Owner name=a,nonce=b,sig=AA,x=1"} {
		if _, err := ParseOwnerAuth(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseRuntimeDataStrict(t *testing.T) {
	for _, bad := range []string{`{}`, `{"nonce":"a","extra":1}`, `{"nonce":"a"} {}`, `not json`} {
		if _, err := ParseRuntimeData([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	rd, err := ParseRuntimeData([]byte(`{"nonce":"a","workload":"w","keys":[{"kid":"tb-identity","kty":"EC"}],"hpke":{"kem":1,"kdf":1,"aead":2,"publicKey":"AA=="}}`))
	if err != nil || rd.Workload != "w" {
		t.Fatal(err)
	}
	if _, ok := rd.Key(KeyIdentity); !ok {
		t.Error("identity key not found")
	}
	if !strings.Contains(SecretInfo("w", "s", 3), "s v3 for w") {
		t.Error("secret info does not name secret, version and workload")
	}
}
