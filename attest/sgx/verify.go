package sgx

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/internal/boundedcache"
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
	eval          dcap.Evaluator                                // caches verified collateral
	chains        *boundedcache.Cache[[32]byte, *dcap.PCKChain] // verified PCK chains by the digest of their DER certificates
}

var _ attest.Verifier = (*Verifier)(nil)

// maxCachedChains bounds the verified PCK chains a Verifier keeps (one per
// platform and TCB level it sees).
const maxCachedChains = 1024

// NewVerifier returns a Verifier with the roots and collateral of cfg.
func NewVerifier(cfg Config) *Verifier {
	v := &Verifier{
		collateral:    cfg.Collateral,
		simCollateral: cfg.SimulatedCollateral,
		chains:        boundedcache.New[[32]byte, *dcap.PCKChain](maxCachedChains),
	}
	v.roots, v.simulated = dcap.RootPools(cfg.Roots, cfg.Simulated)
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
	p, err := v.verifiedChain(q, ev.Certs, opts.Now)
	if err != nil {
		return nil, err
	}
	chain, simulated, ext := p.Chain, p.Simulated, p.Ext
	if simulated && !opts.AllowSimulated {
		return nil, fmt.Errorf("%w: the PCK chain leads to %q", attest.ErrSimulated, chain[len(chain)-1].Subject.CommonName)
	}
	if t := q.Signature.CertDataType; t != CertDataPCKChain {
		if err := dcap.CheckPPIDCertData(t, q.Signature.CertData, ext); err != nil {
			return nil, fmt.Errorf("sgx: %w", err)
		}
	}
	s := &q.Signature
	if err := dcap.VerifyQuoteSignatures(p.Key, &dcap.QuoteSignatures{
		QEReport: q.SignedByPCK, QEReportSignature: s.QEReportSignature,
		AttestationKey: s.AttestationKey, QEAuthData: s.QEAuthData,
		SignedByAttestationKey: q.SignedByAttestationKey, QuoteSignature: s.ISVSignature,
	}); err != nil {
		return nil, fmt.Errorf("sgx: %w", err)
	}
	c := claims(q, ext, chain[0], simulated)
	if opts.SkipCollateral {
		return c, nil
	}
	if err := v.evaluate(ctx, c, q, p, opts.Now); err != nil {
		return nil, err
	}
	return c, nil
}

// evaluate gets the platform's collateral and records its TCB verdict in c.
func (v *Verifier) evaluate(ctx context.Context, c *attest.Claims, q *Quote, p *dcap.PCKChain, now time.Time) error {
	ext := p.Ext
	src, which := v.collateral, "Config.Collateral"
	if p.Simulated {
		src, which = v.simCollateral, "Config.SimulatedCollateral"
	}
	if src == nil {
		return fmt.Errorf("%w: sgx: no collateral source configured (%s) to evaluate the TCB of FMSPC %x: configure one (trustbound verify --collateral), or verify signatures and chain only (--no-collateral)",
			dcap.ErrCollateral, which, ext.FMSPC)
	}
	col, err := src.Collateral(ctx, dcap.SGX, ext.FMSPC, p.CA)
	if err != nil {
		if errors.Is(err, dcap.ErrCollateral) {
			return fmt.Errorf("sgx: collateral for FMSPC %x: %w", ext.FMSPC, err)
		}
		return fmt.Errorf("%w: sgx: collateral for FMSPC %x: %w", dcap.ErrCollateral, ext.FMSPC, err)
	}
	res, err := v.eval.Evaluate(&dcap.Input{
		Kind: dcap.SGX, Collateral: col, Now: now, PCKChain: p.Chain, PCK: ext,
		QE: q.Signature.QEReport.QE(),
	})
	if err != nil {
		// Collateral refused as not genuine is not served again from a
		// cache: the next verification asks Intel.
		dcap.InvalidateRejected(src, err, dcap.SGX, ext.FMSPC, p.CA)
		return fmt.Errorf("sgx: %w", err)
	}
	res.Record(c)
	return nil
}

// verifiedChain returns q's PCK chain verified at now, from the cache when
// the same chain was verified before and all its certificates are valid
// at now: the quote's own for certification data type 5, else the one
// supplied beside it (Evidence.Certs).
func (v *Verifier) verifiedChain(q *Quote, supplied [][]byte, now time.Time) (*dcap.PCKChain, error) {
	ders := q.PCKChain
	if q.Signature.CertDataType != CertDataPCKChain {
		if len(supplied) == 0 {
			return nil, fmt.Errorf("%w: sgx quote carries certification data type %d (PPID, no PCK certificate) and the evidence supplies no PCK certificate: "+
				"put the platform's PCK certificate and its CA (from a PCCS or Intel PCS) in Evidence.Certs, or configure the quote provider library (DCAP QPL/PCCS) so that the quoting enclave embeds the chain (type 5)",
				attest.ErrChain, q.Signature.CertDataType)
		}
		ders = supplied
	}
	key := boundedcache.Digest(ders...)
	if p, ok := v.chains.Get(key); ok && p.ValidAt(now) {
		return p, nil
	}
	certs, err := dcap.ParsePCKCertificates(ders)
	if err != nil {
		return nil, fmt.Errorf("sgx: %w", err)
	}
	p, err := dcap.VerifyPCKChain(certs, v.roots, v.simulated, now)
	if err != nil {
		return nil, fmt.Errorf("sgx: %w", err)
	}
	v.chains.Put(key, p)
	return p, nil
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
