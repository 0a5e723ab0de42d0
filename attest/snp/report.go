package snp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/trustbound/trustbound/attest"
)

// Offsets in ATTESTATION_REPORT (AMD SEV-SNP ABI specification, table
// "ATTESTATION_REPORT Structure") that abi.ReportToProto does not check.
const (
	offVersion         = 0x000
	offCPUIDStep       = 0x18A
	offLaunchMitVector = 0x1F8
	offMitVectorsEnd   = 0x208
	offSignature       = 0x2A0
	// The signature's R and S are 72-byte little-endian fields holding
	// 48-byte P-384 scalars, zero-extended.
	sigComponentSize = 0x48
	p384ScalarSize   = 48
)

// ParseReport parses a raw SEV-SNP ATTESTATION_REPORT strictly: exactly
// abi.ReportSize (1184) bytes, a version go-sev-guest supports (2 to 5), the
// ECDSA P-384 with SHA-384 signature algorithm, every reserved field and bit
// zero, and an encoding that abi.ReportToAbiBytes reproduces byte for byte.
// It checks no signature. Every error wraps attest.ErrMalformed.
func ParseReport(b []byte) (*spb.Report, error) {
	if len(b) != abi.ReportSize {
		return nil, fmt.Errorf("%w: SNP report is %d bytes, want exactly %d: send the raw ATTESTATION_REPORT, "+
			"without the certificate table of an extended report", attest.ErrMalformed, len(b), abi.ReportSize)
	}
	version := binary.LittleEndian.Uint32(b[offVersion:])
	if version < abi.MinSupportedReportVersion || version > abi.MaxSupportedReportVersion {
		return nil, fmt.Errorf("%w: SNP report version %d is not supported (want %d to %d)",
			attest.ErrMalformed, version, abi.MinSupportedReportVersion, abi.MaxSupportedReportVersion)
	}
	if algo := abi.SignatureAlgo(b); algo != abi.SignEcdsaP384Sha384 {
		return nil, fmt.Errorf("%w: SNP report SIGNATURE_ALGO is %d, want %d (ECDSA P-384 with SHA-384)",
			attest.ErrMalformed, algo, abi.SignEcdsaP384Sha384)
	}
	// Policy reserved bits, SIGNER_INFO, and the reserved ranges 0x4C, 0x188
	// (0x18B from version 3), 0x1EB, 0x1EF, 0x208 and after the signature.
	r, err := abi.ReportToProto(b)
	if err != nil {
		return nil, fmt.Errorf("%w: SNP report: %w", attest.ErrMalformed, err)
	}
	// What abi.ReportToProto leaves unchecked. LAUNCH_MIT_VECTOR and
	// CURRENT_MIT_VECTOR exist from version 4 (Turin firmware fills them in
	// version 4 reports); before that the range is reserved.
	if version < abi.ReportVersion4 {
		if err := mustBeZero(b, offLaunchMitVector, offMitVectorsEnd, "reserved (mitigation vectors before version 4)"); err != nil {
			return nil, err
		}
	}
	if version >= abi.ReportVersion3 && b[offCPUIDStep] > 0xF {
		return nil, fmt.Errorf("%w: SNP report CPUID_STEP is %#x, a stepping has 4 bits", attest.ErrMalformed, b[offCPUIDStep])
	}
	for i, name := range []string{"R", "S"} {
		lo := offSignature + i*sigComponentSize
		if err := mustBeZero(b, lo+p384ScalarSize, lo+sigComponentSize, "signature "+name+" beyond 384 bits"); err != nil {
			return nil, err
		}
	}
	// Anything else that does not survive a round trip is a field this
	// parser would silently drop.
	back, err := abi.ReportToAbiBytes(r)
	if err != nil {
		return nil, fmt.Errorf("%w: SNP report: %w", attest.ErrMalformed, err)
	}
	if !bytes.Equal(back, b) {
		i := 0
		for back[i] == b[i] {
			i++
		}
		return nil, fmt.Errorf("%w: SNP report byte %#x is not in canonical form", attest.ErrMalformed, i)
	}
	return r, nil
}

func mustBeZero(b []byte, lo, hi int, what string) error {
	if !allZero(b[lo:hi]) {
		return fmt.Errorf("%w: SNP report bytes [%#x:%#x] (%s) must be zero, got %s",
			attest.ErrMalformed, lo, hi, what, hex.EncodeToString(b[lo:hi]))
	}
	return nil
}
