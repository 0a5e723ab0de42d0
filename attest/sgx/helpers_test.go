package sgx_test

// The tests of this package do not import attest/simtee: its SNP half links
// go-sev-guest, which would bloat the fuzzing binary's coverage map and
// starve FuzzParseQuote. attest/simtee tests its SGX quotes against this
// verifier instead. Here, a test-made PCK chain (testCA) and a fake quoting
// enclave (testCA.quote) mint quotes through the real layout.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/sgx"
)

// now is the verification time of every test that does not vary it.
var now = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// Validity of every test-made certificate.
var (
	testNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	testNotAfter  = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verify checks signatures and chain only (Options.SkipCollateral), the
// verdict of a verifier without collateral; collateral_test.go covers the
// rest.
func verify(v *sgx.Verifier, quote []byte, at time.Time, allowSim bool) (*attest.Claims, error) {
	return v.Verify(context.Background(), &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: quote},
		attest.Options{Now: at, AllowSimulated: allowSim, SkipCollateral: true})
}

// mkCert issues tmpl with a fresh P-256 key, signed by parent (self-signed
// when parent is nil).
func mkCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, big.NewInt(1<<62)); err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = testNotBefore, testNotAfter
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// testCA is a throw-away PCK chain made by a test: root, intermediate, leaf.
type testCA struct {
	root    *x509.Certificate
	leafKey *ecdsa.PrivateKey
	pem     []byte // leaf, intermediate, root
}

// intelPCKExtension is the SGX extension of the real PCK certificate in
// quote.release.bin (FMSPC 00906ed50000), reused by test-made leaves.
func intelPCKExtension(t testing.TB) pkix.Extension {
	t.Helper()
	q, err := sgx.ParseQuote(readTestdata(t, "quote.release.bin"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(q.PCKChain[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(sgx.OIDSGXExtensions) {
			return e
		}
	}
	t.Fatal("no SGX extension in the Intel PCK certificate")
	return pkix.Extension{}
}

// newTestCA makes a chain unrelated to any other; with sgxExt the leaf
// carries the SGX extension of a real Intel PCK certificate.
func newTestCA(t testing.TB, sgxExt bool) *testCA {
	t.Helper()
	root, rootKey := mkCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "test SGX Root CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	ca, caKey := mkCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "test PCK Platform CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, root, rootKey)
	leafTmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "test SGX PCK Certificate"}, KeyUsage: x509.KeyUsageDigitalSignature}
	if sgxExt {
		leafTmpl.ExtraExtensions = []pkix.Extension{intelPCKExtension(t)}
	}
	leaf, leafKey := mkCert(t, leafTmpl, ca, caKey)
	var p []byte
	for _, c := range []*x509.Certificate{leaf, ca, root} {
		p = append(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return &testCA{root: root, leafKey: leafKey, pem: append(p, 0)}
}

// quote mints a quote v3 for body as a quoting enclave certified by ca
// would: a fresh attestation key bound into the QE report data, the QE
// report signed by the leaf key, the quote signed by the attestation key.
// edit, if not nil, changes the quote before anything is signed.
func (ca *testCA) quote(t testing.TB, body sgx.ReportBody, edit func(*sgx.Quote)) []byte {
	t.Helper()
	attKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := attKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	q := &sgx.Quote{
		Header: sgx.Header{Version: 3, AttestationKeyType: 2, QESVN: 8, PCESVN: 13,
			QEVendorID: [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}},
		Body: body,
	}
	s := &q.Signature
	copy(s.AttestationKey[:], pub[1:])
	s.QEAuthData = make([]byte, 32)
	s.QEReport = sgx.ReportBody{ISVProdID: 1, ISVSVN: 8, Attributes: sgx.Attributes{Flags: 0x15, XFRM: 7}}
	h := sha256.Sum256(slices.Concat(pub[1:], s.QEAuthData))
	copy(s.QEReport.ReportData[:], h[:])
	s.CertDataType, s.CertData = sgx.CertDataPCKChain, ca.pem
	if edit != nil {
		edit(q)
	}
	return ca.sign(t, q, attKey)
}

// sign sets q's QE report signature (by ca's leaf key) and, when attKey is
// not nil, its quote signature, and returns the serialised quote.
func (ca *testCA) sign(t testing.TB, q *sgx.Quote, attKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	qeReport := b[sgx.SignedSize+4+128 : sgx.SignedSize+4+128+sgx.ReportBodySize]
	signRS(t, ca.leafKey, qeReport, &q.Signature.QEReportSignature)
	if attKey != nil {
		signRS(t, attKey, b[:sgx.SignedSize], &q.Signature.ISVSignature)
	}
	if b, err = q.Marshal(); err != nil {
		t.Fatal(err)
	}
	return b
}

func signRS(t testing.TB, k *ecdsa.PrivateKey, msg []byte, sig *[64]byte) {
	t.Helper()
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
}
