package attest

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
)

// ReportDataFor returns the 64 report-data bytes that bind runtimeData:
// SHA-256(runtimeData) followed by 32 zero bytes, the rule Azure Attestation
// uses for SGX and SNP. trustbound's agent always binds this way.
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
