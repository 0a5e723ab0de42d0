package identity

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Limits from the SPIFFE ID specification.
const (
	maxTrustDomainLen = 255
	maxIDLen          = 2048
)

// SPIFFEID returns spiffe://<trustDomain>/<model>/<workload>.
//
// The trust domain follows the SPIFFE specification (lowercase letters,
// digits, '.', '-', '_'; at most 255 bytes). model and workload must each be
// one non-empty path segment of the same characters and may not be "." or
// "..". The SPIFFE specification also allows uppercase letters in paths;
// trustbound does not, so that one workload has one spelling.
func SPIFFEID(trustDomain, model, workload string) (*url.URL, error) {
	if err := checkTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	for _, s := range []struct{ name, v string }{{"model", model}, {"workload", workload}} {
		if err := checkSegment(s.v); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	u := &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/" + model + "/" + workload}
	if n := len(u.String()); n > maxIDLen {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, n, maxIDLen)
	}
	return u, nil
}

// ParseSPIFFEID parses a workload SPIFFE ID: spiffe://<trust domain>/<path>
// with at least one path segment, under the rules of SPIFFEID. It accepts
// only the canonical spelling: no percent-encoding, port, user, query or
// fragment, and no trailing slash.
func ParseSPIFFEID(s string) (*url.URL, error) {
	if len(s) > maxIDLen {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(s), maxIDLen)
	}
	rest, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return nil, fmt.Errorf("%w: %q does not start with spiffe://", ErrInvalidID, s)
	}
	td, path, ok := strings.Cut(rest, "/")
	if err := checkTrustDomain(td); err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q has no path (a workload ID needs one)", ErrInvalidID, s)
	}
	for seg := range strings.SplitSeq(path, "/") {
		if err := checkSegment(seg); err != nil {
			return nil, err
		}
	}
	return &url.URL{Scheme: "spiffe", Host: td, Path: "/" + path}, nil
}

// trustDomainID returns the ID of the trust domain itself, spiffe://<td>,
// which names the root CA.
func trustDomainID(td string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: td}
}

func checkTrustDomain(td string) error {
	if td == "" {
		return fmt.Errorf("%w: empty trust domain", ErrInvalidID)
	}
	if len(td) > maxTrustDomainLen {
		return fmt.Errorf("%w: trust domain is %d bytes, at most %d", ErrInvalidID, len(td), maxTrustDomainLen)
	}
	if r, i, bad := badIDChar(td); bad {
		return fmt.Errorf("%w: trust domain %q has %q at byte %d (allowed: a-z 0-9 . - _)", ErrInvalidID, td, r, i)
	}
	return nil
}

func checkSegment(seg string) error {
	switch seg {
	case "":
		return fmt.Errorf("%w: empty path segment", ErrInvalidID)
	case ".", "..":
		return fmt.Errorf("%w: path segment %q", ErrInvalidID, seg)
	}
	if r, i, bad := badIDChar(seg); bad {
		return fmt.Errorf("%w: path segment %q has %q at byte %d (allowed: a-z 0-9 . - _)", ErrInvalidID, seg, r, i)
	}
	return nil
}

// badIDChar returns the first rune of s outside [a-z0-9._-] and its byte
// offset.
func badIDChar(s string) (r rune, i int, bad bool) {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return r, i, true
		}
	}
	return 0, 0, false
}

// SPIFFEIDOf returns the SPIFFE ID of an X.509-SVID: its one URI SAN, which
// must be a valid workload SPIFFE ID. It only reads the certificate; use
// VerifySVID to also check the chain.
func SPIFFEIDOf(cert *x509.Certificate) (*url.URL, error) {
	if cert == nil {
		return nil, fmt.Errorf("%w: no certificate", ErrNotSVID)
	}
	if len(cert.URIs) != 1 {
		return nil, fmt.Errorf("%w: %d URI SANs, want exactly 1", ErrNotSVID, len(cert.URIs))
	}
	id, err := ParseSPIFFEID(cert.URIs[0].String())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSVID, err)
	}
	return id, nil
}

// VerifyOptions are the inputs of VerifySVID. All are required.
type VerifyOptions struct {
	// Roots are the trusted CA certificates. A nil pool is refused rather
	// than falling back to the system roots.
	Roots *x509.CertPool
	// Now is the time at which the chain must be valid.
	Now time.Time
	// Usage is the role the peer plays: x509.ExtKeyUsageClientAuth when
	// verifying a client, x509.ExtKeyUsageServerAuth when verifying a server.
	Usage x509.ExtKeyUsage
}

// VerifySVID verifies an X.509-SVID chain (leaf first, then any
// intermediates, as in tls.ConnectionState.PeerCertificates) against
// opts.Roots at opts.Now and returns the leaf's SPIFFE ID. The caller
// authorizes the peer by comparing that ID; VerifySVID does not.
func VerifySVID(chain []*x509.Certificate, opts VerifyOptions) (*url.URL, error) {
	switch {
	case len(chain) == 0 || chain[0] == nil:
		return nil, fmt.Errorf("%w: no certificate", ErrNotSVID)
	case opts.Roots == nil:
		return nil, fmt.Errorf("identity: VerifyOptions.Roots not set")
	case opts.Now.IsZero():
		return nil, fmt.Errorf("identity: VerifyOptions.Now not set")
	case opts.Usage != x509.ExtKeyUsageClientAuth && opts.Usage != x509.ExtKeyUsageServerAuth:
		return nil, fmt.Errorf("identity: VerifyOptions.Usage must be ExtKeyUsageClientAuth or ExtKeyUsageServerAuth")
	}
	leaf := chain[0]
	id, err := SPIFFEIDOf(leaf)
	if err != nil {
		return nil, err
	}
	// X.509-SVID spec, section 4: a leaf is not a CA, has digitalSignature
	// and neither keyCertSign nor cRLSign.
	if leaf.IsCA {
		return nil, fmt.Errorf("%w: leaf is a CA certificate", ErrNotSVID)
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("%w: leaf lacks the digitalSignature key usage", ErrNotSVID)
	}
	if leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return nil, fmt.Errorf("%w: leaf has keyCertSign or cRLSign", ErrNotSVID)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         opts.Roots,
		Intermediates: inter,
		CurrentTime:   opts.Now,
		KeyUsages:     []x509.ExtKeyUsage{opts.Usage},
	}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSVID, err)
	}
	return id, nil
}
