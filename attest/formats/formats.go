// Package formats is the one registry of evidence formats trustbound
// verifies: adding a TEE format is a new package under attest plus one line
// here.
package formats

import (
	"context"
	"crypto/x509"

	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/sgx"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

// Getter fetches vendor collateral by URL (collateral.Fetcher is one).
type Getter interface {
	Get(ctx context.Context, url string) ([]byte, error)
}

// Config is what the verifiers share: where collateral comes from and what
// the operator allows when it is missing.
type Config struct {
	// Getter serves vendor collateral (certificates, revocation lists); nil
	// means only what the evidence carries, so real evidence that needs
	// more is refused.
	Getter Getter
	// AllowMissingCRL accepts evidence whose revocation list is missing or
	// stale; the claims then say revocation was not checked.
	AllowMissingCRL bool
}

// Registry returns the verifiers of every supported format, trusting the
// vendors' embedded roots and, only where a verification allows it
// (attest.Options.AllowSimulated), the simulated roots of attest/simtee.
func Registry(cfg Config) (*attest.Registry, error) {
	var g snp.Getter
	if cfg.Getter != nil {
		g = cfg.Getter
	}
	snpV := snp.NewVerifier(snp.Config{
		Getter:          g,
		AllowMissingCRL: cfg.AllowMissingCRL,
		Simulated:       map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}},
	})
	return attest.NewRegistry(
		snpV,
		azure.NewVerifier(azure.Config{SNP: snpV}),
		sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{simtee.SGXRoot()}, SimulatedCollateral: simtee.SGXCollateralSource()}),
	)
}
