package keybroker

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/api"
)

// sealedRelease seals values to a fresh TEE key under one HPKE context, as
// the coordinator's ReleaseAll does, and returns the key, the context and
// the secrets in order.
func sealedRelease(t *testing.T, names []string, values [][]byte) (hpke.PrivateKey, api.ReleaseContext, []api.WrappedSecret) {
	t.Helper()
	priv, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := RecipientKey(wire)
	if err != nil {
		t.Fatal(err)
	}
	aads := make([]string, len(names))
	for i, n := range names {
		aads[i] = api.SecretInfo("w", n, 1)
	}
	secrets := make([]api.WrappedSecret, len(names))
	for i, n := range names {
		secrets[i] = api.WrappedSecret{Name: n, Type: "user", Version: 1, Info: aads[i]}
	}
	info := api.ReleaseInfo("w", "tok", secrets)
	enc, sealed, err := WrapAll(pub, info, aads, values)
	if err != nil {
		t.Fatal(err)
	}
	for i := range secrets {
		secrets[i].Sealed = sealed[i]
	}
	return priv, api.ReleaseContext{Enc: enc, Info: info}, secrets
}

// A release whose third secret does not open fails as a whole, and the two
// values opened before it are zero when UnwrapAll's loop returns.
func TestUnwrapAllZeroesOpenedOnFailure(t *testing.T) {
	names := []string{"a", "b", "c"}
	values := [][]byte{[]byte("first value"), []byte("second"), []byte("third value")}
	priv, rc, secrets := sealedRelease(t, names, values)

	got, err := UnwrapAll(priv, rc, secrets)
	if err != nil || len(got) != 3 {
		t.Fatalf("UnwrapAll of an intact release: %d values, %v", len(got), err)
	}
	for i := range values {
		if !bytes.Equal(got[i], values[i]) {
			t.Fatalf("value %d is %q, want %q", i, got[i], values[i])
		}
	}

	secrets[2].Sealed = bytes.Clone(secrets[2].Sealed)
	secrets[2].Sealed[len(secrets[2].Sealed)-1] ^= 1
	got, err = UnwrapAll(priv, rc, secrets)
	if err == nil || !strings.Contains(err.Error(), `secret "c" does not open`) || got != nil {
		t.Fatalf("UnwrapAll with a corrupted third secret = %q, %v", got, err)
	}

	// The same loop over a recipient whose Open is observed: the buffers
	// it handed out for a and b hold only zeros after the failure.
	r, err := hpke.NewRecipient(rc.Enc, priv, SuiteKDF, SuiteAEAD, []byte(rc.Info))
	if err != nil {
		t.Fatal(err)
	}
	var opened [][]byte
	open := func(aad, ct []byte) ([]byte, error) {
		v, err := r.Open(aad, ct)
		if err == nil {
			opened = append(opened, v)
		}
		return v, err
	}
	got, err = openInOrder(open, secrets)
	if err == nil || !strings.Contains(err.Error(), `secret "c"`) || got != nil {
		t.Fatalf("openInOrder with a corrupted third secret = %q, %v", got, err)
	}
	if len(opened) != 2 || len(opened[0]) != len(values[0]) || len(opened[1]) != len(values[1]) {
		t.Fatalf("opened %d values before the failure, want a and b", len(opened))
	}
	for i, v := range opened {
		if !bytes.Equal(v, make([]byte, len(v))) {
			t.Errorf("value %d holds %q after the failed release, want zeros", i, v)
		}
	}
}

// An Open that fails yet hands back bytes has them zeroed too, and a
// failure at the first secret opens nothing.
func TestOpenInOrderZeroesTheFailingBuffer(t *testing.T) {
	secrets := []api.WrappedSecret{{Name: "a"}, {Name: "b"}}
	var handed [][]byte
	calls := 0
	open := func(_, _ []byte) ([]byte, error) {
		calls++
		v := []byte("partial plaintext")
		handed = append(handed, v)
		if calls == 2 {
			return v, errors.New("authentication failed")
		}
		return v, nil
	}
	if got, err := openInOrder(open, secrets); err == nil || !strings.Contains(err.Error(), `secret "b"`) || got != nil {
		t.Fatalf("openInOrder = %q, %v", got, err)
	}
	for i, v := range handed {
		if !bytes.Equal(v, make([]byte, len(v))) {
			t.Errorf("buffer %d holds %q, want zeros", i, v)
		}
	}

	calls = 0
	failFirst := func(_, _ []byte) ([]byte, error) {
		calls++
		return nil, errors.New("authentication failed")
	}
	if got, err := openInOrder(failFirst, secrets); err == nil || !strings.Contains(err.Error(), `secret "a"`) || got != nil || calls != 1 {
		t.Fatalf("openInOrder failing at the first secret = %q, %v after %d calls", got, err, calls)
	}
}

// Messages of one context open only in the order they were sealed: the
// same secrets given out of order do not match the context's info, and
// under an info naming them in that order fail at the first.
func TestUnwrapAllOrder(t *testing.T) {
	priv, rc, secrets := sealedRelease(t, []string{"a", "b"}, [][]byte{[]byte("1"), []byte("2")})
	swapped := []api.WrappedSecret{secrets[1], secrets[0]}
	if got, err := UnwrapAll(priv, rc, swapped); !errors.Is(err, ErrReleaseMismatch) || got != nil {
		t.Fatalf("UnwrapAll out of order = %q, %v", got, err)
	}
	forged := rc
	forged.Info = api.ReleaseInfo("w", "tok", swapped)
	if got, err := UnwrapAll(priv, forged, swapped); err == nil || !strings.Contains(err.Error(), `secret "b"`) || got != nil {
		t.Fatalf("UnwrapAll out of order under a matching info = %q, %v", got, err)
	}
	other, _, _ := NewTEEKey()
	if got, err := UnwrapAll(other, rc, secrets); err == nil || got != nil {
		t.Fatalf("UnwrapAll with another TEE's key = %q, %v", got, err)
	}
}
