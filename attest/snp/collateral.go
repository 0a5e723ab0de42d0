package snp

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/trustbound/trustbound/attest"
)

// Getter fetches AMD collateral (VCEK certificates, CRLs) by its AMD KDS
// URL, from the network, a cache or an offline bundle. It returns an error
// when it has nothing for the URL.
type Getter interface {
	Get(ctx context.Context, url string) ([]byte, error)
}

// ErrCollateral wraps every refusal because AMD collateral the verification
// needs is missing, stale or unusable: a VCEK neither in the evidence nor
// available from the Getter, or an AMD CRL that cannot be had, is out of
// date or does not verify. It wraps attest.ErrChain. The remedy is
// operational: supply the collateral (or, for the CRL only, set
// Config.AllowMissingCRL).
var ErrCollateral = fmt.Errorf("%w: AMD collateral missing or stale", attest.ErrChain)

// crlUnavailable is a CRL that could not be had or is not fresh: the one
// case Config.AllowMissingCRL excuses. A CRL that does not parse or verify
// is never excused.
type crlUnavailable struct{ error }

func (e crlUnavailable) Unwrap() error { return e.error }

// fetchVCEK fetches the VCEK for the report's CHIP_ID and REPORTED_TCB from
// the getter by its KDS URL. Version 2 reports do not name their product
// line: then each trusted line is tried in turn. It returns the certificate
// and the product line it was fetched for.
func (v *Verifier) fetchVCEK(ctx context.Context, r *spb.Report, productLine string) ([]byte, string, error) {
	if allZero(r.GetChipId()) {
		return nil, "", fmt.Errorf("%w: the report's CHIP_ID is masked, so its VCEK cannot be looked up: send the VCEK with the report", ErrCollateral)
	}
	lines := v.productLines
	if productLine != "" {
		if !slices.Contains(v.productLines, productLine) {
			return nil, "", fmt.Errorf("%w: the report comes from product line %q, for which no AMD roots are trusted", attest.ErrChain, productLine)
		}
		lines = []string{productLine}
	}
	var errs []error
	for _, line := range lines {
		if line == "Turin" {
			// Turin VCEKs have another URL form (8-byte hwID, fmcSPL) and an
			// extension go-sev-guest v0.15.0 does not parse.
			errs = append(errs, errors.New("fetching Turin VCEKs is not supported: send the VCEK with the report"))
			continue
		}
		url := vcekURL(line, r)
		der, err := v.getter.Get(ctx, url)
		if err == nil {
			return der, line, nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", url, err))
	}
	return nil, "", fmt.Errorf("%w: no VCEK in the evidence and none could be fetched: %w", ErrCollateral, errors.Join(errs...))
}

// invalidate tells a getter that can forget (collateral.Fetcher) that the
// body it served at url did not verify, so the next request refetches it
// instead of serving the same bad body until it expires.
func (v *Verifier) invalidate(url string) {
	if inv, ok := v.getter.(interface{ Invalidate(url string) }); ok {
		inv.Invalidate(url)
	}
}

type crlKey struct {
	digest [sha256.Size]byte
	ark    *x509.Certificate
}

// currentCRL returns the AMD CRL that ark signed for one chain: pre (a
// CRL preloaded on a root set, or nil) while it is fresh at now, else the
// one the getter serves at url. When it has no fresh CRL it returns a
// crlUnavailable error, with the stale CRL it has, if any: a stale CRL
// still proves what it revokes. A CRL that does not parse or verify, or a
// cancelled context, is any other error, without revocations.
func (v *Verifier) currentCRL(ctx context.Context, pre *x509.RevocationList, url string, ark *x509.Certificate, now time.Time) (*revocations, error) {
	var (
		why   []error
		stale *revocations
	)
	if pre != nil {
		revs, err := v.verifiedCRL(pre.Raw, ark, func() (*x509.RevocationList, error) { return pre, nil })
		if err != nil {
			return nil, fmt.Errorf("%w: the CRL given with the roots for %s: %w", ErrCollateral, url, err)
		}
		err = revs.freshAt(now)
		if err == nil {
			return revs, nil
		}
		stale = revs
		why = append(why, fmt.Errorf("the CRL given with the roots: %w", err))
	}
	if v.getter == nil {
		why = append(why, fmt.Errorf("no collateral getter to fetch %s", url))
		return stale, crlUnavailable{errors.Join(why...)}
	}
	b, err := v.getter.Get(ctx, url)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		why = append(why, fmt.Errorf("fetching %s: %w", url, err))
		return stale, crlUnavailable{errors.Join(why...)}
	}
	revs, err := v.verifiedCRL(b, ark, func() (*x509.RevocationList, error) { return parseCRL(b) })
	if err != nil {
		v.invalidate(url)
		return nil, fmt.Errorf("%w: the CRL from %s: %w", ErrCollateral, url, err)
	}
	if err := revs.freshAt(now); err != nil {
		why = append(why, fmt.Errorf("the CRL from %s: %w", url, err))
		return revs, crlUnavailable{errors.Join(why...)}
	}
	return revs, nil
}

// verifiedCRL returns the contents of the CRL whose encoding is raw, checked
// against ark once and then taken from the cache.
func (v *Verifier) verifiedCRL(raw []byte, ark *x509.Certificate, parse func() (*x509.RevocationList, error)) (*revocations, error) {
	k := crlKey{digest: sha256.Sum256(raw), ark: ark}
	if revs, ok := v.crls.Get(k); ok {
		return revs, nil
	}
	crl, err := parse()
	if err != nil {
		return nil, err
	}
	revs, err := verifyCRL(crl, ark)
	if err != nil {
		return nil, err
	}
	v.crls.Put(k, revs)
	return revs, nil
}

// checkRevocation checks ek's chain against AMD's CRLs and reports whether
// it did. The chain's own CRL (the one for key) is required: missing or
// stale, it is ErrCollateral unless the Config allows it (then: not
// checked, but a stale CRL still refuses what it lists). When ek has a
// sibling chain under the same ARK (the VLEK chain of a VCEK, and the
// other way round), that chain's CRL is checked too when the getter has
// it: both CRLs of a product line are signed by the same ARK, so a bundle
// that mislabels them must not hide a revocation. A serial listed on
// either is revoked: attest.ErrChain. Verified CRLs are cached by digest,
// so the second one costs a getter call and a hash.
func (v *Verifier) checkRevocation(ctx context.Context, ek *endorsement, key abi.ReportSigner, now time.Time) (bool, error) {
	own, ownErr := v.currentCRL(ctx, ek.roots.CRL, kds.CrlLinkByKey(ek.productLine, key), ek.ark, now)
	var unavailable crlUnavailable
	switch {
	case ownErr != nil && !errors.As(ownErr, &unavailable):
		return false, ownErr
	case ownErr != nil && !v.allowMissingCRL:
		return false, fmt.Errorf("%w: no fresh AMD CRL for the %s %v chain: %w "+
			"(serve it through the collateral getter, or set allowMissingCRL to accept evidence without revocation checking)",
			ErrCollateral, ek.productLine, key, ownErr)
	}
	lists := []*revocations{own} // nil when missing (and allowed)
	// Without the chain's own CRL revocation is not checked, so the
	// sibling's is not asked for either.
	if own != nil && ek.sibling != nil {
		var pre *x509.RevocationList
		if ek.sibling != ek.roots { // a root set has one CRL: here, ek's own
			pre = ek.sibling.CRL
		}
		other, err := v.currentCRL(ctx, pre, kds.CrlLinkByKey(ek.productLine, siblingKey(key)), ek.ark, now)
		if err != nil && !errors.As(err, new(crlUnavailable)) {
			return false, err
		}
		lists = append(lists, other) // nil when the getter has none
	}
	for _, revs := range lists {
		if revs == nil {
			continue
		}
		for _, c := range []struct {
			role   string
			cert   *x509.Certificate
			serial string
		}{
			{intermediateRole(key), ek.intermediate, ek.intermediateSerial},
			{key.String(), ek.cert, ek.serial},
		} {
			if at, ok := revs.revoked[c.serial]; ok {
				return false, fmt.Errorf("%w: AMD revoked the %s certificate %q (serial %#x) on %s",
					attest.ErrChain, c.role, c.cert.Subject.CommonName, c.cert.SerialNumber, at.UTC().Format(time.RFC3339))
			}
		}
	}
	return ownErr == nil, nil
}
