package tdx

import (
	"crypto/sha256"
	"fmt"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

// pck returns the verified PCK chain of a quote's type-5 certification
// data from the cache, or splits, verifies (dcap.VerifyPCKChain) and caches
// it, and checks it against opts. A chain depends on its bytes and the
// Verifier's roots only, so the cache is keyed by the SHA-256 of the
// certification data and the validity window is checked on every use.
func (v *Verifier) pck(certData []byte, opts attest.Options) (*dcap.PCKChain, error) {
	key := sha256.Sum256(certData)
	p, ok := v.chains.Get(key)
	if !ok || !p.ValidAt(opts.Now) {
		ders, err := dcap.SplitPCKCertData(certData)
		if err != nil {
			return nil, fmt.Errorf("tdx quote: %w", err)
		}
		certs, err := dcap.ParsePCKCertificates(ders)
		if err != nil {
			return nil, fmt.Errorf("tdx quote: %w", err)
		}
		if p, err = dcap.VerifyPCKChain(certs, v.roots, v.simulated, opts.Now); err != nil {
			return nil, fmt.Errorf("tdx: %w", err)
		}
		v.chains.Put(key, p)
	}
	if p.Simulated && !opts.AllowSimulated {
		return nil, fmt.Errorf("%w: the PCK chain leads to %q", attest.ErrSimulated, p.Chain[len(p.Chain)-1].Subject.CommonName)
	}
	return p, nil
}
