package agent

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
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

// release builds what a coordinator would send id: an SVID from ca and
// one secret sealed to id's HPKE key.
func release(t *testing.T, ca *identity.CA, id *Identity, now time.Time) *api.ReleaseResponse {
	t.Helper()
	der, err := ca.IssueWorkload(identity.WorkloadRequest{PublicKey: &id.Signer.PublicKey, TrustDomain: "example.org", Model: "enclave", Workload: "w", NotBefore: now})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keybroker.RecipientKey(id.hpke)
	if err != nil {
		t.Fatal(err)
	}
	info := api.SecretInfo("w", "s", 1)
	sealed, err := keybroker.Wrap(pub, info, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	return &api.ReleaseResponse{
		Workload: "w", SPIFFEID: "spiffe://example.org/enclave/w",
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		CA:          string(ca.RootPEM()),
		Secrets:     []api.WrappedSecret{{Name: "s", Type: "user", Version: 1, Info: info, Sealed: sealed}},
	}
}

func TestOpen(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ca, _ := identity.NewCA("example.org", now.Add(-time.Hour))
	other, _ := identity.NewCA("example.org", now.Add(-time.Hour))
	a, _ := NewIdentity()
	b, _ := NewIdentity()

	res, err := a.Open(release(t, ca, a, now), now)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Secrets["s"]) != "v" || res.SPIFFEID != "spiffe://example.org/enclave/w" {
		t.Errorf("result %+v", res)
	}
	for name, tc := range map[string]struct {
		rel  *api.ReleaseResponse
		at   time.Time
		want string
	}{
		"certificate for another key": {release(t, ca, b, now), now, "not for this workload's key"},
		"CA is not the issuer": {func() *api.ReleaseResponse {
			r := release(t, other, a, now)
			r.CA = string(ca.RootPEM())
			return r
		}(), now, "release:"},
		"SPIFFE ID differs": {func() *api.ReleaseResponse {
			r := release(t, ca, a, now)
			r.SPIFFEID = "spiffe://example.org/enclave/x"
			return r
		}(), now, "release says"},
		"expired certificate": {release(t, ca, a, now), now.Add(2 * time.Hour), "release:"},
		"foreign secret context": {func() *api.ReleaseResponse {
			r := release(t, ca, a, now)
			r.Secrets[0].Info = "forged"
			return r
		}(), now, "unexpected context"},
		"secret sealed to another TEE": {func() *api.ReleaseResponse {
			r := release(t, ca, a, now)
			r.Secrets = release(t, ca, b, now).Secrets
			return r
		}(), now, "does not open"},
	} {
		if _, err := a.Open(tc.rel, tc.at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want refusal containing %q, got %v", name, tc.want, err)
		}
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
