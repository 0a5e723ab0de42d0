// Package dcap is Intel DCAP collateral and TCB evaluation shared by the SGX
// and TDX verifiers: PCK chains to the Intel SGX Root CA, PCK and root CA
// CRLs, TCB info v3 and (TD) QE identity with their signing chains, and the
// matching of a platform's TCB to a TCB level, as Intel's own quote
// verification library does. It never parses quotes.
package dcap

import (
	"context"
	"errors"
)

// Kind says whose collateral: SGX enclaves or TDX trust domains.
type Kind string

// The two kinds of DCAP collateral.
const (
	SGX Kind = "sgx"
	TDX Kind = "tdx"
)

// CA names the Intel PCK issuing CA of a platform ("processor" or
// "platform"), which selects the PCK CRL.
type CA string

// The PCK CAs.
const (
	ProcessorCA CA = "processor"
	PlatformCA  CA = "platform"
)

// Collateral is what Intel publishes for one platform family (FMSPC) and
// quoting enclave, exactly as served (bodies are verified, never trusted).
type Collateral struct {
	// PCKCRL is the CRL of the PCK issuing CA (DER or PEM) and
	// PCKCRLIssuerChain its PEM issuer chain (to the Intel SGX Root CA).
	PCKCRL            []byte
	PCKCRLIssuerChain []byte
	// RootCACRL is the Intel SGX Root CA's CRL (DER or PEM).
	RootCACRL []byte
	// TCBInfo is the body served for the FMSPC:
	// {"tcbInfo":{...},"signature":"<hex>"}; TCBInfoIssuerChain the PEM
	// chain of the TCB signing certificate.
	TCBInfo            []byte
	TCBInfoIssuerChain []byte
	// QEIdentity is {"enclaveIdentity":{...},"signature":"<hex>"} for the
	// QE (SGX) or TD QE (TDX); QEIdentityIssuerChain its PEM chain.
	QEIdentity            []byte
	QEIdentityIssuerChain []byte
}

// Source gets the collateral for a platform: Intel PCS v4, a PCCS, a cache
// or an offline bundle (package collateral implements it).
type Source interface {
	Collateral(ctx context.Context, kind Kind, fmspc [6]byte, ca CA) (*Collateral, error)
}

// ErrCollateral is wrapped when collateral is missing, stale, malformed or
// not signed by Intel: verification then fails closed.
var ErrCollateral = errors.New("Intel DCAP collateral missing, stale or not genuine")
