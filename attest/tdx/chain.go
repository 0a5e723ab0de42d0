package tdx

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

// pck is a PCK certificate chain verified to a trusted (or simulated) root.
// It depends on the chain's bytes and the Verifier's roots only, never on
// the quote or the time, so the Verifier caches it by the SHA-256 of the
// certification data and checks the validity window on every use.
type pck struct {
	// chain is the verified chain: PCK leaf, PCK CA, root (the root from
	// the Verifier's pool, never the quote's copy).
	chain []*x509.Certificate
	key   *ecdsa.PublicKey
	ext   *dcap.PCKExtensions
	ca    dcap.CA
	// simulated is true when the chain leads only to a simulated root.
	simulated bool
	// notBefore and notAfter bound the time at which every certificate of
	// the chain is valid (inclusive, as x509.Certificate.Verify).
	notBefore, notAfter time.Time
}

func (p *pck) validAt(t time.Time) bool {
	return !t.Before(p.notBefore) && !t.After(p.notAfter)
}

// verifyPCKChain parses the DER certificates of a quote's PCK chain and
// verifies them at now, first to roots, then to simulated (which may be
// nil). A self-signed last certificate in the quote is never trusted: it
// must carry the key of the root reached.
func verifyPCKChain(ders [][]byte, roots, simulated *x509.CertPool, now time.Time) (*pck, error) {
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: tdx quote: PCK chain certificate %d: %w", attest.ErrMalformed, i, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	var presented *x509.Certificate
	for i, c := range certs[1:] {
		if i == len(certs)-2 && selfSigned(c) {
			presented = c
			continue
		}
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Intermediates: inter,
		Roots:         roots,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	p := &pck{}
	chains, err := leaf.Verify(opts)
	if err != nil && simulated != nil {
		opts.Roots = simulated
		var serr error
		if chains, serr = leaf.Verify(opts); serr == nil {
			err, p.simulated = nil, true
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: tdx: PCK certificate %q (issuer %q) does not chain to a trusted Intel SGX root at %s: %w",
			attest.ErrChain, leaf.Subject.CommonName, leaf.Issuer.CommonName, now.UTC().Format(time.RFC3339), err)
	}
	for _, ch := range chains {
		r := ch[len(ch)-1]
		if len(ch) == 3 && (presented == nil || bytes.Equal(r.RawSubjectPublicKeyInfo, presented.RawSubjectPublicKeyInfo)) {
			p.chain = ch
			break
		}
	}
	if p.chain == nil {
		return nil, fmt.Errorf("%w: tdx: the PCK chain is not PCK certificate, PCK CA and root, or the quote's root certificate %q does not carry the key of the trusted root",
			attest.ErrChain, certs[len(certs)-1].Subject.CommonName)
	}
	var ok bool
	if p.key, ok = leaf.PublicKey.(*ecdsa.PublicKey); !ok || p.key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: tdx: PCK certificate key is not ECDSA P-256", attest.ErrChain)
	}
	if p.ext, err = dcap.ParsePCKExtensions(leaf); err != nil {
		return nil, fmt.Errorf("%w: tdx: %w", attest.ErrChain, err)
	}
	if p.ca, err = dcap.PCKCAOf(leaf); err != nil {
		return nil, fmt.Errorf("tdx: %w", err)
	}
	p.notBefore, p.notAfter = leaf.NotBefore, leaf.NotAfter
	for _, c := range p.chain[1:] {
		if c.NotBefore.After(p.notBefore) {
			p.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(p.notAfter) {
			p.notAfter = c.NotAfter
		}
	}
	return p, nil
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}
