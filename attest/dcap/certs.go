package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
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
	var certs []*x509.Certificate
	rest := b
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, errors.New("issuer chain: bytes outside PEM blocks")
		}
		blk, after := pem.Decode(rest)
		if blk == nil || bytes.Count(rest[:len(rest)-len(after)], []byte("-----BEGIN ")) != 1 {
			return nil, errors.New("issuer chain: a PEM block does not decode")
		}
		if blk.Type != "CERTIFICATE" || len(blk.Headers) != 0 {
			return nil, fmt.Errorf("issuer chain: PEM block %q, want CERTIFICATE without headers", blk.Type)
		}
		if len(certs) == maxIssuerChain {
			return nil, fmt.Errorf("issuer chain: more than %d certificates", maxIssuerChain)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("issuer chain: certificate %d: %w", len(certs), err)
		}
		certs = append(certs, c)
		rest = after
	}
	if len(certs) == 0 {
		return nil, errors.New("issuer chain: no certificate")
	}
	return certs, nil
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
		if bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil {
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

// verifyRS checks an r||s ECDSA P-256 signature over SHA-256(msg).
func verifyRS(c *x509.Certificate, msg []byte, sig [64]byte) error {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%q has no ECDSA P-256 key", c.Subject.CommonName)
	}
	h := sha256.Sum256(msg)
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return fmt.Errorf("signature does not verify with the key of %q", c.Subject.CommonName)
	}
	return nil
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
