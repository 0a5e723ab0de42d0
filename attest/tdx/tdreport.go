package tdx

import (
	"bytes"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"

	"github.com/trustbound/trustbound/attest"
)

// TDReportSize is the size of a TDREPORT_STRUCT (TDX module ABI).
const TDReportSize = 1024

// TDREPORT_STRUCT layout, with offsets from its start:
//
//	0    256  REPORTMACSTRUCT: REPORTTYPE 4 (TEE type 0x81, subtype 0,
//	          version 0 or 1, reserved), reserved 12, CPUSVN 16 @16,
//	          TEE_TCB_INFO_HASH 48 @32, TEE_INFO_HASH 48 @80,
//	          REPORTDATA 64 @128, reserved 32 @192, MAC 32 @224
//	256  239  TEE_TCB_INFO: VALID 8, TEE_TCB_SVN 16 @8, MRSEAM 48 @24,
//	          MRSIGNERSEAM 48 @72, ATTRIBUTES 8 @120, TEE_TCB_SVN2 16 @128
//	          (TDX 1.5), reserved 95 @144
//	495  17   reserved
//	512  512  TDINFO: ATTRIBUTES 8, XFAM 8 @8, MRTD 48 @16, MRCONFIGID 48
//	          @64, MROWNER 48 @112, MROWNERCONFIG 48 @160, RTMR 4×48 @208,
//	          SERVTD_HASH 48 @400 (TDX 1.5), reserved 64 @448
const (
	teeTCBInfoOffset = 256
	teeTCBInfoSize   = 239
	tdInfoOffset     = 512
	tdInfoSize       = 512
)

// TDReport is a parsed TDREPORT: what the TDX module reports to the TD
// itself, MACed with a platform key that only the quoting enclave can
// check. Outside the platform it is trustworthy only where a signed quote
// says the same.
type TDReport struct {
	// ReportType is TEE type, subtype, version, reserved.
	ReportType [4]byte
	CPUSVN     [16]byte
	// TEETCBInfoHash and TEEInfoHash are the SHA-384 of TEE_TCB_INFO and
	// TDINFO; ParseTDReport checks that they are.
	TEETCBInfoHash [48]byte
	TEEInfoHash    [48]byte
	ReportData     [64]byte
	MAC            [32]byte
	// TEETCBInfoValid is the VALID bitmap of TEE_TCB_INFO.
	TEETCBInfoValid [8]byte
	// Body holds the fields a TD quote body repeats: TEE_TCB_SVN, MRSEAM,
	// MRSIGNERSEAM, SEAM ATTRIBUTES, TD ATTRIBUTES, XFAM, MRTD, MRCONFIGID,
	// MROWNER, MROWNERCONFIG, RTMRs, REPORTDATA, TEE_TCB_SVN2 and
	// SERVTD_HASH (MRSERVICETD).
	Body Body
}

func malformedReport(format string, args ...any) error {
	return fmt.Errorf("%w: TDREPORT: %s", attest.ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseTDReport parses a 1024-byte TDREPORT strictly: exact size, TEE type
// 0x81 with subtype 0 and version 0 or 1, reserved bytes zero, and
// TEE_TCB_INFO_HASH and TEE_INFO_HASH the SHA-384 of the structures they
// name. It cannot check the MAC, which only the platform can. Errors wrap
// attest.ErrMalformed.
func ParseTDReport(b []byte) (*TDReport, error) {
	if len(b) != TDReportSize {
		return nil, malformedReport("%d bytes, want %d", len(b), TDReportSize)
	}
	r := &TDReport{}
	copy(r.ReportType[:], b[0:4])
	if r.ReportType[0] != TEETypeTDX || r.ReportType[1] != 0 || r.ReportType[2] > 1 || r.ReportType[3] != 0 {
		return nil, malformedReport("report type %x, want TEE type 81, subtype 0, version 0 or 1", r.ReportType)
	}
	for _, rr := range [...][2]int{{4, 12}, {192, 32}, {teeTCBInfoOffset + 144, 95}, {495, 17}, {tdInfoOffset + 448, 64}} {
		if !allZero(b[rr[0] : rr[0]+rr[1]]) {
			return nil, malformedReport("reserved bytes at %d..%d are not zero", rr[0], rr[0]+rr[1])
		}
	}
	copy(r.CPUSVN[:], b[16:32])
	copy(r.TEETCBInfoHash[:], b[32:80])
	copy(r.TEEInfoHash[:], b[80:128])
	copy(r.ReportData[:], b[128:192])
	copy(r.MAC[:], b[224:256])
	tcb := b[teeTCBInfoOffset : teeTCBInfoOffset+teeTCBInfoSize]
	info := b[tdInfoOffset : tdInfoOffset+tdInfoSize]
	if h := sha512.Sum384(tcb); subtle.ConstantTimeCompare(h[:], r.TEETCBInfoHash[:]) != 1 {
		return nil, malformedReport("TEE_TCB_INFO_HASH is not the SHA-384 of TEE_TCB_INFO")
	}
	if h := sha512.Sum384(info); subtle.ConstantTimeCompare(h[:], r.TEEInfoHash[:]) != 1 {
		return nil, malformedReport("TEE_INFO_HASH is not the SHA-384 of TDINFO")
	}
	copy(r.TEETCBInfoValid[:], tcb[0:8])
	d := &r.Body
	copy(d.TEETCBSVN[:], tcb[8:24])
	copy(d.MRSEAM[:], tcb[24:72])
	copy(d.MRSignerSEAM[:], tcb[72:120])
	copy(d.SEAMAttributes[:], tcb[120:128])
	copy(d.TEETCBSVN2[:], tcb[128:144])
	copy(d.TDAttributes[:], info[0:8])
	copy(d.XFAM[:], info[8:16])
	copy(d.MRTD[:], info[16:64])
	copy(d.MRConfigID[:], info[64:112])
	copy(d.MROwner[:], info[112:160])
	copy(d.MROwnerConfig[:], info[160:208])
	for i := range d.RTMR {
		copy(d.RTMR[i][:], info[208+48*i:])
	}
	copy(d.MRServiceTD[:], info[400:448])
	d.ReportData = r.ReportData
	return r, nil
}

// MatchesQuote reports, as an error naming the first field that differs,
// whether every field that the quote q's body shares with the TDREPORT r
// is equal, compared in constant time: all of a TD report 1.0 body and, for
// a TD report 1.5 body, also TEE_TCB_SVN2 and MRSERVICETD. A TD report 1.0
// body does not carry those, so they are not compared. Errors wrap
// attest.ErrBinding.
func (r *TDReport) MatchesQuote(q *Quote) error {
	size := BodySize10
	if q.BodyType == BodyTypeTD15 {
		size = BodySize15
	}
	got, want := q.Body.bytes(size), r.Body.bytes(size)
	if subtle.ConstantTimeCompare(got, want) == 1 {
		return nil
	}
	for _, f := range bodyFields {
		if f.off < size && !bytes.Equal(got[f.off:f.off+f.size], want[f.off:f.off+f.size]) {
			return fmt.Errorf("%w: the TD quote's %s differs from the TDREPORT's", attest.ErrBinding, f.name)
		}
	}
	return fmt.Errorf("%w: the TD quote's body differs from the TDREPORT", attest.ErrBinding)
}

// bodyFields name the ranges of a quote body, for errors.
var bodyFields = [...]struct {
	name      string
	off, size int
}{
	{"TEE_TCB_SVN", 0, 16}, {"MRSEAM", 16, 48}, {"MRSIGNERSEAM", 64, 48},
	{"SEAM_ATTRIBUTES", 112, 8}, {"TD_ATTRIBUTES", 120, 8}, {"XFAM", 128, 8},
	{"MRTD", 136, 48}, {"MRCONFIGID", 184, 48}, {"MROWNER", 232, 48},
	{"MROWNERCONFIG", 280, 48}, {"RTMR0", 328, 48}, {"RTMR1", 376, 48},
	{"RTMR2", 424, 48}, {"RTMR3", 472, 48}, {"REPORTDATA", 520, 64},
	{"TEE_TCB_SVN2", 584, 16}, {"MRSERVICETD", 600, 48},
}
