// Package formats is the one registry of evidence formats trustbound
// verifies: adding a TEE format is a new package under attest plus one line
// here.
package formats

import (
	"crypto/x509"

	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/sgx"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

// Registry returns the verifiers of every supported format, trusting the
// vendors' embedded roots and, only where a verification allows it
// (attest.Options.AllowSimulated), the simulated roots of attest/simtee.
func Registry() (*attest.Registry, error) {
	return attest.NewRegistry(
		snp.NewVerifier(snp.Config{Simulated: map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}}}),
		sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{simtee.SGXRoot()}}),
	)
}
