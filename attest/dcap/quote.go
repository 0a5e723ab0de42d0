package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest"
)

// What the SGX and TDX quote verifiers share: the quoting enclave vendor,
// the PCK chain of a quote's certification data and its verification, and
// the two ECDSA signatures of a quote. The quotes themselves are parsed by
// attest/sgx and attest/tdx.

// IntelQEVendorID is the QE vendor ID of Intel's quoting enclaves
// (939A7233-F79C-4CA9-940A-0DB3957F0607), the only one SGX and TDX quotes
// are accepted from, as Intel's QVL accepts no other. The simulated quoting
// enclaves of attest/simtee report it too: they stand in for Intel's.
var IntelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// CheckQEVendorID refuses a quote header's QE vendor ID other than
// IntelQEVendorID with attest.ErrMalformed: Intel's QVL treats it as an
// unsupported quote format.
func CheckQEVendorID(id [16]byte) error {
	if id != IntelQEVendorID {
		return fmt.Errorf("%w: QE vendor ID %x is not Intel's (%x): only quotes of Intel's quoting enclave are supported", attest.ErrMalformed, id, IntelQEVendorID)
	}
	return nil
}

// Certification data types (QE certification data, "Certification Data
// Type") of SGX quotes and of the data a TDX quote's type-6 data wraps.
const (
	CertDataPPIDCleartext = 1 // PPID in clear, CPUSVN, PCESVN, PCE ID
	CertDataPPIDRSA2048   = 2 // PPID RSA-2048-OAEP encrypted, CPUSVN, PCESVN, PCE ID
	CertDataPPIDRSA3072   = 3 // PPID RSA-3072-OAEP encrypted, CPUSVN, PCESVN, PCE ID
	CertDataPCKChain      = 5 // PCK leaf, PCK CA, root CA as concatenated PEM
)

// PPIDCertDataSize returns the exact length of certification data of
// types 1–3: the (encrypted) PPID, then CPUSVN 16, PCESVN 2 and PCE ID 2.
func PPIDCertDataSize(certType uint16) (int, bool) {
	switch certType {
	case CertDataPPIDCleartext:
		return 16 + 20, true
	case CertDataPPIDRSA2048:
		return 256 + 20, true
	case CertDataPPIDRSA3072:
		return 384 + 20, true
	}
	return 0, false
}

// MaxPCKChainCerts bounds the certificates of a PCK chain, in a quote or
// supplied beside it.
const MaxPCKChainCerts = 8

// SplitPCKCertData returns the DER certificates of type-5 certification
// data: PEM CERTIFICATE blocks (at most MaxPCKChainCerts) separated and
// surrounded only by whitespace; a single NUL (the C string terminator
// Intel's quote provider appends) may end the data. Refusals wrap
// attest.ErrMalformed.
func SplitPCKCertData(data []byte) ([][]byte, error) {
	ders, err := splitPEM(bytes.TrimSuffix(data, []byte{0}), MaxPCKChainCerts)
	if err != nil {
		return nil, fmt.Errorf("%w: PCK certificate chain: %w", attest.ErrMalformed, err)
	}
	return ders, nil
}

// ParsePCKCertificates parses the DER certificates of a PCK chain (at most
// MaxPCKChainCerts). Refusals wrap attest.ErrMalformed.
func ParsePCKCertificates(ders [][]byte) ([]*x509.Certificate, error) {
	if len(ders) == 0 || len(ders) > MaxPCKChainCerts {
		return nil, fmt.Errorf("%w: PCK chain of %d certificates, want 1 to %d", attest.ErrMalformed, len(ders), MaxPCKChainCerts)
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		var err error
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: PCK chain certificate %d: %w", attest.ErrMalformed, i, err)
		}
	}
	return certs, nil
}

// CheckPPIDCertData checks that PPID certification data (types 1–3: PPID,
// CPUSVN, PCESVN, PCE ID) names the platform of a PCK certificate supplied
// beside the quote: the same PCE ID and, for a clear-text PPID, the same
// PPID. (The QE report signature by the PCK key is what binds them; this
// makes a mismatch say so.) Refusals wrap attest.ErrChain.
func CheckPPIDCertData(certType uint16, data []byte, ext *PCKExtensions) error {
	want, ok := PPIDCertDataSize(certType)
	if !ok || len(data) != want {
		return fmt.Errorf("%w: certification data of type %d and %d bytes is not PPID certification data", attest.ErrMalformed, certType, len(data))
	}
	n := len(data)
	if !bytes.Equal(data[n-2:], ext.PCEID[:]) {
		return fmt.Errorf("%w: the supplied PCK certificate is for PCE-ID %x, the quote's certification data says %x", attest.ErrChain, ext.PCEID, data[n-2:])
	}
	if certType == CertDataPPIDCleartext && !bytes.Equal(data[:16], ext.PPID[:]) {
		return fmt.Errorf("%w: the supplied PCK certificate is for PPID %x, the quote's certification data says %x: it is another platform's", attest.ErrChain, ext.PPID, data[:16])
	}
	return nil
}

// pckCertCN is what the subject common name of a PCK certificate contains
// ("Intel SGX PCK Certificate"; the simulated "trustbound SIMULATED SGX
// PCK Certificate"), as Intel's QVL requires.
const pckCertCN = "SGX PCK Certificate"

// PCKChain is a PCK certificate chain verified to a trusted (or simulated)
// root. It depends on the certificates and the roots only, never on a
// quote or the time, so verifiers cache it and check ValidAt on every use.
type PCKChain struct {
	// Chain is PCK certificate, PCK CA and root, as verified (the root
	// from the trusted pool, never the quote's copy).
	Chain []*x509.Certificate
	// Key is the PCK certificate's P-256 key.
	Key *ecdsa.PublicKey
	// Ext is the PCK certificate's SGX extension.
	Ext *PCKExtensions
	// CA is the PCK CA that issued it.
	CA CA
	// Simulated is true when the chain leads only to a simulated root.
	Simulated bool
	// NotBefore and NotAfter bound the time at which every certificate of
	// the chain is valid (inclusive, as x509.Certificate.Verify).
	NotBefore, NotAfter time.Time
}

// ValidAt reports whether every certificate of the chain is valid at t.
func (p *PCKChain) ValidAt(t time.Time) bool {
	return !t.Before(p.NotBefore) && !t.After(p.NotAfter)
}

// VerifyPCKChain verifies a PCK chain (PCK certificate first, then its CA;
// a root may follow) at now, first to roots, then to simulated (nil: none),
// as Intel's QVL does: exactly PCK certificate, PCK CA and root; a
// self-signed last certificate is never trusted but must carry the key of
// the root reached; the PCK certificate is named an SGX PCK Certificate,
// has a P-256 key and an SGX extension, and its issuer is a PCK Processor
// or Platform CA. roots must not be nil (x509 would use the system's).
// Refusals wrap attest.ErrChain (attest.ErrMalformed for certificates that
// do not parse); whether a simulated chain is acceptable is the caller's
// decision.
func VerifyPCKChain(certs []*x509.Certificate, roots, simulated *x509.CertPool, now time.Time) (*PCKChain, error) {
	if len(certs) == 0 || roots == nil {
		return nil, fmt.Errorf("%w: no PCK certificate, or no trusted roots", attest.ErrChain)
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	var presented *x509.Certificate
	for i, c := range certs[1:] {
		if i == len(certs)-2 && selfSigned(c) {
			presented = c
			continue
		}
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Intermediates: inter,
		Roots:         roots,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	p := &PCKChain{}
	chains, err := leaf.Verify(opts)
	if err != nil && simulated != nil {
		opts.Roots = simulated
		var serr error
		if chains, serr = leaf.Verify(opts); serr == nil {
			err, p.Simulated = nil, true
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: PCK certificate %q (issuer %q) does not chain to a trusted Intel SGX root at %s: %w",
			attest.ErrChain, leaf.Subject.CommonName, leaf.Issuer.CommonName, now.UTC().Format(time.RFC3339), err)
	}
	for _, ch := range chains {
		r := ch[len(ch)-1]
		if len(ch) == 3 && (presented == nil || bytes.Equal(r.RawSubjectPublicKeyInfo, presented.RawSubjectPublicKeyInfo)) {
			p.Chain = ch
			break
		}
	}
	if p.Chain == nil {
		if presented == nil && len(chains) > 0 && len(chains[0]) == 1 {
			return nil, fmt.Errorf("%w: PCK certificate %q is itself a trusted root", attest.ErrChain, leaf.Subject.CommonName)
		}
		return nil, fmt.Errorf("%w: the PCK chain is not PCK certificate, PCK CA and root, or the quote's root certificate %q does not carry the key of the trusted root",
			attest.ErrChain, certs[len(certs)-1].Subject.CommonName)
	}
	if !strings.Contains(leaf.Subject.CommonName, pckCertCN) {
		return nil, fmt.Errorf("%w: PCK certificate subject %q does not name an %s", attest.ErrChain, leaf.Subject.CommonName, pckCertCN)
	}
	var ok bool
	if p.Key, ok = leaf.PublicKey.(*ecdsa.PublicKey); !ok || p.Key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: PCK certificate key is not ECDSA P-256", attest.ErrChain)
	}
	if p.Ext, err = ParsePCKExtensions(leaf); err != nil {
		return nil, fmt.Errorf("%w: %w", attest.ErrChain, err)
	}
	if p.CA, err = PCKCAOf(leaf); err != nil {
		return nil, err
	}
	p.NotBefore, p.NotAfter = leaf.NotBefore, leaf.NotAfter
	for _, c := range p.Chain[1:] {
		if c.NotBefore.After(p.NotBefore) {
			p.NotBefore = c.NotBefore
		}
		if c.NotAfter.Before(p.NotAfter) {
			p.NotAfter = c.NotAfter
		}
	}
	return p, nil
}

// QuoteSignatures are the signed ranges and signatures of an ECDSA-256
// quote, SGX or TDX, as they appeared in the input.
type QuoteSignatures struct {
	// QEReport is the 384-byte QE report body, which QEReportSignature
	// (r||s, big-endian) by the PCK key covers.
	QEReport          []byte
	QEReportSignature [64]byte
	// AttestationKey (x||y) and QEAuthData are what the QE report data
	// binds: SHA-256(AttestationKey || QEAuthData) || 0^32.
	AttestationKey [64]byte
	QEAuthData     []byte
	// SignedByAttestationKey is the range QuoteSignature (r||s) by the
	// attestation key covers.
	SignedByAttestationKey []byte
	QuoteSignature         [64]byte
}

// qeReportDataOffset is REPORTDATA's offset in an SGX report body.
const qeReportDataOffset = 320

// VerifyQuoteSignatures checks, in Intel's order, the QE report signature
// by the PCK key, the QE report data's binding of the attestation key and
// the quote signature by the attestation key. Refusals wrap
// attest.ErrSignature.
func VerifyQuoteSignatures(pck *ecdsa.PublicKey, s *QuoteSignatures) error {
	if pck == nil || len(s.QEReport) != qeReportDataOffset+64 {
		return fmt.Errorf("%w: no PCK key, or a QE report of %d bytes", attest.ErrSignature, len(s.QEReport))
	}
	if !verifyRSKey(pck, s.QEReport, &s.QEReportSignature) {
		return fmt.Errorf("%w: QE report signature does not verify with the PCK certificate key", attest.ErrSignature)
	}
	bind := sha256.New()
	bind.Write(s.AttestationKey[:])
	bind.Write(s.QEAuthData)
	var want [64]byte
	bind.Sum(want[:0])
	if subtle.ConstantTimeCompare(want[:], s.QEReport[qeReportDataOffset:]) != 1 {
		return fmt.Errorf("%w: QE report data is not SHA-256(attestation key || QE authentication data) followed by 32 zero bytes: the attestation key is not the quoting enclave's", attest.ErrSignature)
	}
	attKey, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, s.AttestationKey[:]...))
	if err != nil {
		return fmt.Errorf("%w: attestation key: %w", attest.ErrSignature, err)
	}
	if !verifyRSKey(attKey, s.SignedByAttestationKey, &s.QuoteSignature) {
		return fmt.Errorf("%w: quote signature does not verify with the attestation key", attest.ErrSignature)
	}
	return nil
}

// verifyRSKey checks an r||s (big-endian) ECDSA signature over
// SHA-256(msg): the one such check of the SGX and TDX verifiers and of
// collateral signatures (verifyRS).
func verifyRSKey(pub *ecdsa.PublicKey, msg []byte, sig *[64]byte) bool {
	h := sha256.Sum256(msg)
	return ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}
