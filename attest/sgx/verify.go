package sgx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest"
)

// Config configures a Verifier.
type Config struct {
	// Roots are the trusted roots of PCK certificate chains. nil means the
	// embedded Intel SGX Root CA; an empty non-nil slice trusts no real root.
	Roots []*x509.Certificate
	// Simulated are simulated roots (attest/simtee), accepted only with
	// Options.AllowSimulated; claims from them are marked Simulated.
	Simulated []*x509.Certificate
}

// Verifier verifies SGX DCAP quotes v3 (attest.FormatSGXQuoteV3): the PCK
// chain in the quote to a trusted root, the QE report signature by the PCK
// key, the QE report's binding of the attestation key, and the quote
// signature by the attestation key. It does not evaluate TCB status or the
// QE identity against Intel collateral (Claims.TCB.Evaluated is false).
type Verifier struct {
	roots     *x509.CertPool // never nil: a nil pool makes x509 use the system roots
	simulated *x509.CertPool // nil when no simulated root is configured
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier with the roots of cfg.
func NewVerifier(cfg Config) *Verifier {
	roots := cfg.Roots
	if roots == nil {
		roots = []*x509.Certificate{IntelSGXRoot()}
	}
	v := &Verifier{roots: x509.NewCertPool()}
	for _, c := range roots {
		v.roots.AddCert(c)
	}
	if len(cfg.Simulated) > 0 {
		v.simulated = x509.NewCertPool()
		for _, c := range cfg.Simulated {
			v.simulated.AddCert(c)
		}
	}
	return v
}

// Format returns attest.FormatSGXQuoteV3.
func (v *Verifier) Format() attest.Format { return attest.FormatSGXQuoteV3 }

// Verify checks ev.Data, an SGX DCAP quote v3 carrying its PCK certificate
// chain (certification data type 5), at opts.Now. Evidence.Certs is not
// used. Refusals wrap attest.ErrMalformed, ErrChain, ErrSimulated or
// ErrSignature.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ev == nil {
		return nil, fmt.Errorf("%w: no evidence", attest.ErrMalformed)
	}
	if ev.Format != attest.FormatSGXQuoteV3 {
		return nil, fmt.Errorf("%w: the SGX verifier reads %q, not %q", attest.ErrUnknownFormat, attest.FormatSGXQuoteV3, ev.Format)
	}
	if opts.Now.IsZero() {
		return nil, errors.New("sgx: verification time (Options.Now) not set")
	}
	q, err := ParseQuote(ev.Data)
	if err != nil {
		return nil, err
	}
	if t := q.Signature.CertDataType; t != CertDataPCKChain {
		// TODO: accept the PCK certificate in Evidence.Certs[0] for PPID
		// types 1–3 (fetched by the attester from a PCCS).
		return nil, fmt.Errorf("%w: sgx quote carries certification data type %d (PPID, no PCK certificate); "+
			"only type 5 (PCK certificate chain) is supported: configure the quote provider library (DCAP QPL/PCCS) so that the quoting enclave embeds the chain",
			attest.ErrMalformed, t)
	}
	certs := make([]*x509.Certificate, len(q.PCKChain))
	for i, der := range q.PCKChain {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: sgx quote: PCK chain certificate %d: %w", attest.ErrMalformed, i, err)
		}
	}

	root, simulated, err := v.verifyChain(certs, opts.Now)
	if err != nil {
		return nil, err
	}
	if simulated && !opts.AllowSimulated {
		return nil, fmt.Errorf("%w: the PCK chain leads to %q", attest.ErrSimulated, root.Subject.CommonName)
	}
	pck := certs[0]
	ext, err := ParsePCKExtensions(pck)
	if err != nil {
		return nil, fmt.Errorf("%w: sgx: %w", attest.ErrChain, err)
	}
	pckKey, ok := pck.PublicKey.(*ecdsa.PublicKey)
	if !ok || pckKey.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: sgx: PCK certificate key is not ECDSA P-256", attest.ErrChain)
	}

	s := &q.Signature
	if !verifyRS(pckKey, q.SignedByPCK, s.QEReportSignature) {
		return nil, fmt.Errorf("%w: sgx: QE report signature does not verify with the PCK certificate key", attest.ErrSignature)
	}
	bind := sha256.New()
	bind.Write(s.AttestationKey[:])
	bind.Write(s.QEAuthData)
	var want [64]byte
	copy(want[:], bind.Sum(nil))
	if subtle.ConstantTimeCompare(want[:], s.QEReport.ReportData[:]) != 1 {
		return nil, fmt.Errorf("%w: sgx: QE report data is not SHA-256(attestation key || QE authentication data) followed by 32 zero bytes: the attestation key is not the quoting enclave's", attest.ErrSignature)
	}
	attKey, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, s.AttestationKey[:]...))
	if err != nil {
		return nil, fmt.Errorf("%w: sgx: attestation key: %w", attest.ErrSignature, err)
	}
	if !verifyRS(attKey, q.SignedByAttestationKey, s.ISVSignature) {
		return nil, fmt.Errorf("%w: sgx: quote signature does not verify with the attestation key", attest.ErrSignature)
	}
	return claims(q, ext, pck, simulated), nil
}

// verifyChain verifies the PCK chain at now to the configured roots, then
// to the simulated ones. A self-signed last certificate in the quote is
// never trusted: it must carry the public key of the root reached.
func (v *Verifier) verifyChain(certs []*x509.Certificate, now time.Time) (root *x509.Certificate, simulated bool, err error) {
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
		Roots:         v.roots,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	chains, err := leaf.Verify(opts)
	if err != nil && v.simulated != nil {
		opts.Roots = v.simulated
		var serr error
		if chains, serr = leaf.Verify(opts); serr == nil {
			err, simulated = nil, true
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: sgx: PCK certificate %q (issuer %q) does not chain to a trusted SGX root at %s: %w",
			attest.ErrChain, leaf.Subject.CommonName, leaf.Issuer.CommonName, now.UTC().Format(time.RFC3339), err)
	}
	for _, ch := range chains {
		r := ch[len(ch)-1]
		if presented == nil || bytes.Equal(r.RawSubjectPublicKeyInfo, presented.RawSubjectPublicKeyInfo) {
			return r, simulated, nil
		}
	}
	return nil, false, fmt.Errorf("%w: sgx: the quote's root certificate %q does not carry the key of the trusted root its chain verifies to",
		attest.ErrChain, presented.Subject.CommonName)
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// verifyRS checks an r||s (big-endian) ECDSA signature over SHA-256(msg).
func verifyRS(pub *ecdsa.PublicKey, msg []byte, sig [64]byte) bool {
	h := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

func claims(q *Quote, ext *PCKExtensions, pck *x509.Certificate, simulated bool) *attest.Claims {
	b := &q.Body
	qe := &q.Signature.QEReport
	attrs := b.Attributes.Bytes()
	c := &attest.Claims{
		TEE:         attest.SGX,
		Format:      attest.FormatSGXQuoteV3,
		Simulated:   simulated,
		Measurement: bytes.Clone(b.MREnclave[:]),
		Signer:      bytes.Clone(b.MRSigner[:]),
		ProductID:   b.ISVProdID,
		SVN:         uint32(b.ISVSVN),
		Debug:       b.Attributes.Debug(),
		ReportData:  bytes.Clone(b.ReportData[:]),
		TCB: attest.TCB{
			Evaluated:  false,
			Components: make(map[string]uint64, 18),
		},
		Platform: map[string]string{
			"attributes":      hex.EncodeToString(attrs[:]),
			"miscselect":      fmt.Sprintf("%08x", b.MiscSelect),
			"cpusvn":          hex.EncodeToString(b.CPUSVN[:]),
			"config_svn":      strconv.Itoa(int(b.ConfigSVN)),
			"isv_family_id":   hex.EncodeToString(b.ISVFamilyID[:]),
			"isv_ext_prod_id": hex.EncodeToString(b.ISVExtProdID[:]),
			"qe_svn":          strconv.Itoa(int(q.Header.QESVN)),
			"pce_svn":         strconv.Itoa(int(q.Header.PCESVN)),
			"qe_vendor_id":    hex.EncodeToString(q.Header.QEVendorID[:]),
			"qe_mrenclave":    hex.EncodeToString(qe.MREnclave[:]),
			"qe_mrsigner":     hex.EncodeToString(qe.MRSigner[:]),
			"qe_isv_prod_id":  strconv.Itoa(int(qe.ISVProdID)),
			"qe_isv_svn":      strconv.Itoa(int(qe.ISVSVN)),
			"fmspc":           hex.EncodeToString(ext.FMSPC[:]),
			"pce_id":          hex.EncodeToString(ext.PCEID[:]),
			"sgx_type":        strconv.Itoa(ext.SGXType),
		},
	}
	if b.ConfigID != ([64]byte{}) {
		c.HostData = bytes.Clone(b.ConfigID[:])
	}
	// The PCK certificate's TCB is what Intel's TCB evaluation matches
	// against TCB info; QE SVN is matched against the QE identity.
	for i, svn := range ext.TCB.CompSVN {
		c.TCB.Components[fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)] = uint64(svn)
	}
	c.TCB.Components["pcesvn"] = uint64(ext.TCB.PCESVN)
	c.TCB.Components["qesvn"] = uint64(qe.ISVSVN)
	switch cn := strings.ToLower(pck.Issuer.CommonName); {
	case strings.Contains(cn, "processor"):
		c.Platform["pck_ca"] = "processor"
	case strings.Contains(cn, "platform"):
		c.Platform["pck_ca"] = "platform"
	}
	if ext.PlatformInstanceID != nil {
		c.Platform["platform_instance_id"] = hex.EncodeToString(ext.PlatformInstanceID)
	}
	return c
}
