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

// Invalidator is the optional capability of a caching Source: it drops what
// it holds for a platform's collateral (TCB info and QE identity of kind,
// the CRLs of the PCK CA ca and of the root), so that the next Collateral
// asks Intel again rather than serve a rejected copy until it expires. The
// SGX and TDX verifiers call it when evaluation refuses the collateral with
// a *RejectedError (not for collateral that is only stale). The method is
// not named Invalidate: collateral.Fetcher already has Invalidate(url).
type Invalidator interface {
	InvalidateCollateral(kind Kind, fmspc [6]byte, ca CA)
}

// RejectedError is collateral that Evaluate refused as not genuine or
// malformed: a signature or an issuer chain that does not verify, a signer
// that is not Intel's TCB signing certificate, a document that does not
// parse or is of the wrong kind, a revoked collateral signer. It wraps
// ErrCollateral and prints as its cause. Collateral that is missing, stale,
// not yet valid or for another platform is refused without it.
type RejectedError struct {
	Err error
}

func (e *RejectedError) Error() string { return e.Err.Error() }

// Unwrap returns the cause, which wraps ErrCollateral.
func (e *RejectedError) Unwrap() error { return e.Err }

// InvalidateRejected calls src's InvalidateCollateral for the platform
// when err is a *RejectedError and src is an Invalidator; it reports
// whether it did.
func InvalidateRejected(src Source, err error, kind Kind, fmspc [6]byte, ca CA) bool {
	var rej *RejectedError
	inv, ok := src.(Invalidator)
	if !ok || !errors.As(err, &rej) {
		return false
	}
	inv.InvalidateCollateral(kind, fmspc, ca)
	return true
}
