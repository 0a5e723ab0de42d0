package dcap

import (
	"encoding/binary"
	"fmt"
)

// ReportBodySize is the size of an SGX report body (sgx_report_body_t).
const ReportBodySize = 384

// Attributes is the 16-byte SGX ATTRIBUTES field: FLAGS then XFRM.
type Attributes struct {
	Flags uint64
	XFRM  uint64
}

// SGX ATTRIBUTES.FLAGS bits.
const (
	FlagInit         = 1 << 0
	FlagDebug        = 1 << 1
	FlagMode64Bit    = 1 << 2
	FlagProvisionKey = 1 << 4
	FlagEInitToken   = 1 << 5
	FlagKSS          = 1 << 7
)

// Debug reports whether the enclave runs in debug mode (FLAGS.DEBUG).
func (a Attributes) Debug() bool { return a.Flags&FlagDebug != 0 }

// Bytes returns the 16 bytes as they appear in a report.
func (a Attributes) Bytes() [16]byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], a.Flags)
	binary.LittleEndian.PutUint64(b[8:], a.XFRM)
	return b
}

// ReportBody is the 384-byte SGX report body (sgx_report_body_t): an SGX
// quote's ISV enclave report, and the quoting enclave's report in SGX and
// TDX quotes. Reserved ranges are not kept: CheckReportBody requires them
// to be zero.
type ReportBody struct {
	CPUSVN       [16]byte   // @0
	MiscSelect   uint32     // @16; reserved 12 @20
	ISVExtProdID [16]byte   // @32
	Attributes   Attributes // @48
	MREnclave    [32]byte   // @64; reserved 32 @96
	MRSigner     [32]byte   // @128; reserved 32 @160
	ConfigID     [64]byte   // @192
	ISVProdID    uint16     // @256
	ISVSVN       uint16     // @258
	ConfigSVN    uint16     // @260; reserved 42 @262
	ISVFamilyID  [16]byte   // @304
	ReportData   [64]byte   // @320
}

// reportReserved are the reserved ranges of a report body: offset, length.
var reportReserved = [...][2]int{{20, 12}, {96, 32}, {160, 32}, {262, 42}}

// CheckReportBody checks that b is ReportBodySize bytes with its reserved
// ranges zero. Its errors name the offending byte; the caller says which
// report it is and wraps attest.ErrMalformed.
func CheckReportBody(b []byte) error {
	if len(b) != ReportBodySize {
		return fmt.Errorf("report body is %d bytes, want %d", len(b), ReportBodySize)
	}
	for _, rr := range reportReserved {
		for i, c := range b[rr[0] : rr[0]+rr[1]] {
			if c != 0 {
				return fmt.Errorf("reserved byte at offset %d is %#02x, want 0", rr[0]+i, c)
			}
		}
	}
	return nil
}

// DecodeReportBody reads the fields of b, at least ReportBodySize bytes,
// at their offsets; it checks nothing (see CheckReportBody).
func DecodeReportBody(b []byte) ReportBody {
	var r ReportBody
	le := binary.LittleEndian
	copy(r.CPUSVN[:], b[0:16])
	r.MiscSelect = le.Uint32(b[16:])
	copy(r.ISVExtProdID[:], b[32:48])
	r.Attributes.Flags = le.Uint64(b[48:])
	r.Attributes.XFRM = le.Uint64(b[56:])
	copy(r.MREnclave[:], b[64:96])
	copy(r.MRSigner[:], b[128:160])
	copy(r.ConfigID[:], b[192:256])
	r.ISVProdID = le.Uint16(b[256:])
	r.ISVSVN = le.Uint16(b[258:])
	r.ConfigSVN = le.Uint16(b[260:])
	copy(r.ISVFamilyID[:], b[304:320])
	copy(r.ReportData[:], b[320:384])
	return r
}

// Append appends r's ReportBodySize bytes, reserved bytes zero, to b.
func (r *ReportBody) Append(b []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, ReportBodySize)...)
	out := b[n:]
	le := binary.LittleEndian
	copy(out[0:16], r.CPUSVN[:])
	le.PutUint32(out[16:], r.MiscSelect)
	copy(out[32:48], r.ISVExtProdID[:])
	le.PutUint64(out[48:], r.Attributes.Flags)
	le.PutUint64(out[56:], r.Attributes.XFRM)
	copy(out[64:96], r.MREnclave[:])
	copy(out[128:160], r.MRSigner[:])
	copy(out[192:256], r.ConfigID[:])
	le.PutUint16(out[256:], r.ISVProdID)
	le.PutUint16(out[258:], r.ISVSVN)
	le.PutUint16(out[260:], r.ConfigSVN)
	copy(out[304:320], r.ISVFamilyID[:])
	copy(out[320:384], r.ReportData[:])
	return b
}

// QE returns what TCB evaluation needs of r as a quoting enclave's report.
func (r *ReportBody) QE() QEReport {
	return QEReport{MRSigner: r.MRSigner, ISVProdID: r.ISVProdID, ISVSVN: r.ISVSVN,
		MiscSelect: r.MiscSelect, Attributes: r.Attributes.Bytes()}
}
