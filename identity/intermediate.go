package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"time"
)

// Intermediate validity. A TTL of zero selects the default; a TTL above the
// maximum is refused.
const (
	DefaultIntermediateTTL = 30 * 24 * time.Hour
	MaxIntermediateTTL     = 397 * 24 * time.Hour

	intermediateCommonName = "trustbound intermediate CA "
	// maxLabel bounds an intermediate's label (it goes into the common name).
	maxLabel = maxCommonName - len(intermediateCommonName)
)

// NewIntermediate returns an intermediate CA signed by c, which must be a
// root: a fresh ECDSA P-256 key, a CA certificate with MaxPathLen 0 (it
// signs leaves only), URI SAN spiffe://<trust domain> and common name
// "trustbound intermediate CA <label>", valid from now-1m to now+ttl (zero
// means DefaultIntermediateTTL) and never beyond the root. label names what
// the intermediate serves, e.g. a manifest digest prefix: 1 to 37 bytes of
// a-z 0-9 . - _.
func (c *CA) NewIntermediate(label string, now time.Time, ttl time.Duration) (*CA, error) {
	if !c.IsRoot() {
		return nil, fmt.Errorf("identity: new intermediate: %w: only a root signs intermediates", ErrInvalidRequest)
	}
	if label == "" || len(label) > maxLabel {
		return nil, fmt.Errorf("identity: new intermediate: %w: label of %d bytes, want 1 to %d", ErrInvalidRequest, len(label), maxLabel)
	}
	if r, i, bad := badIDChar(label); bad {
		return nil, fmt.Errorf("identity: new intermediate: %w: label %q has %q at byte %d (allowed: a-z 0-9 . - _)", ErrInvalidRequest, label, r, i)
	}
	ttl, err := resolveTTL(ttl, DefaultIntermediateTTL, MaxIntermediateTTL)
	if err != nil {
		return nil, fmt.Errorf("identity: new intermediate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: new intermediate: generating key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: intermediateCommonName + label, Organization: []string{organization}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{trustDomainID(c.trustDomain)},
	}
	der, err := c.sign(tmpl, &key.PublicKey, now, ttl)
	if err != nil {
		return nil, fmt.Errorf("identity: new intermediate %s: %w", label, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: new intermediate %s: parsing: %w", label, err)
	}
	return &CA{trustDomain: c.trustDomain, root: c.root, cert: cert, key: key}, nil
}

// LoadIntermediate restores an intermediate of root from the output of its
// MarshalPEM. It refuses a certificate that is not a CA with MaxPathLen 0,
// is not signed by root, names another trust domain than root, or whose
// key does not match. It does not check validity periods: issuance does.
func LoadIntermediate(root *x509.Certificate, certPEM, keyPEM []byte) (*CA, error) {
	if root == nil {
		return nil, fmt.Errorf("identity: load intermediate: %w: no root", ErrInvalidCA)
	}
	rootTD, err := rootTrustDomain(root)
	if err != nil {
		return nil, fmt.Errorf("identity: load intermediate: %w: root: %w", ErrInvalidCA, err)
	}
	cert, err := parseCACert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("identity: load intermediate: %w: %w", ErrInvalidCA, err)
	}
	if cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		return nil, fmt.Errorf("identity: load intermediate: %w: MaxPathLen must be 0 (an intermediate signs leaves only)", ErrInvalidCA)
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("identity: load intermediate: %w: not signed by the root: %w", ErrInvalidCA, err)
	}
	td, err := rootTrustDomain(cert)
	if err != nil {
		return nil, fmt.Errorf("identity: load intermediate: %w: %w", ErrInvalidCA, err)
	}
	if td != rootTD {
		return nil, fmt.Errorf("identity: load intermediate: %w: trust domain %q, root serves %q", ErrInvalidCA, td, rootTD)
	}
	key, err := parseCAKey(keyPEM, cert)
	if err != nil {
		return nil, fmt.Errorf("identity: load intermediate: %w: %w", ErrInvalidCA, err)
	}
	return &CA{trustDomain: td, root: root, cert: cert, key: key}, nil
}

// kind names the signing certificate in errors.
func (c *CA) kind() string {
	if c.IsRoot() {
		return "root"
	}
	return "intermediate"
}
