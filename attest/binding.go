package attest

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
)

// nativeDomain separates trustbound's own binding from every other rule
// that puts a hash of caller-chosen bytes into report data. Without it, a
// report minted by any local service that hashes what it is given the
// Azure way (the key-release sidecar's /attest/raw does, by design) would
// also bind a trustbound runtime data document.
const nativeDomain = "trustbound runtime data v1\x00"

// NativeReportData returns the 64 report-data bytes by which trustbound's
// agent binds a runtime data document (api.RuntimeData: nonce and keys) on
// the native path (/v1/attest, dry runs, the coordinator's own evidence):
// SHA-512("trustbound runtime data v1" ‖ 0x00 ‖ runtimeData).
func NativeReportData(runtimeData []byte) [64]byte {
	h := sha512.New()
	h.Write([]byte(nativeDomain))
	h.Write(runtimeData)
	var rd [64]byte
	h.Sum(rd[:0])
	return rd
}

// BindsNative reports whether reportData is NativeReportData(runtimeData),
// compared in constant time.
func BindsNative(reportData, runtimeData []byte) error {
	if len(reportData) != 64 {
		return fmt.Errorf("%w: report data is %d bytes, want 64", ErrBinding, len(reportData))
	}
	want := NativeReportData(runtimeData)
	if subtle.ConstantTimeCompare(want[:], reportData) != 1 {
		return ErrBinding
	}
	return nil
}

// ReportDataFor returns the 64 report-data bytes that bind runtimeData by
// Azure's rule: SHA-256(runtimeData) followed by 32 zero bytes, as Azure
// Attestation checks for SGX and SNP runtimeData and as the key-release
// sidecar's /attest/raw binds. trustbound uses it on its Azure-compatible
// surfaces only; its own path uses NativeReportData.
func ReportDataFor(runtimeData []byte) [64]byte {
	var rd [64]byte
	h := sha256.Sum256(runtimeData)
	copy(rd[:], h[:])
	return rd
}

// BindsRuntimeData reports whether reportData is ReportDataFor(runtimeData),
// compared in constant time. Other binding rules (the SHA-384/512 ones of
// some attesters) are added with the surface that needs them, not before.
func BindsRuntimeData(reportData, runtimeData []byte) error {
	if len(reportData) != 64 {
		return fmt.Errorf("%w: report data is %d bytes, want 64", ErrBinding, len(reportData))
	}
	want := ReportDataFor(runtimeData)
	if subtle.ConstantTimeCompare(want[:], reportData) != 1 {
		return ErrBinding
	}
	return nil
}
