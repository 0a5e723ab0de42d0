package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest"
)

// maxIssuerChain bounds the certificates of a collateral issuer chain.
const maxIssuerChain = 8

// ParseIssuerChain reads a PEM certificate chain as Intel serves it in the
// SGX-*-Issuer-Chain headers (URL-decoded): CERTIFICATE blocks without
// headers, leaf first, separated only by whitespace.
func ParseIssuerChain(b []byte) ([]*x509.Certificate, error) {
	ders, err := splitPEM(b, maxIssuerChain)
	if err != nil {
		return nil, fmt.Errorf("issuer chain: %w", err)
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("issuer chain: certificate %d: %w", i, err)
		}
	}
	return certs, nil
}

// splitPEM returns the DER bytes of the PEM CERTIFICATE blocks of b, at
// most max of them: blocks without headers separated and surrounded only
// by whitespace. It is the one PEM chain splitter of Intel's collateral
// issuer chains and of the PCK chains of quotes (SplitPCKCertData).
func splitPEM(b []byte, max int) ([][]byte, error) {
	var ders [][]byte
	rest := b
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, errors.New("bytes outside PEM blocks")
		}
		blk, after := pem.Decode(rest)
		// pem.Decode skips a broken block and returns a later one; refuse that.
		if blk == nil || bytes.Count(rest[:len(rest)-len(after)], []byte("-----BEGIN ")) != 1 {
			return nil, errors.New("a PEM block does not decode")
		}
		if blk.Type != "CERTIFICATE" || len(blk.Headers) != 0 {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE without headers", blk.Type)
		}
		if len(ders) == max {
			return nil, fmt.Errorf("more than %d certificates", max)
		}
		ders = append(ders, blk.Bytes)
		rest = after
	}
	if len(ders) == 0 {
		return nil, errors.New("no certificate")
	}
	return ders, nil
}

// ParseCRL reads one CRL in DER or PEM ("X509 CRL"), nothing after it.
func ParseCRL(b []byte) (*x509.RevocationList, error) {
	der := b
	if t := bytes.TrimLeft(b, " \t\r\n"); bytes.HasPrefix(t, []byte("-----BEGIN ")) {
		blk, rest := pem.Decode(t)
		if blk == nil || blk.Type != "X509 CRL" || len(blk.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
			return nil, errors.New("CRL: want one PEM X509 CRL block and nothing else")
		}
		der = blk.Bytes
	}
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &outer); err != nil || len(rest) != 0 {
		return nil, errors.New("CRL: not exactly one DER value")
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("CRL: %w", err)
	}
	return crl, nil
}

// PCKCAOf says which Intel PCK CA issued a PCK certificate, from its
// issuer's common name ("Intel SGX PCK Processor CA" or "… Platform CA").
func PCKCAOf(pck *x509.Certificate) (CA, error) {
	switch cn := strings.ToLower(pck.Issuer.CommonName); {
	case strings.Contains(cn, "processor ca"):
		return ProcessorCA, nil
	case strings.Contains(cn, "platform ca"):
		return PlatformCA, nil
	}
	return "", fmt.Errorf("%w: PCK certificate issuer %q is neither a PCK Processor CA nor a PCK Platform CA", attest.ErrChain, pck.Issuer.CommonName)
}

// window is the time span in which a verified chain stays valid.
type window struct{ notBefore, notAfter time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.notBefore) && !t.After(w.notAfter) }

// verifyIssuerChain verifies a collateral issuer chain (PEM, leaf first) to
// root at now and returns its leaf, its certificates as verified (leaf …
// root) and the span in which they are all valid. A root certificate in the
// chain must carry root's key.
func verifyIssuerChain(pemChain []byte, root *x509.Certificate, now time.Time) (leaf *x509.Certificate, chain []*x509.Certificate, w window, err error) {
	certs, err := ParseIssuerChain(pemChain)
	if err != nil {
		return nil, nil, w, err
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		if selfSigned(c) {
			if !bytes.Equal(c.RawSubjectPublicKeyInfo, root.RawSubjectPublicKeyInfo) {
				return nil, nil, w, fmt.Errorf("issuer chain: root %q is not the trusted root %q", c.Subject.CommonName, root.Subject.CommonName)
			}
			continue
		}
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Intermediates: inter, Roots: roots, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, nil, w, fmt.Errorf("issuer chain of %q does not verify to %q at %s: %w",
			certs[0].Subject.CommonName, root.Subject.CommonName, now.UTC().Format(time.RFC3339), err)
	}
	chain = chains[0]
	w = window{chain[0].NotBefore, chain[0].NotAfter}
	for _, c := range chain[1:] {
		if c.NotBefore.After(w.notBefore) {
			w.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(w.notAfter) {
			w.notAfter = c.NotAfter
		}
	}
	return chain[0], chain, w, nil
}

// tcbSigningCN is what the subject common name of Intel's TCB signing
// certificate ("Intel SGX TCB Signing") contains; the simulated one
// ("trustbound SIMULATED SGX TCB Signing") too.
const tcbSigningCN = "SGX TCB Signing"

// verifyTCBSigningChain verifies the issuer chain of TCB info or a QE
// identity as Intel's QVL does (TCBSigningChain::verify): it is exactly
// [signer, root], root carrying the key of the trusted root; the signer was
// issued directly by the root, is valid at now, is not a CA, carries no SGX
// extension (it is not a PCK certificate) and is named as a TCB signing
// certificate. Any other certificate that chains to the root — a PCK CA,
// or a platform's own PCK certificate, whose key the platform holds — does
// not sign collateral. The error says which rule failed.
func verifyTCBSigningChain(pemChain []byte, root *x509.Certificate, now time.Time) (signer *x509.Certificate, chain []*x509.Certificate, w window, err error) {
	if signer, chain, w, err = verifyIssuerChain(pemChain, root, now); err != nil {
		return nil, nil, w, err
	}
	certs, err := ParseIssuerChain(pemChain)
	if err != nil { // parsed by verifyIssuerChain already
		return nil, nil, w, err
	}
	switch {
	case len(certs) != 2 || !selfSigned(certs[1]) || len(chain) != 2:
		return nil, nil, w, fmt.Errorf("%w: the issuer chain is %d certificates verifying through %d, want exactly the TCB signing certificate and the root that issued it",
			errNotTCBSigner, len(certs), len(chain))
	case signer.BasicConstraintsValid && signer.IsCA:
		return nil, nil, w, fmt.Errorf("%w: %q is a CA", errNotTCBSigner, signer.Subject.CommonName)
	case hasSGXExtension(signer):
		return nil, nil, w, fmt.Errorf("%w: %q carries the SGX extension (%s) of a PCK certificate", errNotTCBSigner, signer.Subject.CommonName, OIDSGXExtensions)
	case !strings.Contains(signer.Subject.CommonName, tcbSigningCN):
		return nil, nil, w, fmt.Errorf("%w: the subject %q does not name an %s certificate", errNotTCBSigner, signer.Subject.CommonName, tcbSigningCN)
	}
	return signer, chain, w, nil
}

// errNotTCBSigner is the refusal of a collateral signer that is not a TCB
// signing certificate.
var errNotTCBSigner = errors.New("the signer is not Intel's TCB signing certificate")

// hasSGXExtension reports whether c carries the SGX extension of PCK
// certificates, or an extension under its arc.
func hasSGXExtension(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if len(e.Id) >= len(OIDSGXExtensions) && e.Id[:len(OIDSGXExtensions)].Equal(OIDSGXExtensions) {
			return true
		}
	}
	return false
}

// verifyRS checks an r||s ECDSA P-256 signature over SHA-256(msg) by c.
func verifyRS(c *x509.Certificate, msg []byte, sig [64]byte) error {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%q has no ECDSA P-256 key", c.Subject.CommonName)
	}
	if !verifyRSKey(pub, msg, &sig) {
		return fmt.Errorf("signature does not verify with the key of %q", c.Subject.CommonName)
	}
	return nil
}

// selfSigned reports whether c names and verifies as its own issuer.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

// revocations are the serial numbers a CRL lists, keyed by
// big.Int.String, with its validity.
type revocations struct {
	issuer                 string
	thisUpdate, nextUpdate time.Time
	serials                map[string]bool
}

// verifyCRL checks crl's signature by issuer and that crl names issuer.
func verifyCRL(crl *x509.RevocationList, issuer *x509.Certificate) (*revocations, error) {
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return nil, fmt.Errorf("CRL issuer is not %q", issuer.Subject.CommonName)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("CRL signature does not verify with the key of %q: %w", issuer.Subject.CommonName, err)
	}
	if crl.NextUpdate.IsZero() {
		return nil, errors.New("CRL has no nextUpdate")
	}
	r := &revocations{issuer: issuer.Subject.CommonName, thisUpdate: crl.ThisUpdate, nextUpdate: crl.NextUpdate,
		serials: make(map[string]bool, len(crl.RevokedCertificateEntries))}
	for _, e := range crl.RevokedCertificateEntries {
		r.serials[e.SerialNumber.String()] = true
	}
	return r, nil
}

func (r *revocations) fresh(now time.Time, what string) error {
	switch {
	case now.Before(r.thisUpdate):
		return fmt.Errorf("%w: the %s (issued by %q) is not valid before %s", ErrCollateral, what, r.issuer, r.thisUpdate.UTC().Format(time.RFC3339))
	case now.After(r.nextUpdate):
		return fmt.Errorf("%w: the %s (issued by %q) is stale: its nextUpdate was %s; fetch a fresh one", ErrCollateral, what, r.issuer, r.nextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

func (r *revocations) revoked(c *x509.Certificate) bool { return r.serials[c.SerialNumber.String()] }

// RevokedError is a certificate of the PCK chain that Intel revoked. It
// wraps attest.ErrChain; the platform's TCB status is then Revoked.
type RevokedError struct {
	// Subject is the revoked certificate's common name, Serial its serial.
	Subject string
	Serial  *big.Int
	// CRL names the list that revokes it.
	CRL string
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("%v: certificate %q serial %x is revoked by the %s (TCB status %s)",
		attest.ErrChain, e.Subject, e.Serial, e.CRL, Revoked)
}

// Unwrap returns attest.ErrChain.
func (e *RevokedError) Unwrap() error { return attest.ErrChain }
