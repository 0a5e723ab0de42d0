// Package formats is the one registry of evidence formats trustbound
// verifies: adding a TEE format is a new package under attest plus one line
// here.
package formats

import (
	"crypto/x509"

	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/sgx"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
	"github.com/trustbound/trustbound/attest/tdx"
)

// Config is what the verifiers share: where collateral comes from and what
// the operator allows when it is missing.
type Config struct {
	// Getter serves AMD collateral (VCEKs, revocation lists) by URL; nil
	// means only what the evidence carries, so real SNP evidence that
	// needs more is refused.
	Getter snp.Getter
	// Intel serves Intel DCAP collateral (TCB info, QE identity, CRLs);
	// nil refuses real SGX and TDX evidence unless collateral is skipped.
	Intel dcap.Source
	// AllowMissingCRL accepts SNP evidence whose revocation list is missing
	// or stale; the claims then say revocation was not checked.
	AllowMissingCRL bool
}

// Registry returns the verifiers of every supported format, trusting the
// vendors' embedded roots and, only where a verification allows it
// (attest.Options.AllowSimulated), the simulated roots and collateral of
// attest/simtee.
func Registry(cfg Config) (*attest.Registry, error) {
	snpV := snp.NewVerifier(snp.Config{
		Getter:          cfg.Getter,
		AllowMissingCRL: cfg.AllowMissingCRL,
		Simulated:       map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}},
	})
	simIntel := []*x509.Certificate{simtee.SGXRoot()}
	tdxV := tdx.NewVerifier(tdx.Config{Collateral: cfg.Intel, Simulated: simIntel, SimulatedCollateral: simtee.TDXCollateralSource()})
	return attest.NewRegistry(
		snpV,
		azure.NewVerifier(azure.Config{SNP: snpV}),
		sgx.NewVerifier(sgx.Config{Collateral: cfg.Intel, Simulated: simIntel, SimulatedCollateral: simtee.SGXCollateralSource()}),
		tdxV,
		azure.NewTDXVerifier(azure.TDXConfig{TDX: tdxV}),
	)
}
