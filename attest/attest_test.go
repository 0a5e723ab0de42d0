package attest

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"testing"
	"time"
)

func TestBindsRuntimeData(t *testing.T) {
	rd := []byte(`{"nonce":"n"}`)
	s256, s384, s512 := sha256.Sum256(rd), sha512.Sum384(rd), sha512.Sum512(rd)
	pad := func(h []byte) []byte { b := make([]byte, 64); copy(b, h); return b }
	rdFor := ReportDataFor(rd)
	for name, reportData := range map[string][]byte{
		"ReportDataFor": rdFor[:], "sha256": pad(s256[:]),
	} {
		if err := BindsRuntimeData(reportData, rd); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := pad(s256[:])
	bad[40] = 1 // non-zero padding
	other := sha256.Sum256([]byte("other"))
	for name, reportData := range map[string][]byte{
		"padding not zero": bad, "other data": pad(other[:]), "short": s256[:], "zero": make([]byte, 64),
		"sha384 (not a rule of ours)": pad(s384[:]), "sha512 (not a rule of ours)": s512[:],
	} {
		if err := BindsRuntimeData(reportData, rd); !errors.Is(err, ErrBinding) {
			t.Errorf("%s: want ErrBinding, got %v", name, err)
		}
	}
}

type fakeVerifier struct {
	f      Format
	claims *Claims
	err    error
}

func (v fakeVerifier) Format() Format { return v.f }
func (v fakeVerifier) Verify(context.Context, *Evidence, Options) (*Claims, error) {
	return v.claims, v.err
}

func TestRegistry(t *testing.T) {
	if _, err := NewRegistry(fakeVerifier{f: "a"}, fakeVerifier{f: "a"}); err == nil {
		t.Error("two verifiers for one format were accepted")
	}
	r, err := NewRegistry(fakeVerifier{f: "ok", claims: &Claims{TEE: SGX}}, fakeVerifier{f: "nil"}, fakeVerifier{f: "bad", err: ErrSignature})
	if err != nil {
		t.Fatal(err)
	}
	now := Options{Now: time.Unix(1, 0)}
	ctx := context.Background()
	if c, err := r.Verify(ctx, &Evidence{Format: "ok"}, now); err != nil || c.Format != "ok" || c.TEE != SGX {
		t.Errorf("ok: %+v %v", c, err)
	}
	for name, tc := range map[string]struct {
		ev   *Evidence
		opts Options
		want error
	}{
		"unknown format": {&Evidence{Format: "x"}, now, ErrUnknownFormat},
		"no evidence":    {nil, now, ErrMalformed},
		"verifier error": {&Evidence{Format: "bad"}, now, ErrSignature},
	} {
		if _, err := r.Verify(ctx, tc.ev, tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("%s: want %v, got %v", name, tc.want, err)
		}
	}
	if _, err := r.Verify(ctx, &Evidence{Format: "ok"}, Options{}); err == nil {
		t.Error("verification without a time was accepted")
	}
	if _, err := r.Verify(ctx, &Evidence{Format: "nil"}, now); err == nil {
		t.Error("a verifier returning no claims and no error was accepted")
	}
	if got := r.Formats(); len(got) != 3 || got[0] != "bad" {
		t.Errorf("formats %v", got)
	}
}

func TestHexText(t *testing.T) {
	var h Hex
	if err := h.UnmarshalText([]byte("00ff")); err != nil || h.String() != "00ff" {
		t.Fatalf("%v %v", h, err)
	}
	if err := h.UnmarshalText([]byte("zz")); err == nil {
		t.Error("non-hex accepted")
	}
}
