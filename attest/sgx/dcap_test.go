package sgx_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/dcap/dcaptest"
	"github.com/trustbound/trustbound/attest/sgx"
)

// simIntel is the simulated Intel chain of attest/simtee, read from its
// files (this package's tests do not import attest/simtee; see
// helpers_test.go), and the simulated quote testdata/simtee_quote.bin.
type simIntel struct {
	root, pckCA, pck, tcbSigning *x509.Certificate
	pckKey, tcbKey               *ecdsa.PrivateKey
	rootCRL, caCRL               []byte
	quote                        []byte
}

func loadSimIntel(t *testing.T) *simIntel {
	t.Helper()
	dir := filepath.Join("..", "simtee", "intel")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cert := func(name string) *x509.Certificate {
		blk, _ := pem.Decode(read(name))
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	key := func(name string) *ecdsa.PrivateKey {
		blk, _ := pem.Decode(read(name))
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k.(*ecdsa.PrivateKey)
	}
	return &simIntel{
		root: cert("sgx_root_ca.pem"), pckCA: cert("sgx_pck_processor_ca.pem"), pck: cert("sgx_pck.pem"), tcbSigning: cert("sgx_tcb_signing.pem"),
		pckKey: key("sgx_pck.key.pem"), tcbKey: key("sgx_tcb_signing.key.pem"),
		rootCRL: read("sgx_root_ca.crl.pem"), caCRL: read("sgx_pck_processor_ca.crl.pem"),
		quote: readTestdata(t, "simtee_quote.bin"),
	}
}

// collateral signs TCB info and a QE identity for the simulated quote's
// platform and quoting enclave with key, served with issuer chain chain.
func (s *simIntel) collateral(t *testing.T, now time.Time, key *ecdsa.PrivateKey, chain []byte) *dcap.Collateral {
	t.Helper()
	q, err := sgx.ParseQuote(s.quote)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := sgx.ParsePCKExtensions(s.pck)
	if err != nil {
		t.Fatal(err)
	}
	qe := &q.Signature.QEReport
	tcb := &dcap.TCBInfo{ID: dcap.TCBInfoSGX, Version: dcap.TCBInfoVersion, IssueDate: now.Add(-time.Hour), NextUpdate: now.AddDate(0, 0, 30),
		FMSPC: ext.FMSPC, PCEID: ext.PCEID, TCBEvaluationDataNumber: 4242,
		TCBLevels: []dcap.TCBLevel{{SGXComponents: ext.TCB.CompSVN, PCESVN: ext.TCB.PCESVN, TCBDate: now.AddDate(-1, 0, 0), Status: dcap.UpToDate}}}
	qid := &dcap.QEIdentity{ID: dcap.QEIdentitySGX, Version: dcap.QEIdentityVersion, IssueDate: now.Add(-time.Hour), NextUpdate: now.AddDate(0, 0, 30),
		TCBEvaluationDataNumber: 4242, MRSigner: qe.MRSigner, ISVProdID: qe.ISVProdID,
		TCBLevels: []dcap.EnclaveTCBLevel{{ISVSVN: qe.ISVSVN, TCBDate: now.AddDate(-1, 0, 0), Status: dcap.UpToDate}}}
	tj, err := dcaptest.MarshalTCBInfo(tcb)
	if err != nil {
		t.Fatal(err)
	}
	qj, err := dcaptest.MarshalQEIdentity(qid)
	if err != nil {
		t.Fatal(err)
	}
	c := &dcap.Collateral{PCKCRL: s.caCRL, PCKCRLIssuerChain: dcaptest.ChainPEM(s.pckCA, s.root), RootCACRL: s.rootCRL,
		TCBInfoIssuerChain: chain, QEIdentityIssuerChain: chain}
	if c.TCBInfo, err = dcaptest.Sign("tcbInfo", tj, key); err != nil {
		t.Fatal(err)
	}
	if c.QEIdentity, err = dcaptest.Sign("enclaveIdentity", qj, key); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTCBInfoSignedByPCKLeafRefused is the regression test of a review
// finding: TCB info and a QE identity signed by a platform's own PCK key,
// served with the PCK chain as their issuer chain, were accepted (any
// certificate chaining to the root could sign collateral), so anyone
// holding one PCK key could forge UpToDate collateral. Only a TCB signing
// certificate issued directly by the root signs collateral now.
func TestTCBInfoSignedByPCKLeafRefused(t *testing.T) {
	s := loadSimIntel(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	verify := func(c *dcap.Collateral) (*attest.Claims, error) {
		v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{}, Simulated: []*x509.Certificate{s.root}, SimulatedCollateral: dcap.NewStaticSource(c)})
		return verifyOpts(v, quoteEvidence(s.quote), attest.Options{Now: now, AllowSimulated: true})
	}
	// The same documents signed by the simulated TCB signing certificate
	// verify: what is refused below is the signer alone.
	c, err := verify(s.collateral(t, now, s.tcbKey, dcaptest.ChainPEM(s.tcbSigning, s.root)))
	if err != nil || c.TCB.Status != "UpToDate" || c.Platform["tcb_evaluation_data_number"] != "4242" {
		t.Fatalf("genuine simulated collateral: claims %+v, err %v", c, err)
	}
	for name, chain := range map[string][]byte{
		"PCK chain as issuer chain":          dcaptest.ChainPEM(s.pck, s.pckCA, s.root),
		"PCK chain without the root":         dcaptest.ChainPEM(s.pck, s.pckCA),
		"PCK certificate and root (no CA)":   dcaptest.ChainPEM(s.pck, s.root),
		"the TCB signing chain (wrong key)":  dcaptest.ChainPEM(s.tcbSigning, s.root),
		"PCK chain before the signing chain": dcaptest.ChainPEM(s.pck, s.pckCA, s.tcbSigning, s.root),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := verify(s.collateral(t, now, s.pckKey, chain))
			var rej *dcap.RejectedError
			if !errors.Is(err, dcap.ErrCollateral) || !errors.As(err, &rej) || !strings.Contains(err.Error(), "TCB info") {
				t.Fatalf("ACCEPTED or refused for another reason: claims %+v, err %v", c, err)
			}
		})
	}
}

// TestCollateralSignerRole: of the certificates that chain to the root,
// only a TCB signing certificate signs TCB info and QE identities: issued
// directly by the root, not a CA, without the SGX extension, named "… SGX
// TCB Signing" (Intel's QVL, TCBSigningChain::verify). Each is refused
// with the rule it breaks, as a dcap.RejectedError.
func TestCollateralSignerRole(t *testing.T) {
	f := newFakeIntel(t)
	platform := [16]uint8{20, 20, 2, 4, 1, 128, 14}
	at := fakeFrom.Add(time.Hour)
	quote := f.ca.quote(t, sgx.ReportBody{MREnclave: [32]byte{1}}, nil)
	pki := f.pki
	issue := func(cn string, ca bool, sgxExt bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		t.Helper()
		k, err := ecdsa.GenerateKey(pki.TCBSigningKey.Curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: pki.NotBefore, NotAfter: pki.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature}
		if ca {
			tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
		}
		if sgxExt {
			ext, err := dcaptest.EncodePCKExtensions(f.ext)
			if err != nil {
				t.Fatal(err)
			}
			tmpl.ExtraExtensions = []pkix.Extension{{Id: dcap.OIDSGXExtensions, Value: ext}}
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
	signedBy := func(key *ecdsa.PrivateKey, chain []byte) dcap.Source {
		c := f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(qeLevel(8, dcap.UpToDate)), dcaptest.Revoked{})
		tcb, err := dcap.ParseTCBInfo(c.TCBInfo)
		if err != nil {
			t.Fatal(err)
		}
		qe, err := dcap.ParseQEIdentity(c.QEIdentity)
		if err != nil {
			t.Fatal(err)
		}
		if c.TCBInfo, err = dcaptest.Sign("tcbInfo", tcb.Signed, key); err != nil {
			t.Fatal(err)
		}
		if c.QEIdentity, err = dcaptest.Sign("enclaveIdentity", qe.Signed, key); err != nil {
			t.Fatal(err)
		}
		c.TCBInfoIssuerChain, c.QEIdentityIssuerChain = chain, chain
		return dcap.NewStaticSource(c)
	}
	caSigner, caSignerKey := issue("fake Intel SGX TCB Signing", true, false, pki.Root, pki.RootKey)
	extSigner, extSignerKey := issue("fake Intel SGX TCB Signing", false, true, pki.Root, pki.RootKey)
	misnamed, misnamedKey := issue("fake Intel SGX Attestation Report Signing", false, false, pki.Root, pki.RootKey)
	under, underKey := issue("fake Intel SGX TCB Signing", false, false, pki.PCKCA, pki.PCKCAKey)
	for _, tt := range []struct {
		name string
		src  dcap.Source
		msg  string
	}{
		{"the PCK CA", signedBy(pki.PCKCAKey, dcaptest.ChainPEM(pki.PCKCA, pki.Root)), `TCB info is not signed by Intel: the signer is not Intel's TCB signing certificate: "fake Intel SGX PCK Platform CA" is a CA`},
		{"the PCK certificate", signedBy(f.ca.leafKey, dcaptest.ChainPEM(f.pck, pki.PCKCA, pki.Root)), "TCB info is not signed by Intel: the signer is not Intel's TCB signing certificate: the issuer chain is 3 certificates"},
		{"a CA named as the TCB signer", signedBy(caSignerKey, dcaptest.ChainPEM(caSigner, pki.Root)), "is a CA"},
		{"a signer with the SGX extension", signedBy(extSignerKey, dcaptest.ChainPEM(extSigner, pki.Root)), "carries the SGX extension"},
		{"a signer not named TCB Signing", signedBy(misnamedKey, dcaptest.ChainPEM(misnamed, pki.Root)), `"fake Intel SGX Attestation Report Signing" does not name an SGX TCB Signing certificate`},
		{"a TCB signer under the PCK CA", signedBy(underKey, dcaptest.ChainPEM(under, pki.PCKCA, pki.Root)), "the issuer chain is 3 certificates verifying through 3"},
		{"the TCB signing certificate without the root", signedBy(pki.TCBSigningKey, dcaptest.ChainPEM(pki.TCBSigning)), "the issuer chain is 1 certificates"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{pki.Root}, Collateral: tt.src})
			_, err := verifyOpts(v, quoteEvidence(quote), attest.Options{Now: at})
			var rej *dcap.RejectedError
			if !errors.Is(err, dcap.ErrCollateral) || !errors.As(err, &rej) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want a RejectedError about %q", err, tt.msg)
			}
		})
	}
	// The TCB signing certificate itself, re-signing the same documents.
	v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{pki.Root}, Collateral: signedBy(pki.TCBSigningKey, dcaptest.ChainPEM(pki.TCBSigning, pki.Root))})
	if c, err := verifyOpts(v, quoteEvidence(quote), attest.Options{Now: at}); err != nil || c.TCB.Status != "UpToDate" {
		t.Fatalf("the TCB signing certificate: claims %+v, err %v", c, err)
	}
}

// invalidatingSource is a fake caching dcap.Source: it serves fixed
// collateral and records the platforms it was told to drop.
type invalidatingSource struct {
	dcap.Source
	dropped []string
}

func (s *invalidatingSource) InvalidateCollateral(kind dcap.Kind, fmspc [6]byte, ca dcap.CA) {
	s.dropped = append(s.dropped, fmt.Sprintf("%s/%x/%s", kind, fmspc, ca))
}

var _ dcap.Invalidator = (*invalidatingSource)(nil)

// TestRejectedCollateralInvalidated: collateral refused as not genuine is
// dropped from a caching source (dcap.Invalidator), once per refusal;
// stale collateral, a platform that does not match, and a good verdict
// drop nothing.
func TestRejectedCollateralInvalidated(t *testing.T) {
	f := newFakeIntel(t)
	platform := [16]uint8{20, 20, 2, 4, 1, 128, 14}
	at := fakeFrom.Add(time.Hour)
	quote := f.ca.quote(t, sgx.ReportBody{MREnclave: [32]byte{1}}, nil)
	good := f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(qeLevel(8, dcap.UpToDate)), dcaptest.Revoked{})
	forged := *good
	forged.TCBInfo = bytes.Replace(bytes.Clone(good.TCBInfo), []byte(`"tcbEvaluationDataNumber":19`), []byte(`"tcbEvaluationDataNumber":20`), 1)
	wrongSigner := *good
	wrongSigner.QEIdentityIssuerChain = good.PCKCRLIssuerChain
	notJSON := *good
	notJSON.QEIdentity = good.QEIdentity[1:]
	otherFMSPC := f.tcbInfo(level(platform, 13, dcap.UpToDate))
	otherFMSPC.FMSPC[5] = 1
	want := fmt.Sprintf("sgx/%x/platform", f.ext.FMSPC)
	for _, tt := range []struct {
		name    string
		c       *dcap.Collateral
		at      time.Time
		dropped bool
	}{
		{"UpToDate", good, at, false},
		{"a TCB info byte changed", &forged, at, true},
		{"QE identity signed by the PCK CA's chain", &wrongSigner, at, true},
		{"QE identity not JSON", &notJSON, at, true},
		{"expired", good, fakeTo.Add(time.Hour), false},
		{"another FMSPC", f.collateral(t, otherFMSPC, f.qeIdentity(qeLevel(8, dcap.UpToDate)), dcaptest.Revoked{}), at, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := &invalidatingSource{Source: dcap.NewStaticSource(tt.c)}
			v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{f.pki.Root}, Collateral: src})
			_, err := verifyOpts(v, quoteEvidence(quote), attest.Options{Now: tt.at})
			var rej *dcap.RejectedError
			if errors.As(err, &rej) != tt.dropped {
				t.Fatalf("err = %v; a RejectedError: %v, want %v", err, errors.As(err, &rej), tt.dropped)
			}
			if tt.dropped != (len(src.dropped) == 1) || tt.dropped && src.dropped[0] != want {
				t.Fatalf("dropped %q (err %v), want %v", src.dropped, err, tt.dropped)
			}
		})
	}
}

// TestQEVendorIDAndSize: only quotes of Intel's quoting enclave (QE vendor
// ID dcap.IntelQEVendorID; refused as an unsupported format, as Intel's
// QVL does) and of at most MaxQuoteSize bytes parse.
func TestQEVendorIDAndSize(t *testing.T) {
	for _, file := range []string{"quote.release.bin", "qvl_sgx_quote_v3.dat", "simtee_quote.bin"} {
		b := readTestdata(t, file)
		if _, err := sgx.ParseQuote(b); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		other := bytes.Clone(b)
		other[27] ^= 1
		if _, err := sgx.ParseQuote(other); !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "QE vendor ID") {
			t.Errorf("%s with another QE vendor: %v", file, err)
		}
	}
	// A quote whose certification data is as long as MaxQuoteSize allows
	// parses as far as its PEM; one byte more is refused for its size.
	f := newFakeIntel(t)
	sized := func(n int) []byte {
		return f.ca.quote(t, sgx.ReportBody{}, func(q *sgx.Quote) {
			q.Signature.CertData = append(bytes.Clone(q.Signature.CertData), make([]byte, n)...)
			q.Signature.CertData = append(q.Signature.CertData[:len(q.Signature.CertData)-n-1], bytes.Repeat([]byte{'\n'}, n+1)...)
		})
	}
	q := sized(0)
	fits := sized(sgx.MaxQuoteSize - len(q))
	if _, err := sgx.ParseQuote(fits); len(fits) != sgx.MaxQuoteSize || err != nil {
		t.Errorf("%d bytes: %v", len(fits), err)
	}
	tooBig := sized(sgx.MaxQuoteSize - len(q) + 1)
	if _, err := sgx.ParseQuote(tooBig); !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "more than the 65536 allowed") {
		t.Errorf("%d bytes: %v", len(tooBig), err)
	}
}
