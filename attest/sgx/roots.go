package sgx

import (
	"crypto/x509"

	"github.com/trustbound/trustbound/attest/dcap"
)

// IntelSGXRoot returns the embedded Intel SGX Root CA (dcap.IntelSGXRoot).
func IntelSGXRoot() *x509.Certificate { return dcap.IntelSGXRoot() }

// The SGX extension of PCK certificates lives in attest/dcap, which both
// the SGX and TDX verifiers use; these names keep this package's API.
type (
	// PCKExtensions is dcap.PCKExtensions.
	PCKExtensions = dcap.PCKExtensions
	// PCKTCB is dcap.PCKTCB.
	PCKTCB = dcap.PCKTCB
)

// OIDSGXExtensions is dcap.OIDSGXExtensions.
var OIDSGXExtensions = dcap.OIDSGXExtensions

// SGX types of a PCK certificate (dcap.SGXType*).
const (
	SGXTypeStandard              = dcap.SGXTypeStandard
	SGXTypeScalable              = dcap.SGXTypeScalable
	SGXTypeScalableWithIntegrity = dcap.SGXTypeScalableWithIntegrity
)

// ParsePCKExtensions is dcap.ParsePCKExtensions.
func ParsePCKExtensions(c *x509.Certificate) (*PCKExtensions, error) {
	return dcap.ParsePCKExtensions(c)
}
