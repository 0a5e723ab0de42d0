package agent

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/api"
)

func TestRuntimeDataBindsKeysAndNonce(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	b, err := id.RuntimeData("web", "nonce-1")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := api.ParseRuntimeData(b)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Nonce != "nonce-1" || rd.Workload != "web" {
		t.Errorf("runtime data %+v", rd)
	}
	k, ok := rd.Key(api.KeyIdentity)
	if !ok {
		t.Fatal("no identity key")
	}
	pub, err := k.PublicKey()
	if err != nil || !id.Signer.PublicKey.Equal(pub) {
		t.Errorf("identity key does not round-trip: %v", err)
	}
	if string(rd.HPKE.PublicKey) != string(id.HPKE.PublicKey().Bytes()) {
		t.Error("HPKE key does not round-trip")
	}
}

func TestOpenRefusesACertificateForAnotherKey(t *testing.T) {
	a, _ := NewIdentity()
	b, _ := NewIdentity()
	// A self-made certificate for b's key is enough: Open must look at the key.
	cert := selfSigned(t, b)
	if _, err := a.Open(&api.ReleaseResponse{Workload: "w", Certificate: cert}); err == nil || !strings.Contains(err.Error(), "not for this workload's key") {
		t.Fatalf("want refusal, got %v", err)
	}
	if _, err := b.Open(&api.ReleaseResponse{Workload: "w", Certificate: cert, Secrets: []api.WrappedSecret{{Name: "s", Info: "forged", Version: 1}}}); err == nil {
		t.Fatal("a secret with a foreign HPKE context was accepted")
	}
}

func TestWriteIsOwnerOnlyAndRefusesUnsafeNames(t *testing.T) {
	id, _ := NewIdentity()
	dir := t.TempDir()
	res := &Result{Certificate: "c", CA: "ca", Secrets: map[string][]byte{"k": []byte("v")}}
	if err := id.Write(dir, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"identity.key", "identity.crt", "ca.crt", "secrets/k"} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, info.Mode(), err)
		}
	}
	key, _ := os.ReadFile(filepath.Join(dir, "identity.key"))
	if blk, _ := pem.Decode(key); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Error("identity.key is not a PEM private key")
	}
	for _, bad := range []string{"../x", "..", "a/b"} {
		if err := id.Write(t.TempDir(), &Result{Secrets: map[string][]byte{bad: nil}}); err == nil {
			t.Errorf("secret name %q was written", bad)
		}
	}
}
