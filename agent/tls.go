package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/trustbound/trustbound/identity"
)

// TLSCertificate returns the workload's X.509-SVID chain (leaf, then
// intermediate) with its TEE-held key, for a tls.Config.
func (id *Identity) TLSCertificate(res *Result) (tls.Certificate, error) {
	chain, err := parseChainPEM(res.Certificate)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
	}
	tc := tls.Certificate{PrivateKey: id.Signer, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

// VerifyPeer returns a tls.Config.VerifyPeerCertificate function that
// requires the peer to present an X.509-SVID chaining to roots (the trust
// bundle) for the given usage (ExtKeyUsageClientAuth on a server,
// ExtKeyUsageServerAuth on a client) and naming one of the allowed SPIFFE
// IDs. Set InsecureSkipVerify (client) or ClientAuth RequireAnyClientCert
// (server) alongside it: this function does the whole verification, since
// SVIDs carry no DNS names to verify against.
func VerifyPeer(roots *x509.CertPool, usage x509.ExtKeyUsage, now func() time.Time, allowed ...string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		chain := make([]*x509.Certificate, 0, len(raw))
		for _, b := range raw {
			c, err := x509.ParseCertificate(b)
			if err != nil {
				return fmt.Errorf("peer certificate: %w", err)
			}
			chain = append(chain, c)
		}
		id, err := identity.VerifySVID(chain, identity.VerifyOptions{Roots: roots, Now: now(), Usage: usage})
		if err != nil {
			return fmt.Errorf("peer: %w", err)
		}
		for _, a := range allowed {
			if id.String() == a {
				return nil
			}
		}
		return fmt.Errorf("peer %s is not allowed", id)
	}
}
