package dcap

import (
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"fmt"
)

// intelRootPEM is the Intel SGX Root CA (ECDSA P-256, valid 2018-05-21 to
// 2049-12-31, SHA-256 fingerprint 44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:
// 7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3), the root of every
// PCK certificate chain and of the TCB signing chain. It is a public
// certificate, copied byte for byte from github.com/google/go-tdx-guest
// verify/trusted_root.pem at commit 91f9a52f36c7a6ce140d5f13a2fb4ca03b61349c
// (Apache-2.0).
//
//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// IntelSGXRoot returns the embedded Intel SGX Root CA, freshly parsed: the
// trust anchor of SGX and TDX PCK chains, TCB info, QE identities and CRLs.
func IntelSGXRoot() *x509.Certificate {
	blk, _ := pem.Decode(intelRootPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		panic("dcap: embedded Intel SGX Root CA: no PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		// The file is embedded at build time and covered by tests.
		panic(fmt.Sprintf("dcap: embedded Intel SGX Root CA: %v", err))
	}
	return c
}

// RootPools returns the pools a PCK chain verifier holds: roots (nil means
// IntelSGXRoot; an empty non-nil slice trusts no real root) and, when any
// are given, the simulated roots (nil otherwise). The roots pool is never
// nil: a nil pool makes x509 use the system roots.
func RootPools(roots, simulated []*x509.Certificate) (rootPool, simulatedPool *x509.CertPool) {
	if roots == nil {
		roots = []*x509.Certificate{IntelSGXRoot()}
	}
	rootPool = x509.NewCertPool()
	for _, c := range roots {
		rootPool.AddCert(c)
	}
	if len(simulated) > 0 {
		simulatedPool = x509.NewCertPool()
		for _, c := range simulated {
			simulatedPool.AddCert(c)
		}
	}
	return rootPool, simulatedPool
}
