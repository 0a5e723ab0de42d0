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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

// Config configures a Verifier.
type Config struct {
	// Roots are the trusted roots of PCK certificate chains. nil means the
	// embedded Intel SGX Root CA; an empty non-nil slice trusts no real root.
	Roots []*x509.Certificate
	// Simulated are simulated roots (attest/simtee), accepted only with
	// Options.AllowSimulated; claims from them are marked Simulated.
	Simulated []*x509.Certificate
	// Collateral serves Intel's collateral (TCB info, QE identity, CRLs)
	// for quotes that chain to Roots. nil means none: such quotes are then
	// verified only with Options.SkipCollateral (signatures and chain, TCB
	// not evaluated, revocation not checked) and refused otherwise.
	Collateral dcap.Source
	// SimulatedCollateral serves the simulated collateral for quotes that
	// chain to a Simulated root (simtee.SGXCollateralSource), signed by the
	// simulated Intel root: real collateral never vouches for a simulated
	// platform, nor simulated collateral for a real one. nil: simulated
	// quotes, too, need Options.SkipCollateral.
	SimulatedCollateral dcap.Source
}

// Verifier verifies SGX DCAP quotes v3 (attest.FormatSGXQuoteV3): the PCK
// chain (in the quote, or in Evidence.Certs for PPID certification data)
// to a trusted root, the QE report signature by the PCK key, the QE
// report's binding of the attestation key and the quote signature by the
// attestation key; then, unless Options.SkipCollateral, Intel's collateral
// for the platform (attest/dcap): the PCK chain not revoked, the quoting
// enclave Intel's, and the platform's TCB status and advisories.
type Verifier struct {
	roots         *x509.CertPool // never nil: a nil pool makes x509 use the system roots
	simulated     *x509.CertPool // nil when no simulated root is configured
	collateral    dcap.Source
	simCollateral dcap.Source
	eval          dcap.Evaluator // caches verified collateral
	chains        chainCache     // caches verified PCK chains
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier with the roots and collateral of cfg.
func NewVerifier(cfg Config) *Verifier {
	roots := cfg.Roots
	if roots == nil {
		roots = []*x509.Certificate{IntelSGXRoot()}
	}
	v := &Verifier{roots: x509.NewCertPool(), collateral: cfg.Collateral, simCollateral: cfg.SimulatedCollateral}
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

// Verify checks ev.Data, an SGX DCAP quote v3, at opts.Now. Its PCK chain
// is the quote's certification data (type 5); for PPID certification data
// (types 1–3) it is Evidence.Certs (DER, PCK certificate first, then its
// CA; the root may follow), which is otherwise ignored. Refusals wrap
// attest.ErrMalformed, ErrChain, ErrSimulated or ErrSignature, and
// dcap.ErrCollateral or dcap.ErrNoMatchingTCBLevel when the collateral is
// missing, stale, not Intel's, or does not place the platform.
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
	vc, err := v.verifiedChain(q, ev.Certs, opts.Now)
	if err != nil {
		return nil, err
	}
	chain, simulated, ext := vc.chain, vc.simulated, vc.ext
	if simulated && !opts.AllowSimulated {
		return nil, fmt.Errorf("%w: the PCK chain leads to %q", attest.ErrSimulated, chain[len(chain)-1].Subject.CommonName)
	}
	pck := chain[0]
	if err := certDataMatches(q, ext); err != nil {
		return nil, err
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
	c := claims(q, ext, pck, simulated)
	if opts.SkipCollateral {
		return c, nil
	}
	if err := v.evaluate(ctx, c, q, ext, chain, simulated, opts.Now); err != nil {
		return nil, err
	}
	return c, nil
}

// evaluate gets the platform's collateral and records its TCB verdict in c.
func (v *Verifier) evaluate(ctx context.Context, c *attest.Claims, q *Quote, ext *PCKExtensions, chain []*x509.Certificate, simulated bool, now time.Time) error {
	src, which := v.collateral, "Config.Collateral"
	if simulated {
		src, which = v.simCollateral, "Config.SimulatedCollateral"
	}
	if src == nil {
		return fmt.Errorf("%w: sgx: no collateral source configured (%s) to evaluate the TCB of FMSPC %x: configure one (trustbound verify --collateral), or verify signatures and chain only (--no-collateral)",
			dcap.ErrCollateral, which, ext.FMSPC)
	}
	ca, err := dcap.PCKCAOf(chain[0])
	if err != nil {
		return err
	}
	col, err := src.Collateral(ctx, dcap.SGX, ext.FMSPC, ca)
	if err != nil {
		if errors.Is(err, dcap.ErrCollateral) {
			return fmt.Errorf("sgx: collateral for FMSPC %x: %w", ext.FMSPC, err)
		}
		return fmt.Errorf("%w: sgx: collateral for FMSPC %x: %w", dcap.ErrCollateral, ext.FMSPC, err)
	}
	qe := &q.Signature.QEReport
	res, err := v.eval.Evaluate(&dcap.Input{
		Kind: dcap.SGX, Collateral: col, Now: now, PCKChain: chain,
		QE: dcap.QEReport{MRSigner: qe.MRSigner, ISVProdID: qe.ISVProdID, ISVSVN: qe.ISVSVN,
			MiscSelect: qe.MiscSelect, Attributes: qe.Attributes.Bytes()},
	})
	if err != nil {
		return fmt.Errorf("sgx: %w", err)
	}
	c.TCB.Evaluated = true
	c.TCB.Status = string(res.Status)
	c.TCB.Advisories = slices.Clone(res.Advisories)
	c.RevocationChecked = res.RevocationChecked
	c.Platform["platform_tcb_status"] = string(res.PlatformStatus)
	c.Platform["qe_tcb_status"] = string(res.QEStatus)
	c.Platform["tcb_date"] = res.TCBLevel.TCBDate.UTC().Format(time.RFC3339)
	c.Platform["tcb_evaluation_data_number"] = strconv.FormatUint(uint64(res.TCBInfo.TCBEvaluationDataNumber), 10)
	return nil
}

// verifiedChain returns q's PCK chain verified at now, with its SGX
// extension, from the cache when the same chain was verified before and
// all its certificates are valid at now.
func (v *Verifier) verifiedChain(q *Quote, supplied [][]byte, now time.Time) (*pckChainEntry, error) {
	ders := q.PCKChain
	if q.Signature.CertDataType != CertDataPCKChain {
		ders = supplied
	}
	key := chainKey(ders)
	if e := v.chains.get(key); e != nil && !now.Before(e.notBefore) && !now.After(e.notAfter) {
		return e, nil
	}
	certs, err := pckChain(q, supplied)
	if err != nil {
		return nil, err
	}
	chain, simulated, err := v.verifyChain(certs, now)
	if err != nil {
		return nil, err
	}
	ext, err := ParsePCKExtensions(chain[0])
	if err != nil {
		return nil, fmt.Errorf("%w: sgx: %w", attest.ErrChain, err)
	}
	e := &pckChainEntry{chain: chain, simulated: simulated, ext: ext, notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, c := range chain[1:] {
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	v.chains.put(key, e)
	return e, nil
}

// pckChain returns the DER PCK chain of q: its own for certification data
// type 5, else the one supplied beside it.
func pckChain(q *Quote, supplied [][]byte) ([]*x509.Certificate, error) {
	ders := q.PCKChain
	if q.Signature.CertDataType != CertDataPCKChain {
		if len(supplied) == 0 {
			return nil, fmt.Errorf("%w: sgx quote carries certification data type %d (PPID, no PCK certificate) and the evidence supplies no PCK certificate: "+
				"put the platform's PCK certificate and its CA (from a PCCS or Intel PCS) in Evidence.Certs, or configure the quote provider library (DCAP QPL/PCCS) so that the quoting enclave embeds the chain (type 5)",
				attest.ErrChain, q.Signature.CertDataType)
		}
		if len(supplied) > maxChainCerts {
			return nil, fmt.Errorf("%w: sgx: %d certificates supplied, at most %d", attest.ErrMalformed, len(supplied), maxChainCerts)
		}
		ders = supplied
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		var err error
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: sgx quote: PCK chain certificate %d: %w", attest.ErrMalformed, i, err)
		}
	}
	return certs, nil
}

// certDataMatches checks that PPID certification data (types 1–3: PPID,
// CPUSVN, PCESVN, PCE ID) names the platform of the supplied PCK
// certificate: the same PCE ID and, for a clear-text PPID, the same PPID.
// (The QE report signature by the PCK key is what binds them; this makes a
// mismatch say so.)
func certDataMatches(q *Quote, ext *PCKExtensions) error {
	t, d := q.Signature.CertDataType, q.Signature.CertData
	if t == CertDataPCKChain {
		return nil
	}
	n := len(d)
	if !bytes.Equal(d[n-2:], ext.PCEID[:]) {
		return fmt.Errorf("%w: sgx: the supplied PCK certificate is for PCE-ID %x, the quote's certification data says %x", attest.ErrChain, ext.PCEID, d[n-2:])
	}
	if t == CertDataPPIDCleartext && !bytes.Equal(d[:16], ext.PPID[:]) {
		return fmt.Errorf("%w: sgx: the supplied PCK certificate is for PPID %x, the quote's certification data says %x: it is another platform's", attest.ErrChain, ext.PPID, d[:16])
	}
	return nil
}

// verifyChain verifies the PCK chain at now to the configured roots, then
// to the simulated ones, and returns it as verified (leaf … root). A
// self-signed last certificate in the chain is never trusted: it must
// carry the public key of the root reached.
func (v *Verifier) verifyChain(certs []*x509.Certificate, now time.Time) (chain []*x509.Certificate, simulated bool, err error) {
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
		if len(ch) >= 2 && (presented == nil || bytes.Equal(r.RawSubjectPublicKeyInfo, presented.RawSubjectPublicKeyInfo)) {
			return ch, simulated, nil
		}
	}
	if presented == nil {
		return nil, false, fmt.Errorf("%w: sgx: PCK certificate %q is itself a trusted root", attest.ErrChain, leaf.Subject.CommonName)
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
