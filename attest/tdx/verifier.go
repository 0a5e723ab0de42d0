package tdx

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/internal/boundedcache"
)

// Config configures a Verifier. NewVerifier copies the roots into pools:
// changing the slices after has no effect (the certificates are shared).
type Config struct {
	// Roots are the trusted roots of PCK certificate chains. Nil means the
	// Intel SGX Root CA embedded by attest/dcap; an empty non-nil slice
	// trusts no real root.
	Roots []*x509.Certificate
	// Simulated are simulated roots (attest/simtee), tried only after
	// Roots fail and accepted only with attest.Options.AllowSimulated;
	// claims from them say Simulated.
	Simulated []*x509.Certificate
	// Collateral serves Intel's TDX collateral (TCB info, TD QE identity,
	// CRLs) for quotes that chain to Roots, by FMSPC and PCK CA. Nil means
	// none: such quotes then verify only with attest.Options.SkipCollateral
	// (signatures and chain, TCB not evaluated, revocation not checked).
	Collateral dcap.Source
	// SimulatedCollateral serves the simulated collateral for quotes that
	// chain to a Simulated root, signed by the simulated Intel root: real
	// collateral never vouches for a simulated platform, nor simulated
	// collateral for a real one. Nil: simulated quotes, too, need
	// attest.Options.SkipCollateral.
	SimulatedCollateral dcap.Source
}

// Verifier verifies attest.FormatTDXQuote evidence: TDX quotes v4 and v5.
// It is safe for concurrent use. It caches verified PCK chains by the
// SHA-256 of the quote's certification data (checking their validity
// window on every use), and its dcap.Evaluator caches verified collateral
// by its bytes, so a warm verification costs a parse, a few hashes, two
// ECDSA P-256 verifications (QE report, quote) and the TCB matching.
type Verifier struct {
	roots         *x509.CertPool // never nil: a nil pool makes x509 use the system roots
	simulated     *x509.CertPool // nil when no simulated root is configured
	collateral    dcap.Source
	simCollateral dcap.Source
	chains        *boundedcache.Cache[[sha256.Size]byte, *dcap.PCKChain]
	eval          dcap.Evaluator // caches verified collateral
}

var _ attest.Verifier = (*Verifier)(nil)

// maxCachedChains bounds the Verifier's cache of verified PCK chains. An
// entry is a few kilobytes (three parsed certificates), one per platform.
const maxCachedChains = 4096

// NewVerifier returns a Verifier with the roots and collateral of cfg.
func NewVerifier(cfg Config) *Verifier {
	v := &Verifier{
		collateral:    cfg.Collateral,
		simCollateral: cfg.SimulatedCollateral,
		chains:        boundedcache.New[[sha256.Size]byte, *dcap.PCKChain](maxCachedChains),
	}
	v.roots, v.simulated = dcap.RootPools(cfg.Roots, cfg.Simulated)
	return v
}

// Format returns attest.FormatTDXQuote.
func (v *Verifier) Format() attest.Format { return attest.FormatTDXQuote }

// Verify checks ev.Data, a TDX quote v4 or v5 (zero padding allowed, see
// ParseQuote) carrying its PCK chain, at opts.Now, in this order:
//
//  1. framing (attest.ErrMalformed); ev.Certs must be empty;
//  2. the PCK chain to a trusted root, then to a simulated one
//     (attest.ErrChain; attest.ErrSimulated without opts.AllowSimulated);
//  3. the QE report signature by the PCK key, the QE report data as
//     SHA-256(attestation key ‖ QE authentication data) ‖ 0³², and the quote
//     signature by the attestation key (attest.ErrSignature);
//  4. unless opts.SkipCollateral, Intel's collateral for the FMSPC from
//     Config.Collateral (Config.SimulatedCollateral for a simulated chain)
//     and the TCB evaluation of attest/dcap: the PCK chain not revoked, the
//     TD quoting enclave and TDX module Intel's, the platform's TCB level
//     (its errors: dcap.ErrCollateral, dcap.ErrNoMatchingTCBLevel,
//     attest.ErrChain for a revoked certificate, …).
//
// A TCB status other than UpToDate is not an error: the claims carry it
// and appraisal decides.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ev == nil {
		return nil, fmt.Errorf("%w: no evidence", attest.ErrMalformed)
	}
	if ev.Format != attest.FormatTDXQuote {
		return nil, fmt.Errorf("%w: the TDX verifier reads %q, not %q", attest.ErrUnknownFormat, attest.FormatTDXQuote, ev.Format)
	}
	if len(ev.Certs) != 0 {
		return nil, fmt.Errorf("%w: a TDX quote carries its PCK chain; Evidence.Certs must be empty", attest.ErrMalformed)
	}
	if opts.Now.IsZero() {
		return nil, errors.New("tdx: verification time (attest.Options.Now) not set")
	}
	// ParseQuote without the PCK chain split: pck splits it, strictly, when
	// the chain is not in the cache (it is there only if it split before).
	q, err := parse(ev.Data)
	if err != nil {
		return nil, err
	}
	p, err := v.pck(q.Signature.PCKCertChain, opts)
	if err != nil {
		return nil, err
	}
	s := &q.Signature
	if err := dcap.VerifyQuoteSignatures(p.Key, &dcap.QuoteSignatures{
		QEReport: q.SignedByPCK, QEReportSignature: s.QEReportSignature,
		AttestationKey: s.AttestationKey, QEAuthData: s.QEAuthData,
		SignedByAttestationKey: q.SignedByAttestationKey, QuoteSignature: s.QuoteSignature,
	}); err != nil {
		return nil, fmt.Errorf("tdx: %w", err)
	}

	c := claims(q, p)
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
	src, which := v.collateral, "Config.Collateral"
	if p.Simulated {
		src, which = v.simCollateral, "Config.SimulatedCollateral"
	}
	if src == nil {
		return fmt.Errorf("%w: tdx: no collateral source configured (%s) to evaluate the TCB of FMSPC %x: configure one (trustbound verify --collateral), or verify signatures and chain only (--no-collateral)",
			dcap.ErrCollateral, which, p.Ext.FMSPC)
	}
	col, err := src.Collateral(ctx, dcap.TDX, p.Ext.FMSPC, p.CA)
	if err != nil {
		if errors.Is(err, dcap.ErrCollateral) {
			return fmt.Errorf("tdx: collateral for FMSPC %x (PCK %s CA): %w", p.Ext.FMSPC, p.CA, err)
		}
		return fmt.Errorf("%w: tdx: collateral for FMSPC %x (PCK %s CA): %w", dcap.ErrCollateral, p.Ext.FMSPC, p.CA, err)
	}
	td := &dcap.TDXTCB{
		TEETCBSVN:      q.Body.TEETCBSVN,
		MRSignerSEAM:   q.Body.MRSignerSEAM,
		SEAMAttributes: q.Body.SEAMAttributes,
	}
	if q.BodyType == BodyTypeTD15 {
		svn2 := q.Body.TEETCBSVN2
		td.TEETCBSVN2 = &svn2
	}
	res, err := v.eval.Evaluate(&dcap.Input{
		Kind:       dcap.TDX,
		Collateral: col,
		Now:        now,
		PCKChain:   p.Chain,
		PCK:        p.Ext,
		QE:         q.Signature.QEReport.QE(),
		TDX:        td,
	})
	if err != nil {
		// Collateral refused as not genuine is not served again from a
		// cache: the next verification asks Intel.
		dcap.InvalidateRejected(src, err, dcap.TDX, p.Ext.FMSPC, p.CA)
		return fmt.Errorf("tdx: TCB evaluation for FMSPC %x: %w", p.Ext.FMSPC, err)
	}
	res.Record(c)
	return nil
}
