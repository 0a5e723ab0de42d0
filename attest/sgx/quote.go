// Package sgx parses Intel SGX DCAP quotes v3 strictly and verifies them
// into attest.Claims: PCK chain and signatures, then, with Intel's
// collateral (attest/dcap), revocation, the QE identity and the TCB status.
package sgx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

// Sizes and values fixed by the Intel SGX ECDSA Quote Library API, quote
// format version 3. All integers in a quote are little-endian.
const (
	HeaderSize     = 48
	ReportBodySize = dcap.ReportBodySize // 384
	// SignedSize is the length of header || ISV enclave report body, the
	// bytes the attestation key signs.
	SignedSize = HeaderSize + ReportBodySize // 432
	// signature data: ISV signature, attestation key, QE report body, QE
	// report signature, QE auth data size, certification data type and size.
	sigDataFixed = 64 + 64 + ReportBodySize + 64 + 2 + 2 + 4

	// QuoteVersion is the only quote version this package reads.
	QuoteVersion = 3
	// KeyTypeECDSAP256 is attestation key type 2, ECDSA-256-with-P-256.
	KeyTypeECDSAP256 = 2
	// TEETypeSGX is the header's TEE type (reserved in early texts) for SGX.
	TEETypeSGX = 0

	// MaxQuoteSize bounds the input. Real quotes with a PCK chain are
	// about 4.7 KB; the signature data length field alone would allow 4 GB.
	MaxQuoteSize = 64 << 10
)

// Certification data types (QE certification data, "Certification Data Type").
// (dcap.CertData*, shared with TDX quotes).
const (
	CertDataPPIDCleartext = dcap.CertDataPPIDCleartext // PPID in clear, CPUSVN, PCESVN, PCE ID
	CertDataPPIDRSA2048   = dcap.CertDataPPIDRSA2048   // PPID RSA-2048-OAEP encrypted, CPUSVN, PCESVN, PCE ID
	CertDataPPIDRSA3072   = dcap.CertDataPPIDRSA3072   // PPID RSA-3072-OAEP encrypted, CPUSVN, PCESVN, PCE ID
	CertDataPCKChain      = dcap.CertDataPCKChain      // PCK leaf, intermediate CA, root CA as concatenated PEM
)

// Header is the 48-byte quote header.
type Header struct {
	Version            uint16   // @0, 3
	AttestationKeyType uint16   // @2, 2 = ECDSA-256-with-P-256
	TEEType            uint32   // @4, 0 = SGX
	QESVN              uint16   // @8
	PCESVN             uint16   // @10
	QEVendorID         [16]byte // @12
	UserData           [20]byte // @28
}

// The SGX report body is shared with the TDX quote's QE report and lives
// in attest/dcap; these names keep this package's API.
type (
	// Attributes is dcap.Attributes, the SGX ATTRIBUTES field.
	Attributes = dcap.Attributes
	// ReportBody is dcap.ReportBody, the SGX report body
	// (sgx_report_body_t), used for the ISV enclave and for the quoting
	// enclave.
	ReportBody = dcap.ReportBody
)

// SGX ATTRIBUTES.FLAGS bits (dcap.Flag*).
const (
	FlagInit         = dcap.FlagInit
	FlagDebug        = dcap.FlagDebug
	FlagMode64Bit    = dcap.FlagMode64Bit
	FlagProvisionKey = dcap.FlagProvisionKey
	FlagEInitToken   = dcap.FlagEInitToken
	FlagKSS          = dcap.FlagKSS
)

// SignatureData is the ECDSA-256 quote signature data that follows the
// signature data length.
type SignatureData struct {
	// ISVSignature is r||s (big-endian) by the attestation key over
	// header || ISV report body.
	ISVSignature [64]byte
	// AttestationKey is the raw P-256 public key x||y (big-endian).
	AttestationKey [64]byte
	// QEReport is the quoting enclave's report body, signed by the PCK key.
	QEReport ReportBody
	// QEReportSignature is r||s by the PCK key over the QE report body.
	QEReportSignature [64]byte
	// QEAuthData is hashed with the attestation key into QE report data.
	QEAuthData []byte
	// CertDataType is one of the CertData* constants.
	CertDataType uint16
	// CertData is the certification data exactly as carried.
	CertData []byte
}

// Quote is a parsed SGX DCAP quote v3.
type Quote struct {
	Header    Header
	Body      ReportBody
	Signature SignatureData
	// PCKChain holds the DER certificates of a type-5 certification data,
	// in order (PCK leaf first); nil for other types.
	PCKChain [][]byte
	// SignedByAttestationKey is header || ISV report body (432 bytes), the
	// range ISVSignature covers, as it appeared in the input.
	SignedByAttestationKey []byte
	// SignedByPCK is the 384-byte QE report body, the range
	// QEReportSignature covers, as it appeared in the input.
	SignedByPCK []byte
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: sgx quote: %s", attest.ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseQuote reads b as an SGX DCAP quote v3 with ECDSA-256 signature data.
// It is strict: exact lengths, no trailing bytes, at most MaxQuoteSize
// bytes, zero reserved fields, version 3, key type 2, TEE type SGX and
// Intel's QE vendor ID (dcap.IntelQEVendorID) only; certification data must
// be of type 1–3 (exact size) or 5 (a PEM certificate chain). Every refusal
// wraps attest.ErrMalformed. The Quote does not alias b.
func ParseQuote(b []byte) (*Quote, error) {
	if len(b) > MaxQuoteSize {
		return nil, malformed("%d bytes, more than the %d allowed", len(b), MaxQuoteSize)
	}
	if len(b) < SignedSize+4+sigDataFixed {
		return nil, malformed("%d bytes, shorter than the minimum %d", len(b), SignedSize+4+sigDataFixed)
	}
	b = bytes.Clone(b)
	q := &Quote{
		SignedByAttestationKey: b[:SignedSize:SignedSize],
	}
	var err error
	if q.Header, err = parseHeader(b[:HeaderSize]); err != nil {
		return nil, err
	}
	if q.Body, err = parseReportBody(b[HeaderSize:SignedSize], "ISV enclave report"); err != nil {
		return nil, err
	}
	sigLen := binary.LittleEndian.Uint32(b[SignedSize:])
	sd := b[SignedSize+4:]
	if uint64(sigLen) != uint64(len(sd)) {
		return nil, malformed("signature data length field is %d but %d bytes follow", sigLen, len(sd))
	}
	s := &q.Signature
	copy(s.ISVSignature[:], sd[0:64])
	copy(s.AttestationKey[:], sd[64:128])
	q.SignedByPCK = sd[128 : 128+ReportBodySize : 128+ReportBodySize]
	if s.QEReport, err = parseReportBody(q.SignedByPCK, "QE report"); err != nil {
		return nil, err
	}
	copy(s.QEReportSignature[:], sd[512:576])
	rest := sd[576:]
	authLen := int(binary.LittleEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < authLen+6 {
		return nil, malformed("QE authentication data of %d bytes overruns the signature data", authLen)
	}
	s.QEAuthData = rest[:authLen:authLen]
	rest = rest[authLen:]
	s.CertDataType = binary.LittleEndian.Uint16(rest)
	certLen := binary.LittleEndian.Uint32(rest[2:])
	rest = rest[6:]
	if uint64(certLen) != uint64(len(rest)) {
		return nil, malformed("certification data size field is %d but %d bytes remain", certLen, len(rest))
	}
	s.CertData = rest
	switch s.CertDataType {
	case CertDataPPIDCleartext, CertDataPPIDRSA2048, CertDataPPIDRSA3072:
		if want, _ := dcap.PPIDCertDataSize(s.CertDataType); len(rest) != want {
			return nil, malformed("certification data type %d is %d bytes, want %d", s.CertDataType, len(rest), want)
		}
	case CertDataPCKChain:
		if q.PCKChain, err = dcap.SplitPCKCertData(rest); err != nil {
			return nil, fmt.Errorf("sgx quote: %w", err)
		}
	default:
		return nil, malformed("certification data type %d is not supported (want 5, a PCK certificate chain)", s.CertDataType)
	}
	return q, nil
}

func parseHeader(b []byte) (Header, error) {
	h := Header{
		Version:            binary.LittleEndian.Uint16(b[0:]),
		AttestationKeyType: binary.LittleEndian.Uint16(b[2:]),
		TEEType:            binary.LittleEndian.Uint32(b[4:]),
		QESVN:              binary.LittleEndian.Uint16(b[8:]),
		PCESVN:             binary.LittleEndian.Uint16(b[10:]),
	}
	copy(h.QEVendorID[:], b[12:28])
	copy(h.UserData[:], b[28:48])
	if h.Version != QuoteVersion {
		return h, malformed("version %d, only version %d is supported", h.Version, QuoteVersion)
	}
	if h.AttestationKeyType != KeyTypeECDSAP256 {
		return h, malformed("attestation key type %d, only %d (ECDSA-256-with-P-256) is supported", h.AttestationKeyType, KeyTypeECDSAP256)
	}
	if h.TEEType != TEETypeSGX {
		return h, malformed("TEE type %#x, want %#x (SGX)", h.TEEType, TEETypeSGX)
	}
	if err := dcap.CheckQEVendorID(h.QEVendorID); err != nil {
		return h, fmt.Errorf("sgx quote: %w", err)
	}
	return h, nil
}

func parseReportBody(b []byte, what string) (ReportBody, error) {
	if err := dcap.CheckReportBody(b); err != nil {
		return ReportBody{}, malformed("%s: %v", what, err)
	}
	return dcap.DecodeReportBody(b), nil
}

// Marshal serialises q in the quote v3 layout, from its fields (the signed
// ranges and PCKChain are not consulted). For a quote from ParseQuote it
// returns the parsed bytes exactly.
func (q *Quote) Marshal() ([]byte, error) {
	s := &q.Signature
	if len(s.QEAuthData) > 0xffff {
		return nil, errors.New("sgx: QE authentication data longer than 65535 bytes")
	}
	sigLen := uint64(sigDataFixed + len(s.QEAuthData) + len(s.CertData))
	if sigLen > 0xffffffff {
		return nil, errors.New("sgx: signature data longer than 2^32-1 bytes")
	}
	b := make([]byte, HeaderSize, SignedSize+4+int(sigLen))
	h := &q.Header
	binary.LittleEndian.PutUint16(b[0:], h.Version)
	binary.LittleEndian.PutUint16(b[2:], h.AttestationKeyType)
	binary.LittleEndian.PutUint32(b[4:], h.TEEType)
	binary.LittleEndian.PutUint16(b[8:], h.QESVN)
	binary.LittleEndian.PutUint16(b[10:], h.PCESVN)
	copy(b[12:28], h.QEVendorID[:])
	copy(b[28:48], h.UserData[:])
	b = q.Body.Append(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(sigLen))
	b = append(b, s.ISVSignature[:]...)
	b = append(b, s.AttestationKey[:]...)
	b = s.QEReport.Append(b)
	b = append(b, s.QEReportSignature[:]...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s.QEAuthData)))
	b = append(b, s.QEAuthData...)
	b = binary.LittleEndian.AppendUint16(b, s.CertDataType)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.CertData)))
	b = append(b, s.CertData...)
	return b, nil
}
