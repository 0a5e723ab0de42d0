package azure

import (
	"crypto/rsa"
	"fmt"
	"sync"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/internal/boundedcache"
	"github.com/trustbound/trustbound/attest/tdx"
)

// An Azure CVM's HCL report (and with it the hardware report it carries,
// the runtime claims and the attestation key) is read from vTPM NV
// storage and stays the same from one attestation to the next: schemas 0
// and 1 of the evidence never refresh it, only the vTPM quote carries the
// verifier's nonce. What follows from those bytes alone — the parsed HCL
// report, runtime claims and AK, the TDREPORT, the parsed TD quote — is
// kept here, keyed by the SHA-256 of the bytes, so that a CVM's repeated
// attestations parse it once; a parse is kept only after the evidence
// carrying it verified. Nothing that depends on time, on the nonce
// or on a signature is cached: every signature (the hardware report's,
// checked by the SNP or TDX verifier with its own caches, and the vTPM
// quote's) and every binding is checked on every call. Cached values are
// shared between calls and never modified.

// hclCacheSize bounds each cache: one entry per CVM (a few KiB each).
// Only evidence that verified is cached (see parseHCL's keep), and only
// inputs of at most maxCachedHCL / maxCachedQuote bytes, so an attacker
// can neither fill the caches with parses of evidence that fails nor make
// one entry large.
const (
	hclCacheSize   = 1024
	maxCachedHCL   = NVReportSize // an HCL report as the vTPM holds it
	maxCachedQuote = 16 << 10     // a TD quote with its PCK chain is ~5 KiB
)

// hclParsed is what the bytes of one HCL report determine.
type hclParsed struct {
	hcl *HCLReport
	// td is the TDREPORT of a TDX HCL report (nil for SNP).
	td *tdx.TDReport

	// The runtime claims and the AK are parsed on first use (runtime),
	// after the hardware report's binding of them is checked, so that a
	// report whose claims were altered is refused for that first.
	once  sync.Once
	rc    *RuntimeClaims
	ak    *rsa.PublicKey
	rcErr error
}

// runtime returns the parsed runtime claims and the AK.
func (p *hclParsed) runtime() (*RuntimeClaims, *rsa.PublicKey, error) {
	p.once.Do(func() {
		if p.rc, p.rcErr = ParseRuntimeClaims(p.hcl.VarData); p.rcErr != nil {
			return
		}
		p.ak, p.rcErr = p.rc.AKPub()
	})
	return p.rc, p.ak, p.rcErr
}

// hclCache maps boundedcache.Digest(HCL report) to its parse.
type hclCache = boundedcache.Cache[[32]byte, *hclParsed]

func newHCLCache() *hclCache { return boundedcache.New[[32]byte, *hclParsed](hclCacheSize) }

// parseHCL parses an HCL report and its runtime claims and AK, for a
// hardware report of type want, through cache (nil: no caching). The
// parse is cached only when the caller calls keep, after the evidence
// carrying it verified; keep does nothing for a parse taken from the
// cache, or for a report larger than maxCachedHCL.
func parseHCL(cache *hclCache, b []byte, want ReportType) (p *hclParsed, keep func(), err error) {
	keep = func() {}
	var key [32]byte
	if cache != nil {
		key = boundedcache.Digest([]byte("azure hcl report"), b)
		if p, ok := cache.Get(key); ok && p.hcl.ReportType == want {
			return p, keep, nil
		}
	}
	hcl, err := ParseHCLReport(b)
	if err != nil {
		return nil, keep, err
	}
	if hcl.ReportType != want {
		if want == ReportTypeSNP {
			return nil, keep, errNotSNP(hcl)
		}
		return nil, keep, errNotTDX(hcl)
	}
	p = &hclParsed{hcl: hcl}
	if want == ReportTypeTDX {
		if p.td, err = tdx.ParseTDReport(hcl.HardwareReport); err != nil {
			return nil, keep, errTDReport(err)
		}
	}
	if cache != nil && len(b) <= maxCachedHCL {
		keep = func() { cache.Put(key, p) }
	}
	return p, keep, nil
}

// quoteCache maps boundedcache.Digest(TD quote) to its parse.
type quoteCache = boundedcache.Cache[[32]byte, *tdx.Quote]

func newQuoteCache() *quoteCache { return boundedcache.New[[32]byte, *tdx.Quote](hclCacheSize) }

// parseTDQuote parses a TD quote through cache (nil: no caching); as with
// parseHCL, keep caches it once the evidence verified.
func parseTDQuote(cache *quoteCache, b []byte) (q *tdx.Quote, keep func(), err error) {
	keep = func() {}
	var key [32]byte
	if cache != nil {
		key = boundedcache.Digest([]byte("azure td quote"), b)
		if q, ok := cache.Get(key); ok {
			return q, keep, nil
		}
	}
	if q, err = tdx.ParseQuote(b); err != nil {
		return nil, keep, err
	}
	if cache != nil && len(b) <= maxCachedQuote {
		keep = func() { cache.Put(key, q) }
	}
	return q, keep, nil
}

func errNotSNP(hcl *HCLReport) error {
	return fmt.Errorf("%w: the HCL report holds a hardware report of type %d (%v), not SNP: Azure TDX confidential VMs send az-tdx-vtpm evidence (with the TD quote), not az-snp-vtpm", attest.ErrMalformed, uint32(hcl.ReportType), hcl.ReportType)
}

func errNotTDX(hcl *HCLReport) error {
	return fmt.Errorf("%w: the HCL report holds a hardware report of type %d (%v), not TDX: Azure SNP confidential VMs send az-snp-vtpm evidence", attest.ErrMalformed, uint32(hcl.ReportType), hcl.ReportType)
}

func errTDReport(err error) error { return fmt.Errorf("the TDREPORT in the HCL report: %w", err) }
