package attest

import (
	"crypto/sha256"
	"crypto/sha512"
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

// BindsRuntimeData reports whether reportData binds runtimeData under one of
// the rules in use by attesters in the field: SHA-256 or SHA-384 zero-padded
// to 64 bytes, or SHA-512. The comparison is constant-time.
func BindsRuntimeData(reportData, runtimeData []byte) error {
	if len(reportData) != 64 {
		return fmt.Errorf("%w: report data is %d bytes, want 64", ErrBinding, len(reportData))
	}
	s256 := sha256.Sum256(runtimeData)
	s384 := sha512.Sum384(runtimeData)
	s512 := sha512.Sum512(runtimeData)
	for _, h := range [][]byte{s256[:], s384[:], s512[:]} {
		var want [64]byte
		copy(want[:], h)
		if subtle.ConstantTimeCompare(want[:], reportData) == 1 {
			return nil
		}
	}
	return ErrBinding
}
