// Package tdx parses Intel TDX DCAP quotes (version 4, and version 5 with TD
// report 1.0 or 1.5 bodies) strictly and verifies them — PCK chain to the
// Intel SGX Root CA, QE report, attestation key, quote signature and, with
// collateral, Intel's TCB evaluation — into attest.Claims; it appraises
// nothing.
package tdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

// Sizes and values fixed by the Intel TDX DCAP Quoting Library API (quote
// formats 4 and 5). All integers in a quote are little-endian.
const (
	HeaderSize = 48
	// BodySize10 is a TD report 1.0 quote body (TDX 1.0; every version 4
	// quote), BodySize15 a TD report 1.5 body (TDX 1.5: adds TEE_TCB_SVN2
	// and MRSERVICETD).
	BodySize10 = 584
	BodySize15 = 648
	// QEReportSize is the quoting enclave's SGX report body.
	QEReportSize = dcap.ReportBodySize // 384

	// Version4 and Version5 are the quote versions this package reads.
	Version4 = 4
	Version5 = 5
	// KeyTypeECDSAP256 is attestation key type 2, ECDSA-256-with-P-256.
	KeyTypeECDSAP256 = 2
	// TEETypeTDX is the header's TEE type for TDX.
	TEETypeTDX = 0x81

	// Body types of a version 5 quote (1 is an SGX enclave report).
	BodyTypeTD10 = 2
	BodyTypeTD15 = 3

	// Certification data types.
	CertDataPCKChain = 5 // PCK leaf, PCK CA, root CA as concatenated PEM
	CertDataQEReport = 6 // QE report, its signature, QE auth data, then type-5 data

	// MaxQuoteSize bounds the input, padding included. Real quotes are
	// about 5 KB; quote buffers as read from the guest (GCP) are 8 KB.
	MaxQuoteSize = 64 << 10

	// sigDataFixed is the signature data before the type-6 certification
	// data: quote signature 64, attestation key 64, type 2 and size 4.
	sigDataFixed = 64 + 64 + 2 + 4
	// qeCertFixed is the type-6 certification data without the QE
	// authentication data and the PCK chain: QE report, its signature,
	// auth data size 2, inner type 2 and size 4.
	qeCertFixed = QEReportSize + 64 + 2 + 2 + 4
)

// Header is the 48-byte quote header.
type Header struct {
	Version            uint16 // @0: 4 or 5
	AttestationKeyType uint16 // @2: 2
	TEEType            uint32 // @4: 0x81
	// @8: 4 bytes reserved for TDX (QE SVN and PCE SVN in SGX quotes v3):
	// the parser requires them to be zero.
	QEVendorID [16]byte // @12
	UserData   [20]byte // @28
}

// Body is the TD quote body: the TDREPORT fields the quoting enclave
// signs. TEETCBSVN2 and MRServiceTD are present in TD report 1.5 bodies only
// (Quote.BodyType BodyTypeTD15) and zero otherwise.
type Body struct {
	TEETCBSVN      [16]byte    // @0
	MRSEAM         [48]byte    // @16
	MRSignerSEAM   [48]byte    // @64
	SEAMAttributes [8]byte     // @112
	TDAttributes   [8]byte     // @120
	XFAM           [8]byte     // @128
	MRTD           [48]byte    // @136
	MRConfigID     [48]byte    // @184
	MROwner        [48]byte    // @232
	MROwnerConfig  [48]byte    // @280
	RTMR           [4][48]byte // @328
	ReportData     [64]byte    // @520
	TEETCBSVN2     [16]byte    // @584, TD report 1.5
	MRServiceTD    [48]byte    // @600, TD report 1.5
}

// TD_ATTRIBUTES bits (TDX module ABI).
const (
	// TDAttrDebug: the TD runs in debug mode; the host can read its state.
	TDAttrDebug = 1 << 0
	// TDAttrSEPTVEDisable: EPT violations are not turned into #VE.
	TDAttrSEPTVEDisable = 1 << 28
	// TDAttrPKS and TDAttrKL: supervisor protection keys, key locker.
	TDAttrPKS = 1 << 30
	TDAttrKL  = 1 << 31
	// TDAttrPerfmon: the TD may use the performance monitoring unit.
	TDAttrPerfmon = 1 << 63
)

// Attributes returns TD_ATTRIBUTES as a number.
func (b *Body) Attributes() uint64 { return binary.LittleEndian.Uint64(b.TDAttributes[:]) }

// Debug reports whether TD_ATTRIBUTES.DEBUG is set.
func (b *Body) Debug() bool { return b.Attributes()&TDAttrDebug != 0 }

// QEReport is the quoting enclave's SGX report body, dcap.ReportBody (as
// in SGX quotes). Reserved ranges are not kept: the parser requires them to
// be zero.
type QEReport = dcap.ReportBody

// SignatureData is the ECDSA-256 quote signature data with certification
// data of type 6 (QE report certification data) wrapping type 5 (PCK chain).
type SignatureData struct {
	// QuoteSignature is r||s (big-endian) by the attestation key over
	// Quote.SignedByAttestationKey.
	QuoteSignature [64]byte
	// AttestationKey is the raw P-256 public key x||y (big-endian).
	AttestationKey [64]byte
	// QEReport is the TD quoting enclave's report, signed by the PCK key.
	QEReport QEReport
	// QEReportSignature is r||s by the PCK key over the QE report.
	QEReportSignature [64]byte
	// QEAuthData is hashed with the attestation key into the QE report data.
	QEAuthData []byte
	// PCKCertChain is the type-5 certification data as carried (PEM).
	PCKCertChain []byte
}

// Quote is a parsed TDX quote, version 4 or 5.
type Quote struct {
	Header Header
	// BodyType is BodyTypeTD10 or BodyTypeTD15; version 4 quotes are TD10.
	BodyType  uint16
	Body      Body
	Signature SignatureData
	// PCKChain holds the DER certificates of the PCK chain, leaf first.
	PCKChain [][]byte
	// SignedByAttestationKey is the range QuoteSignature covers, as it
	// appeared in the input: header and body (version 4), header, body
	// type, body size and body (version 5).
	SignedByAttestationKey []byte
	// SignedByPCK is the 384-byte QE report, the range QEReportSignature
	// covers, as it appeared in the input.
	SignedByPCK []byte
	// Padding is the number of zero bytes after the quote in the input
	// (see ParseQuote); the Verifier claims it as Platform["quote_padding"]
	// when it is not zero.
	Padding int
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: tdx quote: %s", attest.ErrMalformed, fmt.Sprintf(format, args...))
}

// layout is where the parts of a quote are, as its size fields say.
type layout struct {
	version, bodyType uint16
	bodyStart         int // after the header (v4) or the body descriptor (v5)
	bodyEnd           int // also the end of the attestation-key-signed range
	sigStart          int // signature data, after its 4-byte length
	qeAuthStart       int
	qeAuthEnd         int
	chainStart        int
	end               int // end of the signature data and of the quote
}

// frame checks every size and type field of b and returns the layout. It
// reads no other field, so that what follows cannot index out of range.
func frame(b []byte) (layout, error) {
	var l layout
	if len(b) > MaxQuoteSize {
		return l, malformed("%d bytes, more than the %d allowed", len(b), MaxQuoteSize)
	}
	if len(b) < HeaderSize {
		return l, malformed("%d bytes, shorter than the %d-byte header", len(b), HeaderSize)
	}
	l.version = binary.LittleEndian.Uint16(b[0:])
	switch l.version {
	case Version4:
		l.bodyType, l.bodyStart = BodyTypeTD10, HeaderSize
		l.bodyEnd = l.bodyStart + BodySize10
	case Version5:
		if len(b) < HeaderSize+6 {
			return l, malformed("%d bytes, shorter than a version 5 header and body descriptor", len(b))
		}
		l.bodyType = binary.LittleEndian.Uint16(b[HeaderSize:])
		size := binary.LittleEndian.Uint32(b[HeaderSize+2:])
		var want uint32
		switch l.bodyType {
		case BodyTypeTD10:
			want = BodySize10
		case BodyTypeTD15:
			want = BodySize15
		default:
			return l, malformed("version 5 body type %d, want %d (TD report 1.0) or %d (TD report 1.5)", l.bodyType, BodyTypeTD10, BodyTypeTD15)
		}
		if size != want {
			return l, malformed("version 5 body of type %d is said to be %d bytes, want %d", l.bodyType, size, want)
		}
		l.bodyStart = HeaderSize + 6
		l.bodyEnd = l.bodyStart + int(want)
	default:
		return l, malformed("version %d, only versions %d and %d are supported", l.version, Version4, Version5)
	}
	if len(b) < l.bodyEnd+4 {
		return l, malformed("%d bytes, shorter than its header, body and signature data length (%d)", len(b), l.bodyEnd+4)
	}
	sigLen := uint64(binary.LittleEndian.Uint32(b[l.bodyEnd:]))
	l.sigStart = l.bodyEnd + 4
	if sigLen > uint64(len(b)-l.sigStart) {
		return l, malformed("signature data length is %d but only %d bytes follow", sigLen, len(b)-l.sigStart)
	}
	l.end = l.sigStart + int(sigLen)
	sd := b[l.sigStart:l.end]
	if len(sd) < sigDataFixed {
		return l, malformed("signature data is %d bytes, shorter than its fixed %d", len(sd), sigDataFixed)
	}
	if t := binary.LittleEndian.Uint16(sd[128:]); t != CertDataQEReport {
		return l, malformed("certification data type %d, want %d (QE report certification data)", t, CertDataQEReport)
	}
	outer := sd[sigDataFixed:]
	if size := binary.LittleEndian.Uint32(sd[130:]); uint64(size) != uint64(len(outer)) {
		return l, malformed("QE report certification data size field is %d but the signature data holds %d bytes for it", size, len(outer))
	}
	if len(outer) < qeCertFixed {
		return l, malformed("QE report certification data is %d bytes, shorter than its fixed %d", len(outer), qeCertFixed)
	}
	authLen := int(binary.LittleEndian.Uint16(outer[QEReportSize+64:]))
	l.qeAuthStart = l.sigStart + sigDataFixed + QEReportSize + 64 + 2
	l.qeAuthEnd = l.qeAuthStart + authLen
	if len(outer) < qeCertFixed+authLen {
		return l, malformed("QE authentication data of %d bytes overruns the QE report certification data", authLen)
	}
	inner := b[l.qeAuthEnd:l.end]
	if t := binary.LittleEndian.Uint16(inner); t != CertDataPCKChain {
		return l, malformed("QE report certification data wraps certification data of type %d, want %d (PCK certificate chain)", t, CertDataPCKChain)
	}
	l.chainStart = l.qeAuthEnd + 6
	if size := binary.LittleEndian.Uint32(inner[2:]); uint64(size) != uint64(l.end-l.chainStart) {
		return l, malformed("PCK certificate chain size field is %d but %d bytes remain", size, l.end-l.chainStart)
	}
	return l, nil
}

// ParseQuote reads b as a TDX quote of version 4 or 5 with ECDSA-256
// signature data and a PCK certificate chain. It is strict: every size field
// must agree exactly with the bytes, the header and QE report reserved
// fields must be zero, the certification data must be of type 6 wrapping
// type 5 (a PEM chain of at most 8 certificates, optionally NUL-terminated),
// the key type must be ECDSA P-256, the TEE type TDX and the QE vendor ID
// Intel's (dcap.IntelQEVendorID).
//
// Zero padding: quote buffers are often handed over at a fixed size (Azure
// IMDS and the dcap-qvl and trustee samples: 5006 bytes; GCP's guest quote
// buffer: 8000), so bytes after the quote are accepted if, and only if,
// every one of them is zero; their count is Quote.Padding. A single non-zero
// byte after the quote is refused, and so is anything longer than
// MaxQuoteSize. Every refusal wraps attest.ErrMalformed. The Quote does not
// alias b.
//
// Version 4 quotes are decoded with go-tdx-guest's abi package after this
// package's own framing check; version 5 quotes, which go-tdx-guest does not
// read, with this package's own decoder.
func ParseQuote(b []byte) (*Quote, error) {
	q, err := parse(b)
	if err != nil {
		return nil, err
	}
	if q.PCKChain, err = dcap.SplitPCKCertData(q.Signature.PCKCertChain); err != nil {
		return nil, fmt.Errorf("tdx quote: %w", err)
	}
	return q, nil
}

// parse is ParseQuote without splitting the PCK chain into certificates:
// the Verifier does that only for chains it has not verified before.
func parse(b []byte) (*Quote, error) {
	l, err := frame(b)
	if err != nil {
		return nil, err
	}
	for i, c := range b[l.end:] {
		if c != 0 {
			return nil, malformed("non-zero byte %#02x at offset %d, after the quote's %d bytes (only zero padding may follow a quote)", c, l.end+i, l.end)
		}
	}
	if err := checkHeader(b); err != nil {
		return nil, err
	}
	padding := len(b) - l.end
	b = bytes.Clone(b[:l.end])
	var q *Quote
	if l.version == Version4 {
		if q, err = decodeV4(b); err != nil {
			return nil, err
		}
	} else {
		q = decode(b, l)
	}
	q.Padding = padding
	if err := q.check(b, l); err != nil {
		return nil, err
	}
	return q, nil
}

// decode reads the fields of a framed quote b (of either version) at their
// spec offsets.
func decode(b []byte, l layout) *Quote {
	q := &Quote{BodyType: l.bodyType}
	h := &q.Header
	h.Version = binary.LittleEndian.Uint16(b[0:])
	h.AttestationKeyType = binary.LittleEndian.Uint16(b[2:])
	h.TEEType = binary.LittleEndian.Uint32(b[4:])
	copy(h.QEVendorID[:], b[12:28])
	copy(h.UserData[:], b[28:48])
	decodeBody(&q.Body, b[l.bodyStart:l.bodyEnd])
	sd := b[l.sigStart:l.end]
	s := &q.Signature
	copy(s.QuoteSignature[:], sd[0:64])
	copy(s.AttestationKey[:], sd[64:128])
	qe := sd[sigDataFixed : sigDataFixed+QEReportSize]
	s.QEReport = dcap.DecodeReportBody(qe)
	copy(s.QEReportSignature[:], sd[sigDataFixed+QEReportSize:])
	s.QEAuthData = b[l.qeAuthStart:l.qeAuthEnd:l.qeAuthEnd]
	s.PCKCertChain = b[l.chainStart:l.end:l.end]
	return q
}

func decodeBody(d *Body, b []byte) {
	copy(d.TEETCBSVN[:], b[0:16])
	copy(d.MRSEAM[:], b[16:64])
	copy(d.MRSignerSEAM[:], b[64:112])
	copy(d.SEAMAttributes[:], b[112:120])
	copy(d.TDAttributes[:], b[120:128])
	copy(d.XFAM[:], b[128:136])
	copy(d.MRTD[:], b[136:184])
	copy(d.MRConfigID[:], b[184:232])
	copy(d.MROwner[:], b[232:280])
	copy(d.MROwnerConfig[:], b[280:328])
	for i := range d.RTMR {
		copy(d.RTMR[i][:], b[328+48*i:])
	}
	copy(d.ReportData[:], b[520:584])
	if len(b) == BodySize15 {
		copy(d.TEETCBSVN2[:], b[584:600])
		copy(d.MRServiceTD[:], b[600:648])
	}
}

// checkHeader checks the header fields of a framed quote b that are fixed
// for TDX: key type, TEE type, reserved bytes, Intel's QE vendor ID.
func checkHeader(b []byte) error {
	if t := binary.LittleEndian.Uint16(b[2:]); t != KeyTypeECDSAP256 {
		return malformed("attestation key type %d, only %d (ECDSA-256-with-P-256) is supported", t, KeyTypeECDSAP256)
	}
	if t := binary.LittleEndian.Uint32(b[4:]); t != TEETypeTDX {
		return malformed("TEE type %#x, want %#x (TDX)", t, TEETypeTDX)
	}
	if r := b[8:12]; !allZero(r) {
		return malformed("header reserved bytes 8..12 are %x, want zero", r)
	}
	if err := dcap.CheckQEVendorID([16]byte(b[12:28])); err != nil {
		return fmt.Errorf("tdx quote: %w", err)
	}
	return nil
}

// check applies the rules that hold for both versions to q, decoded from
// the framed quote b, and fills in the signed ranges.
func (q *Quote) check(b []byte, l layout) error {
	qe := b[l.sigStart+sigDataFixed : l.sigStart+sigDataFixed+QEReportSize]
	if err := dcap.CheckReportBody(qe); err != nil {
		return malformed("QE report: %v", err)
	}
	q.SignedByAttestationKey = b[:l.bodyEnd:l.bodyEnd]
	q.SignedByPCK = qe[:QEReportSize:QEReportSize]
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Marshal serialises q from its fields (the signed ranges, PCKChain and
// Padding are not consulted) in the layout of its Header.Version: 4 (body
// type TD10 only) or 5. For a quote from ParseQuote it returns the parsed
// bytes without their padding.
func (q *Quote) Marshal() ([]byte, error) {
	s := &q.Signature
	bodySize := BodySize10
	switch {
	case q.BodyType == BodyTypeTD15 && q.Header.Version == Version5:
		bodySize = BodySize15
	case q.BodyType == BodyTypeTD10 && (q.Header.Version == Version4 || q.Header.Version == Version5):
	default:
		return nil, fmt.Errorf("tdx: cannot marshal a version %d quote with body type %d", q.Header.Version, q.BodyType)
	}
	if len(s.QEAuthData) > 0xffff {
		return nil, errors.New("tdx: QE authentication data longer than 65535 bytes")
	}
	inner := uint64(len(s.PCKCertChain))
	outer := uint64(qeCertFixed+len(s.QEAuthData)) + inner
	sigLen := sigDataFixed + outer
	if sigLen > MaxQuoteSize {
		return nil, errors.New("tdx: quote longer than MaxQuoteSize")
	}
	b := make([]byte, HeaderSize, HeaderSize+6+bodySize+4+int(sigLen))
	h := &q.Header
	le := binary.LittleEndian
	le.PutUint16(b[0:], h.Version)
	le.PutUint16(b[2:], h.AttestationKeyType)
	le.PutUint32(b[4:], h.TEEType)
	copy(b[12:28], h.QEVendorID[:])
	copy(b[28:48], h.UserData[:])
	if h.Version == Version5 {
		b = le.AppendUint16(b, q.BodyType)
		b = le.AppendUint32(b, uint32(bodySize))
	}
	b = append(b, q.Body.bytes(bodySize)...)
	b = le.AppendUint32(b, uint32(sigLen))
	b = append(b, s.QuoteSignature[:]...)
	b = append(b, s.AttestationKey[:]...)
	b = le.AppendUint16(b, CertDataQEReport)
	b = le.AppendUint32(b, uint32(outer))
	b = s.QEReport.Append(b)
	b = append(b, s.QEReportSignature[:]...)
	b = le.AppendUint16(b, uint16(len(s.QEAuthData)))
	b = append(b, s.QEAuthData...)
	b = le.AppendUint16(b, CertDataPCKChain)
	b = le.AppendUint32(b, uint32(inner))
	b = append(b, s.PCKCertChain...)
	return b, nil
}

// bytes returns the body's size bytes (BodySize10 or BodySize15).
func (d *Body) bytes(size int) []byte {
	b := make([]byte, size)
	copy(b[0:16], d.TEETCBSVN[:])
	copy(b[16:64], d.MRSEAM[:])
	copy(b[64:112], d.MRSignerSEAM[:])
	copy(b[112:120], d.SEAMAttributes[:])
	copy(b[120:128], d.TDAttributes[:])
	copy(b[128:136], d.XFAM[:])
	copy(b[136:184], d.MRTD[:])
	copy(b[184:232], d.MRConfigID[:])
	copy(b[232:280], d.MROwner[:])
	copy(b[280:328], d.MROwnerConfig[:])
	for i := range d.RTMR {
		copy(b[328+48*i:], d.RTMR[i][:])
	}
	copy(b[520:584], d.ReportData[:])
	if size == BodySize15 {
		copy(b[584:600], d.TEETCBSVN2[:])
		copy(b[600:648], d.MRServiceTD[:])
	}
	return b
}
