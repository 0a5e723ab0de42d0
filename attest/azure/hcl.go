package azure

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"

	"github.com/trustbound/trustbound/attest"
)

// The HCL report, as Azure's paravisor (HCL, OpenHCL) writes it to vTPM NV
// index 0x01400001: an IGVM attestation request. All integers are
// little-endian uint32.
//
//	offset  size  field
//	0       4     signature "HCLA"
//	4       4     version (1 and 2 are in use)
//	8       4     report_size: the bytes used, header included
//	12      4     request_type (2 = AK certificate request)
//	16      4     status (0)
//	20      12    reserved (0)
//	32      1184  hardware report: the SNP report, or a 1024-byte TDREPORT
//	              followed by 160 zero bytes
//	1216    4     data_size: 20 + var_data_size
//	1220    4     request data version (1)
//	1224    4     report_type (2 = SNP, 4 = TDX)
//	1228    4     hash_type (1 = SHA-256, 2 = SHA-384, 3 = SHA-512)
//	1232    4     var_data_size
//	1236    …     var data: the runtime claims JSON
//
// The NV index is NVReportSize bytes; what follows report_size is zero.
const (
	hclHeaderSize      = 32
	HardwareReportSize = 1184 // the hardware report area, SNP report size
	tdReportSize       = 1024
	requestDataOffset  = hclHeaderSize + HardwareReportSize
	requestDataSize    = 20
	varDataOffset      = requestDataOffset + requestDataSize
	// NVReportSize is the size of vTPM NV index 0x01400001, which holds the
	// HCL report followed by zeros.
	NVReportSize = 2600
)

// hclSignature is "HCLA" read as a little-endian uint32.
const hclSignature = 0x414c4348

// RequestTypeAKCert is the request type of the HCL report the vTPM keeps:
// the one that asked the host for the AK certificate.
const RequestTypeAKCert = 2

// ReportType is the kind of hardware report in an HCL report.
type ReportType uint32

// The hardware report types.
const (
	ReportTypeSNP ReportType = 2
	ReportTypeTDX ReportType = 4
)

func (t ReportType) String() string {
	switch t {
	case ReportTypeSNP:
		return "snp"
	case ReportTypeTDX:
		return "tdx"
	}
	return fmt.Sprintf("report type %d", uint32(t))
}

// HashType is the hash the paravisor binds the var data with.
type HashType uint32

// The hash types.
const (
	HashSHA256 HashType = 1
	HashSHA384 HashType = 2
	HashSHA512 HashType = 3
)

func (h HashType) String() string {
	switch h {
	case HashSHA256:
		return "sha256"
	case HashSHA384:
		return "sha384"
	case HashSHA512:
		return "sha512"
	}
	return fmt.Sprintf("hash type %d", uint32(h))
}

// sum returns the hash of b, or nil for an unknown hash type.
func (h HashType) sum(b []byte) []byte {
	switch h {
	case HashSHA256:
		s := sha256.Sum256(b)
		return s[:]
	case HashSHA384:
		s := sha512.Sum384(b)
		return s[:]
	case HashSHA512:
		s := sha512.Sum512(b)
		return s[:]
	}
	return nil
}

// HCLReport is a parsed HCL report.
type HCLReport struct {
	// Version is the header version.
	Version uint32
	// RequestType is always RequestTypeAKCert.
	RequestType uint32
	ReportType  ReportType
	HashType    HashType
	// HardwareReport is the SNP report (HardwareReportSize bytes) or the
	// TDREPORT (1024 bytes).
	HardwareReport []byte
	// VarData is the runtime claims JSON whose hash the hardware report's
	// report data holds.
	VarData []byte
}

// ParseHCLReport parses an HCL report strictly: signature, known versions,
// the AK certificate request type, status zero, reserved bytes zero, sizes
// that agree with each other, and a length of exactly report_size or
// NVReportSize (the NV index as read) with zeros after report_size. Errors
// wrap attest.ErrMalformed. The report's byte slices share b's memory.
func ParseHCLReport(b []byte) (*HCLReport, error) {
	if len(b) < varDataOffset {
		return nil, fmt.Errorf("%w: HCL report is %d bytes, shorter than its %d-byte fixed part", attest.ErrMalformed, len(b), varDataOffset)
	}
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	if u32(0) != hclSignature {
		return nil, fmt.Errorf("%w: HCL report does not start with \"HCLA\"", attest.ErrMalformed)
	}
	r := &HCLReport{
		Version:     u32(4),
		RequestType: u32(12),
		ReportType:  ReportType(u32(requestDataOffset + 8)),
		HashType:    HashType(u32(requestDataOffset + 12)),
	}
	if r.Version != 1 && r.Version != 2 {
		return nil, fmt.Errorf("%w: HCL report version %d is not supported (want 1 or 2)", attest.ErrMalformed, r.Version)
	}
	if r.RequestType != RequestTypeAKCert {
		return nil, fmt.Errorf("%w: HCL report request type is %d, want %d (the AK certificate request the vTPM keeps at NV 0x01400001)", attest.ErrMalformed, r.RequestType, RequestTypeAKCert)
	}
	if status := u32(16); status != 0 {
		return nil, fmt.Errorf("%w: HCL report status is %#x, not success", attest.ErrMalformed, status)
	}
	if !allZero(b[20:hclHeaderSize]) {
		return nil, fmt.Errorf("%w: HCL report header reserved bytes are not zero", attest.ErrMalformed)
	}
	if v := u32(requestDataOffset + 4); v != 1 {
		return nil, fmt.Errorf("%w: HCL request data version %d is not supported (want 1)", attest.ErrMalformed, v)
	}
	hw := b[hclHeaderSize:requestDataOffset]
	switch r.ReportType {
	case ReportTypeSNP:
		r.HardwareReport = hw
	case ReportTypeTDX:
		if !allZero(hw[tdReportSize:]) {
			return nil, fmt.Errorf("%w: the bytes after the TDREPORT in the HCL report are not zero", attest.ErrMalformed)
		}
		r.HardwareReport = hw[:tdReportSize]
	default:
		return nil, fmt.Errorf("%w: HCL report holds a hardware report of type %d (want 2 = SNP or 4 = TDX)", attest.ErrMalformed, uint32(r.ReportType))
	}
	if r.HashType.sum(nil) == nil {
		return nil, fmt.Errorf("%w: HCL report hash type %d is unknown (want 1, 2 or 3)", attest.ErrMalformed, uint32(r.HashType))
	}
	// Sizes, in 64 bits so that no uint32 sum wraps.
	dataSize, varSize, reportSize := uint64(u32(requestDataOffset)), uint64(u32(requestDataOffset+16)), uint64(u32(8))
	if dataSize != requestDataSize+varSize {
		return nil, fmt.Errorf("%w: HCL request data size %d is not %d + var data size %d", attest.ErrMalformed, dataSize, requestDataSize, varSize)
	}
	if reportSize != requestDataOffset+dataSize {
		return nil, fmt.Errorf("%w: HCL report size %d is not %d + request data size %d", attest.ErrMalformed, reportSize, requestDataOffset, dataSize)
	}
	switch n := uint64(len(b)); {
	case n == reportSize:
	case n == NVReportSize && reportSize < NVReportSize:
		if !allZero(b[reportSize:]) {
			return nil, fmt.Errorf("%w: the bytes after the HCL report's %d bytes are not zero", attest.ErrMalformed, reportSize)
		}
	default:
		return nil, fmt.Errorf("%w: HCL report is %d bytes, want its report size %d or the NV index size %d", attest.ErrMalformed, n, reportSize, NVReportSize)
	}
	r.VarData = b[varDataOffset : varDataOffset+varSize]
	return r, nil
}

// ReportData returns the report data the hardware report must hold to bind
// the var data: its hash, then zeros to 64 bytes.
func (r *HCLReport) ReportData() [64]byte {
	var rd [64]byte
	copy(rd[:], r.HashType.sum(r.VarData))
	return rd
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
