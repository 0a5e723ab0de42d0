// Package identity is the coordinator's workload CA: it issues short-lived
// X.509 certificates with SPIFFE IDs to public keys held inside attested
// TEEs, and never generates a workload's key.
//
// The CA generates keys only for its own root and, on purpose, for manifest
// secrets of type x509 (IssueSecretCert takes a key the coordinator made).
// It does not attest: the caller issues a workload certificate only after
// attest.Verify and policy appraisal have bound the public key to a TEE.
package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Validity periods. A TTL of zero selects the default; a TTL above the
// maximum is refused, never shortened.
const (
	DefaultWorkloadTTL = time.Hour
	MaxWorkloadTTL     = 24 * time.Hour
	DefaultServerTTL   = 90 * 24 * time.Hour
	MaxServerTTL       = 397 * 24 * time.Hour
	DefaultSecretTTL   = 90 * 24 * time.Hour
	MaxSecretTTL       = 397 * 24 * time.Hour

	// clockSkew backdates every NotBefore so that a peer whose clock runs
	// slightly behind accepts a fresh certificate.
	clockSkew = time.Minute
	// rootYears is the validity of a new root.
	rootYears = 10
)

// Subject organizational units, so that a relying party can tell from a
// certificate who holds its key.
const (
	organization   = "trustbound"
	ouAttested     = "attested TEE"
	ouSimulated    = "simulated TEE"
	ouCoordinator  = "coordinator"
	ouSecret       = "manifest secret"
	rootCommonName = "trustbound root CA "
)

// CA is a workload certificate authority for one SPIFFE trust domain. It is
// immutable after construction and safe for concurrent use.
//
// A CA is either a root (self-signed, from NewCA or LoadCA) or an
// intermediate signed by a root (from NewIntermediate or LoadIntermediate).
// Either issues certificates; Root is always the trust anchor and Chain the
// certificates a leaf presents between itself and the root.
type CA struct {
	trustDomain string
	root        *x509.Certificate
	// cert is the certificate whose key signs: root itself, or the
	// intermediate.
	cert *x509.Certificate
	key  crypto.Signer
}

// NewCA creates a CA with a fresh ECDSA P-256 root key and a self-signed
// root certificate for trustDomain, valid from now-1m for ten years.
// Randomness always comes from crypto/rand: since Go 1.26 key generation
// ignores any other reader, so a test that needs determinism uses
// testing/cryptotest.SetGlobalRandom instead.
func NewCA(trustDomain string, now time.Time) (*CA, error) {
	if err := checkTrustDomain(trustDomain); err != nil {
		return nil, fmt.Errorf("identity: new CA: %w", err)
	}
	if now.IsZero() {
		return nil, fmt.Errorf("identity: new CA: %w: time not set", ErrInvalidRequest)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: new CA: generating root key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: rootCommonName + trustDomain, Organization: []string{organization}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(rootYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{trustDomainID(trustDomain)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("identity: new CA: signing root: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: new CA: parsing root: %w", err)
	}
	return &CA{trustDomain: trustDomain, root: root, cert: root, key: key}, nil
}

// LoadCA restores a CA from the output of MarshalPEM. It refuses a
// certificate that is not a self-signed CA for exactly one trust domain
// (URI SAN spiffe://<trust domain>) and a key that does not match it.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	root, err := parseCACert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("identity: load CA: %w: %w", ErrInvalidCA, err)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("identity: load CA: %w: certificate is not self-signed: %w", ErrInvalidCA, err)
	}
	td, err := rootTrustDomain(root)
	if err != nil {
		return nil, fmt.Errorf("identity: load CA: %w: %w", ErrInvalidCA, err)
	}
	if _, err := keyUsageFor(root.PublicKey); err != nil {
		return nil, fmt.Errorf("identity: load CA: %w: root key: %w", ErrInvalidCA, err)
	}
	key, err := parseCAKey(keyPEM, root)
	if err != nil {
		return nil, fmt.Errorf("identity: load CA: %w: %w", ErrInvalidCA, err)
	}
	return &CA{trustDomain: td, root: root, cert: root, key: key}, nil
}

// parseCACert reads a CA certificate (root or intermediate) from exactly
// one PEM block: it must have basic constraints, be a CA and have
// keyCertSign.
func parseCACert(certPEM []byte) (*x509.Certificate, error) {
	der, err := onePEM(certPEM, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("certificate is not a CA (basic constraints and keyCertSign required)")
	}
	return cert, nil
}

// parseCAKey reads the PKCS#8 key of cert from exactly one PEM block,
// refusing a key that cannot sign or does not match cert. Its errors
// never carry key bytes.
func parseCAKey(keyPEM []byte, cert *x509.Certificate) (crypto.Signer, error) {
	der, err := onePEM(keyPEM, "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", parsed)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("key does not match the certificate")
	}
	return key, nil
}

// rootTrustDomain returns the trust domain named by the root's one URI SAN.
func rootTrustDomain(root *x509.Certificate) (string, error) {
	if len(root.URIs) != 1 {
		return "", fmt.Errorf("%d URI SANs, want exactly 1 (spiffe://<trust domain>)", len(root.URIs))
	}
	s := root.URIs[0].String()
	td, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return "", fmt.Errorf("URI SAN %q is not spiffe://<trust domain>", s)
	}
	if err := checkTrustDomain(td); err != nil {
		return "", fmt.Errorf("URI SAN %q: %w", s, err)
	}
	return td, nil
}

// onePEM decodes exactly one PEM block of the given type, with nothing but
// whitespace around it.
func onePEM(data []byte, typ string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	if block.Type != typ {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, typ)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("PEM block has headers (encrypted keys are not supported here; decrypt first)")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("trailing data after the %q PEM block", typ)
	}
	return block.Bytes, nil
}

// MarshalPEM returns the CA's own certificate (the root, or the
// intermediate) and its key, the key as an unencrypted PKCS#8 "PRIVATE
// KEY" block. The caller encrypts the key at rest and must never log it.
func (c *CA) MarshalPEM() (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: marshal CA key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Root returns the root certificate, the trust anchor. It is shared: do
// not modify it.
func (c *CA) Root() *x509.Certificate { return c.root }

// Certificate returns the certificate whose key signs what this CA issues:
// the root for a root CA, the intermediate for an intermediate. It is
// shared: do not modify it.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// Chain returns the certificates between an issued leaf and the root,
// leaf-side first: empty for a root CA, the intermediate for an
// intermediate. A TLS peer presents them after its leaf.
func (c *CA) Chain() []*x509.Certificate {
	if c.cert == c.root {
		return nil
	}
	return []*x509.Certificate{c.cert}
}

// IsRoot reports whether the CA signs with the root key.
func (c *CA) IsRoot() bool { return c.cert == c.root }

// RootPEM returns the root certificate as one "CERTIFICATE" PEM block.
func (c *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.root.Raw})
}

// TrustDomain returns the SPIFFE trust domain the CA issues in.
func (c *CA) TrustDomain() string { return c.trustDomain }

// WorkloadRequest asks for an X.509-SVID for a key held inside a TEE.
type WorkloadRequest struct {
	// PublicKey is the workload's key, generated inside the TEE and bound
	// to its evidence. ECDSA P-256/P-384, Ed25519 or RSA 2048-8192.
	PublicKey crypto.PublicKey
	// TrustDomain must equal the CA's; it guards against a manifest and a
	// CA that disagree.
	TrustDomain string
	// Model and Workload become the SPIFFE ID's path: /<model>/<workload>.
	Model, Workload string
	// Simulated marks a workload whose evidence came from a simulated TEE;
	// the certificate's OU then says "simulated TEE".
	Simulated bool
	// DNSNames are optional extra SANs (lowercase, no wildcards).
	DNSNames []string
	// NotBefore is the time of issuance (required).
	NotBefore time.Time
	// TTL is how long after NotBefore the certificate is valid: zero means
	// DefaultWorkloadTTL; above MaxWorkloadTTL is refused.
	TTL time.Duration
}

// IssueWorkload returns a DER X.509-SVID for req.PublicKey: exactly one URI
// SAN (the SPIFFE ID), not a CA, key usage digitalSignature (plus
// keyEncipherment for RSA), extended key usage serverAuth and clientAuth,
// valid from req.NotBefore-1m to req.NotBefore+TTL.
func (c *CA) IssueWorkload(req WorkloadRequest) ([]byte, error) {
	if req.TrustDomain != c.trustDomain {
		return nil, fmt.Errorf("identity: issue workload: %w: trust domain %q, this CA serves %q", ErrInvalidRequest, req.TrustDomain, c.trustDomain)
	}
	id, err := SPIFFEID(req.TrustDomain, req.Model, req.Workload)
	if err != nil {
		return nil, fmt.Errorf("identity: issue workload: %w", err)
	}
	usage, err := keyUsageFor(req.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("identity: issue workload %s: %w", id, err)
	}
	ttl, err := resolveTTL(req.TTL, DefaultWorkloadTTL, MaxWorkloadTTL)
	if err != nil {
		return nil, fmt.Errorf("identity: issue workload %s: %w", id, err)
	}
	if err := checkDNSNames(req.DNSNames, false); err != nil {
		return nil, fmt.Errorf("identity: issue workload %s: %w", id, err)
	}
	ou := ouAttested
	if req.Simulated {
		ou = ouSimulated
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{organization}, OrganizationalUnit: []string{ou}},
		URIs:                  []*url.URL{id},
		DNSNames:              req.DNSNames,
		BasicConstraintsValid: true,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := c.sign(tmpl, req.PublicKey, req.NotBefore, ttl)
	if err != nil {
		return nil, fmt.Errorf("identity: issue workload %s: %w", id, err)
	}
	return der, nil
}

// IssueServer returns a DER certificate for the coordinator's own TLS
// server key (serverAuth only, OU "coordinator", no SPIFFE ID), valid from
// now-1m to now+ttl. At least one DNS name or IP address is required; a ttl
// of zero means DefaultServerTTL.
func (c *CA) IssueServer(pub crypto.PublicKey, dnsNames []string, ips []net.IP, now time.Time, ttl time.Duration) ([]byte, error) {
	usage, err := keyUsageFor(pub)
	if err != nil {
		return nil, fmt.Errorf("identity: issue server: %w", err)
	}
	if ttl, err = resolveTTL(ttl, DefaultServerTTL, MaxServerTTL); err != nil {
		return nil, fmt.Errorf("identity: issue server: %w", err)
	}
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, fmt.Errorf("identity: issue server: %w: no DNS name or IP address", ErrInvalidRequest)
	}
	if err := checkDNSNames(dnsNames, false); err != nil {
		return nil, fmt.Errorf("identity: issue server: %w", err)
	}
	for _, ip := range ips {
		if ip.To16() == nil {
			return nil, fmt.Errorf("identity: issue server: %w: invalid IP address %v", ErrInvalidRequest, ip)
		}
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "trustbound coordinator", Organization: []string{organization}, OrganizationalUnit: []string{ouCoordinator}},
		DNSNames:              dnsNames,
		IPAddresses:           ips,
		BasicConstraintsValid: true,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := c.sign(tmpl, pub, now, ttl)
	if err != nil {
		return nil, fmt.Errorf("identity: issue server: %w", err)
	}
	return der, nil
}

// IssueSecretCert returns a DER certificate for a manifest secret of type
// x509, whose key the coordinator generated on purpose and will release to
// the workloads granted the secret. The certificate says so (OU "manifest
// secret", no SPIFFE ID, so it can never pass as an X.509-SVID). subject
// becomes the common name; when it is empty, dnsNames[0] does.
// CheckSecretCertNames states the rules for both. Extended key usage is
// serverAuth and clientAuth; valid from now-1m to now+ttl, a ttl of zero
// meaning DefaultSecretTTL.
func (c *CA) IssueSecretCert(subject string, dnsNames []string, key crypto.Signer, now time.Time, ttl time.Duration) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("identity: issue secret cert: %w", ErrUnsupportedKey)
	}
	pub := key.Public()
	usage, err := keyUsageFor(pub)
	if err != nil {
		return nil, fmt.Errorf("identity: issue secret cert: %w", err)
	}
	if ttl, err = resolveTTL(ttl, DefaultSecretTTL, MaxSecretTTL); err != nil {
		return nil, fmt.Errorf("identity: issue secret cert: %w", err)
	}
	if err := CheckSecretCertNames(subject, dnsNames); err != nil {
		return nil, fmt.Errorf("identity: issue secret cert: %w", err)
	}
	cn := subject
	if cn == "" {
		cn = dnsNames[0]
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{organization}, OrganizationalUnit: []string{ouSecret}},
		DNSNames:              dnsNames,
		BasicConstraintsValid: true,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := c.sign(tmpl, pub, now, ttl)
	if err != nil {
		return nil, fmt.Errorf("identity: issue secret cert %q: %w", cn, err)
	}
	return der, nil
}

// sign fills in serial and validity (now-1m .. now+ttl) and signs tmpl with
// the CA's key. It refuses to issue outside the validity of the signing
// certificate (root or intermediate).
func (c *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey, now time.Time, ttl time.Duration) ([]byte, error) {
	if now.IsZero() {
		return nil, fmt.Errorf("%w: time not set", ErrInvalidRequest)
	}
	tmpl.SerialNumber = serialNumber()
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(ttl)
	if now.Before(c.cert.NotBefore) || now.After(c.cert.NotAfter) {
		return nil, fmt.Errorf("%w: issuing at %s, %s valid %s to %s", ErrCAValidity,
			now.UTC().Format(time.RFC3339), c.kind(), c.cert.NotBefore.UTC().Format(time.RFC3339), c.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		return nil, fmt.Errorf("%w: certificate would expire at %s, after the %s at %s", ErrCAValidity,
			tmpl.NotAfter.UTC().Format(time.RFC3339), c.kind(), c.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return der, nil
}

// serialNumber returns a positive, non-zero 128-bit random serial.
func serialNumber() *big.Int {
	var b [16]byte
	for {
		rand.Read(b[:]) // never fails since Go 1.24: it crashes the program instead
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n
		}
	}
}

// keyUsageFor returns the key usage a leaf for pub carries, or an error
// wrapping ErrUnsupportedKey.
func keyUsageFor(pub crypto.PublicKey) (x509.KeyUsage, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil {
			break
		}
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return 0, fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, curveName(k.Curve))
		}
		if _, err := k.ECDH(); err != nil {
			return 0, fmt.Errorf("%w: malformed ECDSA key: %w", ErrUnsupportedKey, err)
		}
		return x509.KeyUsageDigitalSignature, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return 0, fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
		return x509.KeyUsageDigitalSignature, nil
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			break
		}
		if bits := k.N.BitLen(); bits < 2048 || bits > 8192 {
			return 0, fmt.Errorf("%w: RSA key of %d bits", ErrUnsupportedKey, bits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return 0, fmt.Errorf("%w: RSA public exponent %d", ErrUnsupportedKey, k.E)
		}
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, nil
	default:
		return 0, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	return 0, fmt.Errorf("%w: nil %T", ErrUnsupportedKey, pub)
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "<nil>"
	}
	return c.Params().Name
}

func resolveTTL(ttl, def, limit time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return def, nil
	case ttl < 0:
		return 0, fmt.Errorf("%w: negative TTL %s", ErrInvalidRequest, ttl)
	case ttl > limit:
		return 0, fmt.Errorf("%w: TTL %s exceeds the maximum %s", ErrInvalidRequest, ttl, limit)
	}
	return ttl, nil
}

// checkDNSNames accepts lowercase host names (RFC 1123 labels, at most 253
// bytes, no trailing dot) and, if wildcard, a leading "*" label followed by
// at least two labels.
func checkDNSNames(names []string, wildcard bool) error {
	for _, name := range names {
		if err := checkDNSName(name, wildcard); err != nil {
			return fmt.Errorf("%w: DNS name %q: %w", ErrInvalidRequest, name, err)
		}
	}
	return nil
}

func checkDNSName(name string, wildcard bool) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("length %d, want 1 to 253", len(name))
	}
	if lower := strings.ToLower(name); lower != name {
		return fmt.Errorf("upper case is not allowed: write %q", lower)
	}
	labels := strings.Split(name, ".")
	if labels[0] == "*" {
		if !wildcard {
			return fmt.Errorf("wildcards are not allowed here")
		}
		if len(labels) < 3 {
			return fmt.Errorf("a wildcard needs at least two labels after it (*.example.org, not *.org)")
		}
		labels = labels[1:]
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("label %q: length %d, want 1 to 63", l, len(l))
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("label %q has %q (allowed: a-z 0-9 -)", l, r)
			}
		}
	}
	return nil
}

// maxCommonName is the upper bound of an X.509 common name (RFC 5280
// ub-common-name).
const maxCommonName = 64

// The parameters of CheckSecretCertNames, as a SecretNameError names them.
const (
	ParamSubject  = "subject"
	ParamDNSNames = "dnsNames"
)

// SecretNameError is one name of an x509 secret that CheckSecretCertNames
// refuses. It wraps ErrInvalidRequest.
type SecretNameError struct {
	// Param is the parameter at fault: ParamSubject, ParamDNSNames (then
	// Index is the position in dnsNames), or "" when no name was given.
	Param string
	Index int
	// Msg says what is wrong and how to fix it.
	Msg string
}

func (e *SecretNameError) Error() string {
	switch e.Param {
	case "":
		return e.Msg
	case ParamDNSNames:
		return fmt.Sprintf("%s[%d]: %s", e.Param, e.Index, e.Msg)
	}
	return e.Param + ": " + e.Msg
}

// Unwrap returns ErrInvalidRequest.
func (e *SecretNameError) Unwrap() error { return ErrInvalidRequest }

// CheckSecretCertNames reports whether IssueSecretCert accepts subject and
// dnsNames, so that a manifest can be checked before any certificate is
// issued. The rules: at least one of the two is given; subject, if given,
// is 1 to 64 bytes of printable UTF-8 (it becomes the common name); if it
// is empty, dnsNames[0] becomes the common name and must be at most 64
// bytes; each DNS name is lower case, RFC 1123 labels, at most 253 bytes,
// no trailing dot, optionally with a leading "*" label followed by at least
// two labels. It returns every problem, each a *SecretNameError, joined
// with errors.Join; nil when the names are fine.
func CheckSecretCertNames(subject string, dnsNames []string) error {
	var errs []error
	add := func(param string, index int, format string, args ...any) {
		errs = append(errs, &SecretNameError{Param: param, Index: index, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case subject == "" && len(dnsNames) == 0:
		add("", 0, "no subject and no DNS names: give a subject (the common name), dnsNames, or both")
	case subject == "" && len(dnsNames[0]) > maxCommonName:
		add(ParamSubject, 0, "no subject, so the first DNS name would be the common name, but it is %d bytes and a common name is at most %d: set a subject", len(dnsNames[0]), maxCommonName)
	case subject == "":
	case len(subject) > maxCommonName:
		add(ParamSubject, 0, "subject is %d bytes; a common name is at most %d", len(subject), maxCommonName)
	case !utf8.ValidString(subject):
		add(ParamSubject, 0, "subject is not valid UTF-8")
	default:
		if i := strings.IndexFunc(subject, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
			r, _ := utf8.DecodeRuneInString(subject[i:])
			add(ParamSubject, 0, "subject %q has the non-printable character %q", subject, r)
		}
	}
	for i, name := range dnsNames {
		if err := checkDNSName(name, true); err != nil {
			add(ParamDNSNames, i, "%q is not a DNS name for a certificate: %v", name, err)
		}
	}
	return errors.Join(errs...)
}
