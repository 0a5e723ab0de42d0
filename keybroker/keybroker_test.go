package keybroker

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
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

type noCerts struct{}

func (noCerts) IssueSecretCert(string, []string, crypto.Signer, time.Time, time.Duration) ([]byte, error) {
	return nil, errors.New("no CA in this test")
}

func newBroker(t *testing.T) (*Broker, store.Store) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "s.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, newSealer(t), noCerts{}), st
}

func TestBrokerSecrets(t *testing.T) {
	ctx := context.Background()
	b, st := newBroker(t)
	user := manifest.Secret{Name: "pw", Type: manifest.User}
	if _, _, err := b.Current(ctx, user, t0); !errors.Is(err, ErrNoValue) {
		t.Fatalf("unset user secret: %v", err)
	}
	for i, v := range []string{"one", "two"} {
		n, err := b.SetUser(ctx, user, []byte(v), t0)
		if err != nil || n != i+1 {
			t.Fatalf("set %d: %d %v", i, n, err)
		}
	}
	if v, val, err := b.Current(ctx, user, t0); err != nil || v != 2 || string(val) != "two" {
		t.Fatalf("current: %d %q %v", v, val, err)
	}
	if _, err := b.SetUser(ctx, manifest.Secret{Name: "k", Type: manifest.Symmetric}, []byte("x"), t0); err == nil {
		t.Error("an owner set a generated secret")
	}
	sym := manifest.Secret{Name: "k", Type: manifest.Symmetric, Bits: 128}
	_, k1, err := b.Current(ctx, sym, t0)
	if err != nil || len(k1) != 16 {
		t.Fatalf("symmetric: %d bytes, %v", len(k1), err)
	}
	_, k2, _ := b.Current(ctx, sym, t0)
	if !bytes.Equal(k1, k2) {
		t.Error("a generated key changed between releases")
	}
	kp := manifest.Secret{Name: "kp", Type: manifest.KeyPair, Algorithm: "ed25519"}
	if _, v, err := b.Current(ctx, kp, t0); err != nil || !bytes.Contains(v, []byte("PRIVATE KEY")) {
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

func TestReleaseIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	b, st := newBroker(t)
	priv, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []manifest.Secret{{Name: "k", Type: manifest.Symmetric}, {Name: "pw", Type: manifest.User}}
	if _, err := b.Release(ctx, Release{Workload: "w", TokenID: "t1"}, secrets, wire, t0); !errors.Is(err, ErrNoValue) {
		t.Fatalf("release with an unset user secret: %v", err)
	}
	if kvs, _ := st.List(ctx, "audit/"); len(kvs) != 0 {
		t.Fatal("a failed release was recorded")
	}
	b.SetUser(ctx, secrets[1], []byte("pw-value"), t0)
	out, err := b.Release(ctx, Release{Workload: "w", TokenID: "t2"}, secrets, wire, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("%d secrets released", len(out))
	}
	pw, err := Unwrap(priv, out[1])
	if err != nil || string(pw) != "pw-value" {
		t.Fatalf("unwrap: %q %v", pw, err)
	}
	audit, err := b.Audit(ctx)
	if err != nil || len(audit) != 2 || audit[0].Workload != "w" || audit[0].TokenID != "t2" {
		t.Fatalf("audit %+v %v", audit, err)
	}
}
