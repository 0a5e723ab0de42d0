// Package dcaptest is a fake Intel for tests: a PKI shaped like Intel's
// (root, PCK CA, PCK certificates with the SGX extension, TCB signing
// certificate) whose keys are made on the spot, and encoders that write TCB
// info, QE identities and CRLs as Intel serves them, so that attest/dcap's
// real code verifies them. Nothing it makes is Intel's. Production code
// does not import it: attest/simtee writes its documents with
// attest/internal/dcapdoc, which this package wraps.
package dcaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/internal/dcapdoc"
)

// PKI is a fake Intel SGX PKI.
type PKI struct {
	Root, PCKCA, TCBSigning          *x509.Certificate
	RootKey, PCKCAKey, TCBSigningKey *ecdsa.PrivateKey
	NotBefore, NotAfter              time.Time
}

// NewPKI makes a root, a PCK CA of kind ca ("… PCK Processor CA" or "…
// PCK Platform CA") and a TCB signing certificate, all named after prefix
// and valid from notBefore to notAfter.
func NewPKI(prefix string, ca dcap.CA, notBefore, notAfter time.Time) (*PKI, error) {
	p := &PKI{NotBefore: notBefore, NotAfter: notAfter}
	var err error
	if p.Root, p.RootKey, err = p.issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: prefix + " SGX Root CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLen: 1,
	}, nil, nil); err != nil {
		return nil, err
	}
	caName := map[dcap.CA]string{dcap.ProcessorCA: "Processor", dcap.PlatformCA: "Platform"}[ca]
	if caName == "" {
		return nil, fmt.Errorf("dcaptest: unknown PCK CA %q", ca)
	}
	if p.PCKCA, p.PCKCAKey, err = p.issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: prefix + " SGX PCK " + caName + " CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLenZero: true,
	}, p.Root, p.RootKey); err != nil {
		return nil, err
	}
	if p.TCBSigning, p.TCBSigningKey, err = p.issue(&x509.Certificate{
		Subject:  pkix.Name{CommonName: prefix + " SGX TCB Signing"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}, p.Root, p.RootKey); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PKI) issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore, tmpl.NotAfter = p.NotBefore, p.NotAfter
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, k, err
}

// PCK issues a PCK certificate whose SGX extension says x (PlatformInstanceID
// only when not nil) and returns it with its key.
func (p *PKI) PCK(x *dcap.PCKExtensions) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	ext, err := EncodePCKExtensions(x)
	if err != nil {
		return nil, nil, err
	}
	return p.issue(&x509.Certificate{
		Subject:         pkix.Name{CommonName: strings.TrimSuffix(p.Root.Subject.CommonName, " SGX Root CA") + " SGX PCK Certificate"},
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtraExtensions: []pkix.Extension{{Id: dcap.OIDSGXExtensions, Value: ext}},
	}, p.PCKCA, p.PCKCAKey)
}

type entry struct {
	ID    asn1.ObjectIdentifier
	Value any
}

func sub(arcs ...int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier{}, dcap.OIDSGXExtensions...), arcs...)
}

// EncodePCKExtensions encodes x as the SGX extension of Intel's PCK
// certificate profile: a SEQUENCE of (OID, value) SEQUENCEs.
func EncodePCKExtensions(x *dcap.PCKExtensions) ([]byte, error) {
	var tcb []entry
	for i, svn := range x.TCB.CompSVN {
		tcb = append(tcb, entry{sub(2, i+1), int(svn)})
	}
	tcb = append(tcb, entry{sub(2, 17), int(x.TCB.PCESVN)}, entry{sub(2, 18), x.TCB.CPUSVN[:]})
	entries := []entry{
		{sub(1), x.PPID[:]},
		{sub(2), tcb},
		{sub(3), x.PCEID[:]},
		{sub(4), x.FMSPC[:]},
		{sub(5), asn1.Enumerated(x.SGXType)},
	}
	if x.PlatformInstanceID != nil {
		entries = append(entries, entry{sub(6), x.PlatformInstanceID})
	}
	return asn1.Marshal(entries)
}

// ChainPEM is the PEM encoding of certs, in order.
func ChainPEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// CRL makes a DER CRL by issuer listing serials, valid from thisUpdate to
// nextUpdate.
func CRL(issuer *x509.Certificate, key *ecdsa.PrivateKey, thisUpdate, nextUpdate time.Time, serials ...*big.Int) ([]byte, error) {
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: thisUpdate})
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
}

// Sign returns the body Intel serves for a signed document:
// {"<key>":<doc>,"signature":"<hex r||s>"}, signed by k over doc's bytes.
func Sign(key string, doc []byte, k *ecdsa.PrivateKey) ([]byte, error) {
	return dcapdoc.Sign(key, doc, k)
}

// MarshalTCBInfo writes t (its Signed and Signature ignored) as the
// "tcbInfo" JSON value Intel signs.
func MarshalTCBInfo(t *dcap.TCBInfo) ([]byte, error) { return dcapdoc.MarshalTCBInfo(t) }

// MarshalQEIdentity writes q (its Signed and Signature ignored) as the
// "enclaveIdentity" JSON value Intel signs.
func MarshalQEIdentity(q *dcap.QEIdentity) ([]byte, error) { return dcapdoc.MarshalQEIdentity(q) }

// Revoked lists serial numbers for Collateral's CRLs.
type Revoked struct {
	// ByPCKCA go on the PCK CRL, ByRoot on the root CA CRL.
	ByPCKCA, ByRoot []*big.Int
}

// Collateral signs t and q with the TCB signing key and makes both CRLs
// (valid from crlThis to crlNext, listing rev), as a Source would serve
// them for a platform of this PKI.
func (p *PKI) Collateral(t *dcap.TCBInfo, q *dcap.QEIdentity, crlThis, crlNext time.Time, rev Revoked) (*dcap.Collateral, error) {
	tj, err := MarshalTCBInfo(t)
	if err != nil {
		return nil, err
	}
	qj, err := MarshalQEIdentity(q)
	if err != nil {
		return nil, err
	}
	c := &dcap.Collateral{
		PCKCRLIssuerChain:     ChainPEM(p.PCKCA, p.Root),
		TCBInfoIssuerChain:    ChainPEM(p.TCBSigning, p.Root),
		QEIdentityIssuerChain: ChainPEM(p.TCBSigning, p.Root),
	}
	if c.TCBInfo, err = Sign("tcbInfo", tj, p.TCBSigningKey); err != nil {
		return nil, err
	}
	if c.QEIdentity, err = Sign("enclaveIdentity", qj, p.TCBSigningKey); err != nil {
		return nil, err
	}
	if c.PCKCRL, err = CRL(p.PCKCA, p.PCKCAKey, crlThis, crlNext, rev.ByPCKCA...); err != nil {
		return nil, err
	}
	if c.RootCACRL, err = CRL(p.Root, p.RootKey, crlThis, crlNext, rev.ByRoot...); err != nil {
		return nil, err
	}
	return c, nil
}
