package keybroker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	k := make([]byte, DataKeySize)
	rand.Read(k)
	s, err := NewSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealer(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal("secrets/a", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hello")) {
		t.Fatal("plaintext visible in sealed value")
	}
	if pt, err := s.Open("secrets/a", sealed); err != nil || string(pt) != "hello" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := s.Open("secrets/b", sealed); !errors.Is(err, ErrUnseal) {
		t.Errorf("moved to another key: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open("secrets/a", sealed); !errors.Is(err, ErrUnseal) {
		t.Errorf("tampered: %v", err)
	}
	if _, err := newSealer(t).Open("secrets/a", sealed); !errors.Is(err, ErrUnseal) {
		t.Errorf("other data key: %v", err)
	}
	if _, err := NewSealer(make([]byte, 16)); err == nil {
		t.Error("a 16-byte data key was accepted")
	}
}

func TestWrapUnwrapEverySuite(t *testing.T) {
	for _, kem := range KEMs {
		priv, err := kem.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		wire := api.HPKEKey{KEM: kem.ID(), KDF: SuiteKDF.ID(), AEAD: SuiteAEAD.ID(), PublicKey: priv.PublicKey().Bytes()}
		pub, err := RecipientKey(wire)
		if err != nil {
			t.Fatalf("kem 0x%04x: %v", kem.ID(), err)
		}
		info := api.SecretInfo("web", "k", 1)
		sealed, err := Wrap(pub, info, []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unwrap(priv, api.WrappedSecret{Name: "k", Info: info, Sealed: sealed})
		if err != nil || string(got) != "secret" {
			t.Fatalf("kem 0x%04x: %q %v", kem.ID(), got, err)
		}
		// Another context (secret name, version or workload) does not open.
		if _, err := Unwrap(priv, api.WrappedSecret{Name: "k", Info: api.SecretInfo("web", "k", 2), Sealed: sealed}); err == nil {
			t.Errorf("kem 0x%04x: opened under another info", kem.ID())
		}
	}
}

func TestRecipientKeyRefusesOtherSuites(t *testing.T) {
	_, good, _ := NewTEEKey()
	for name, k := range map[string]api.HPKEKey{
		"kdf":   {KEM: good.KEM, KDF: 0x0002, AEAD: good.AEAD, PublicKey: good.PublicKey},
		"aead":  {KEM: good.KEM, KDF: good.KDF, AEAD: 0x0001, PublicKey: good.PublicKey},
		"kem":   {KEM: 0x0011, KDF: good.KDF, AEAD: good.AEAD, PublicKey: good.PublicKey},
		"bytes": {KEM: good.KEM, KDF: good.KDF, AEAD: good.AEAD, PublicKey: good.PublicKey[:10]},
	} {
		if _, err := RecipientKey(k); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func newBroker(t *testing.T) (*Broker, store.Store) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "s.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, newSealer(t)), st
}

func TestBrokerSecrets(t *testing.T) {
	ctx := context.Background()
	b, st := newBroker(t)
	user := manifest.Secret{Name: "pw", Type: manifest.User}
	if _, _, err := b.Current(ctx, user, nil, t0); !errors.Is(err, ErrNoValue) {
		t.Fatalf("unset user secret: %v", err)
	}
	for i, v := range []string{"one", "two"} {
		n, err := b.SetUser(ctx, user, []byte(v), t0)
		if err != nil || n != i+1 {
			t.Fatalf("set %d: %d %v", i, n, err)
		}
	}
	if v, val, err := b.Current(ctx, user, nil, t0); err != nil || v != 2 || string(val) != "two" {
		t.Fatalf("current: %d %q %v", v, val, err)
	}
	if _, err := b.SetUser(ctx, manifest.Secret{Name: "k", Type: manifest.Symmetric}, []byte("x"), t0); err == nil {
		t.Error("an owner set a generated secret")
	}
	sym := manifest.Secret{Name: "k", Type: manifest.Symmetric, Bits: 128}
	_, k1, err := b.Current(ctx, sym, nil, t0)
	if err != nil || len(k1) != 16 {
		t.Fatalf("symmetric: %d bytes, %v", len(k1), err)
	}
	_, k2, _ := b.Current(ctx, sym, nil, t0)
	if !bytes.Equal(k1, k2) {
		t.Error("a generated key changed between releases")
	}
	kp := manifest.Secret{Name: "kp", Type: manifest.KeyPair, Algorithm: "ed25519"}
	if _, v, err := b.Current(ctx, kp, nil, t0); err != nil || !bytes.Contains(v, []byte("PRIVATE KEY")) {
		t.Fatalf("keypair: %v", err)
	}
	// At rest, nothing is in clear.
	kvs, _ := st.List(ctx, "")
	for _, kv := range kvs {
		if bytes.Contains(kv.Value, []byte("two")) || bytes.Contains(kv.Value, k1) {
			t.Errorf("%s holds a secret in clear", kv.Key)
		}
	}
}

// TestTypeChangedFailsClosed checks that a secret whose type changes in the
// manifest is neither regenerated over its history nor left half-written.
func TestTypeChangedFailsClosed(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	sym := manifest.Secret{Name: "k", Type: manifest.Symmetric}
	user := manifest.Secret{Name: "k", Type: manifest.User}
	_, k1, err := b.Current(ctx, sym, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	// symmetric → user
	if _, err := b.SetUser(ctx, user, []byte("v"), t0); !errors.Is(err, ErrTypeChanged) {
		t.Errorf("SetUser over a symmetric secret: %v, want ErrTypeChanged", err)
	}
	if _, _, err := b.Current(ctx, user, nil, t0); !errors.Is(err, ErrTypeChanged) {
		t.Errorf("Current of a symmetric secret as user: %v, want ErrTypeChanged", err)
	} else if want := `secret "k" is stored as symmetric but the manifest now says user: give the new secret a new name`; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
	if v, k, err := b.Current(ctx, sym, nil, t0); err != nil || v != 1 || !bytes.Equal(k, k1) {
		t.Errorf("the symmetric secret changed: v%d %v", v, err)
	}

	// user → keypair
	pw := manifest.Secret{Name: "pw", Type: manifest.User}
	if _, err := b.SetUser(ctx, pw, []byte("v"), t0); err != nil {
		t.Fatal(err)
	}
	kp := manifest.Secret{Name: "pw", Type: manifest.KeyPair}
	if _, _, err := b.Current(ctx, kp, nil, t0); !errors.Is(err, ErrTypeChanged) {
		t.Errorf("Current of a user secret as keypair: %v, want ErrTypeChanged", err)
	}
	if v, val, err := b.Current(ctx, pw, nil, t0); err != nil || v != 1 || string(val) != "v" {
		t.Errorf("the user secret changed: v%d %q %v", v, val, err)
	}
}

func newCA(t *testing.T, trustDomain string) *identity.CA {
	t.Helper()
	ca, err := identity.NewCA(trustDomain, t0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// cert parses the certificate at the start of an x509 secret's value.
func cert(t *testing.T, value []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(value)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("value does not start with a certificate")
	}
	if key, _ := pem.Decode(rest); key == nil || key.Type != "PRIVATE KEY" {
		t.Fatalf("value has no private key after the certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verifies(c *x509.Certificate, ca *identity.CA, now time.Time) bool {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

func TestX509Renewal(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	ca := newCA(t, "example.org")
	s := manifest.Secret{Name: "tls", Type: manifest.X509, DNSNames: []string{"web.example.org"}}
	day := 24 * time.Hour

	if _, _, err := b.Current(ctx, s, nil, t0); err == nil {
		t.Error("an x509 secret was served without a certificate issuer")
	}
	v, first, err := b.Current(ctx, s, ca, t0)
	if err != nil || v != 1 {
		t.Fatalf("first: v%d %v", v, err)
	}
	c1 := cert(t, first)
	if c1.Subject.CommonName != "web.example.org" || !verifies(c1, ca, t0) {
		t.Fatalf("first certificate: CN %q", c1.Subject.CommonName)
	}
	// The default lifetime is 90 days (plus a minute of backdating): two
	// thirds is day 60.
	if v, val, err := b.Current(ctx, s, ca, t0.Add(59*day)); err != nil || v != 1 || !bytes.Equal(val, first) {
		t.Fatalf("day 59: v%d %v, want v1 unchanged", v, err)
	}
	at := t0.Add(61 * day)
	v, second, err := b.Current(ctx, s, ca, at)
	if err != nil || v != 2 {
		t.Fatalf("day 61: v%d %v, want v2", v, err)
	}
	c2 := cert(t, second)
	if !verifies(c2, ca, at) || !c2.NotAfter.Equal(at.Add(90*day)) {
		t.Errorf("renewed certificate: NotAfter %s", c2.NotAfter)
	}
	if c2.PublicKey.(*ecdsa.PublicKey).Equal(c1.PublicKey) {
		t.Error("the renewed certificate reuses the old key")
	}
	if v, val, err := b.Current(ctx, s, ca, at.Add(time.Hour)); err != nil || v != 2 || !bytes.Equal(val, second) {
		t.Fatalf("after renewal: v%d %v, want v2 unchanged", v, err)
	}

	// Expired long ago: a new version valid now.
	late := t0.Add(400 * day)
	v, third, err := b.Current(ctx, s, ca, late)
	if err != nil || v != 3 || !verifies(cert(t, third), ca, late) {
		t.Fatalf("expired: v%d %v, want v3 valid now", v, err)
	}

	// The manifest moved to another trust domain: its CA reissues.
	other := newCA(t, "other.example")
	v, fourth, err := b.Current(ctx, s, other, late)
	if err != nil || v != 4 {
		t.Fatalf("other CA: v%d %v, want v4", v, err)
	}
	if c4 := cert(t, fourth); !verifies(c4, other, late) || verifies(c4, ca, late) {
		t.Error("the reissued certificate is not from the new CA")
	}

	// The manifest changed the secret's names or algorithm: reissued.
	s.Subject = "web tls"
	v, fifth, err := b.Current(ctx, s, other, late)
	if err != nil || v != 5 || cert(t, fifth).Subject.CommonName != "web tls" {
		t.Fatalf("new subject: v%d %v, want v5", v, err)
	}
	s.Algorithm = "ed25519"
	v, sixth, err := b.Current(ctx, s, other, late)
	if _, ok := cert(t, sixth).PublicKey.(ed25519.PublicKey); err != nil || v != 6 || !ok {
		t.Fatalf("new algorithm: v%d %v, want v6 with an Ed25519 key", v, err)
	}

	// Every older version is kept, in order.
	st, _, err := b.load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Versions) != 6 || !bytes.Equal(st.Versions[0].Value, first) || !bytes.Equal(st.Versions[1].Value, second) {
		t.Fatalf("%d versions kept, want 6 with the first two unchanged", len(st.Versions))
	}
	for i, sv := range st.Versions {
		if sv.Version != i+1 {
			t.Errorf("versions[%d] is v%d", i, sv.Version)
		}
	}
}

func TestReleaseIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	b, st := newBroker(t)
	priv, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t, "example.org")
	secrets := []manifest.Secret{
		{Name: "k", Type: manifest.Symmetric},
		{Name: "pw", Type: manifest.User},
		{Name: "tls", Type: manifest.X509, Subject: "web"},
	}
	req := ReleaseRequest{Record: Release{Workload: "w", TokenID: "t1"}, Secrets: secrets, To: wire, Now: t0, Certs: ca}
	if _, err := b.Release(ctx, req); !errors.Is(err, ErrNoValue) {
		t.Fatalf("release with an unset user secret: %v", err)
	}
	if kvs, _ := st.List(ctx, "audit/"); len(kvs) != 0 {
		t.Fatal("a failed release was recorded")
	}
	b.SetUser(ctx, secrets[1], []byte("pw-value"), t0)
	req.Record.TokenID = "t2"
	out, err := b.Release(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("%d secrets released", len(out))
	}
	pw, err := Unwrap(priv, out[1])
	if err != nil || string(pw) != "pw-value" {
		t.Fatalf("unwrap: %q %v", pw, err)
	}
	tls, err := Unwrap(priv, out[2])
	if err != nil || !verifies(cert(t, tls), ca, t0) {
		t.Fatalf("unwrap x509: %v", err)
	}
	audit, err := b.Audit(ctx)
	if err != nil || len(audit) != 3 || audit[0].Workload != "w" || audit[0].TokenID != "t2" {
		t.Fatalf("audit %+v %v", audit, err)
	}

	req.Certs, req.Record.TokenID = nil, "t3"
	if _, err := b.Release(ctx, req); err == nil {
		t.Error("an x509 secret was released without a certificate issuer")
	}
}

// TestReleaseConditions checks that a release under a manifest that changed
// meanwhile is neither recorded nor returned.
func TestReleaseConditions(t *testing.T) {
	ctx := context.Background()
	b, st := newBroker(t)
	_, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	rev, err := store.Put(ctx, st, "manifest/current", []byte("manifest v1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	req := ReleaseRequest{
		Record:     Release{Workload: "w", TokenID: "t1"},
		Secrets:    []manifest.Secret{{Name: "k", Type: manifest.Symmetric}},
		To:         wire,
		Now:        t0,
		Conditions: []store.Op{{Key: "manifest/current", Expect: rev, Check: true}},
	}
	if out, err := b.Release(ctx, req); err != nil || len(out) != 1 {
		t.Fatalf("release under the current manifest: %d %v", len(out), err)
	}

	if _, err := store.Put(ctx, st, "manifest/current", []byte("manifest v2"), rev); err != nil {
		t.Fatal(err)
	}
	req.Record.TokenID, req.Now = "t2", t0.Add(time.Second)
	out, err := b.Release(ctx, req)
	if !errors.Is(err, store.ErrConflict) || out != nil {
		t.Fatalf("release under a replaced manifest: %d secrets, %v; want store.ErrConflict and none", len(out), err)
	}
	if audit, _ := b.Audit(ctx); len(audit) != 1 || audit[0].TokenID != "t1" {
		t.Errorf("audit %+v, want only the first release", audit)
	}
}
