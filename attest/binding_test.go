package attest

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"testing"
)

// The native binding is SHA-512 over a domain tag and the document, so a
// report bound by Azure's rule (or any plain hash of the same bytes) never
// passes for a trustbound runtime data document.
func TestBindsNative(t *testing.T) {
	rd := []byte(`{"nonce":"n"}`)
	// Known answer, computed independently:
	// python3 -c "import hashlib; print(hashlib.sha512(b'trustbound runtime data v1\x00' + b'{\"nonce\":\"n\"}').hexdigest())"
	const want = "9db229aa865cca3a42e2e534c1574820ab3fd3701ac3d9e3e3c07c8371540fe1" +
		"f9d3346eeb619feaaabb71dfff451e3f8a84ae3069d09678be5d7694a8382d1b"
	got := NativeReportData(rd)
	if hex.EncodeToString(got[:]) != want {
		t.Fatalf("NativeReportData = %x, want %s", got, want)
	}
	if err := BindsNative(got[:], rd); err != nil {
		t.Fatalf("own binding refused: %v", err)
	}
	azure := ReportDataFor(rd)
	s512 := sha512.Sum512(rd)
	s256 := sha256.Sum256(rd)
	flipped := got
	flipped[63] ^= 1
	for name, reportData := range map[string][]byte{
		"Azure's rule (sidecar /attest/raw)": azure[:],
		"plain SHA-512":                      s512[:],
		"plain SHA-256":                      s256[:],
		"last byte flipped":                  flipped[:],
		"short":                              got[:32],
		"zero":                               make([]byte, 64),
	} {
		if err := BindsNative(reportData, rd); !errors.Is(err, ErrBinding) {
			t.Errorf("%s: want ErrBinding, got %v", name, err)
		}
	}
	if err := BindsRuntimeData(got[:], rd); !errors.Is(err, ErrBinding) {
		t.Errorf("a native binding passed Azure's rule: %v", err)
	}
}
