package snp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/internal/boundedcache"
	"github.com/trustbound/trustbound/attest/simtee"
)

var testNow = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func simVerifier() *Verifier {
	return NewVerifier(Config{Simulated: map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}}})
}

// TestVerifierCaches: a chain is verified once and then served from the
// cache while its validity window holds; the cache stays bounded.
func TestVerifierCaches(t *testing.T) {
	v := simVerifier()
	ev, err := simtee.SNP{}.Attest(context.Background(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	opts := attest.Options{Now: testNow, AllowSimulated: true}
	for range 3 {
		if _, err := v.Verify(context.Background(), ev, opts); err != nil {
			t.Fatal(err)
		}
	}
	// A simulated chain goes to its own cache, not the real chains'.
	if v.simChains.Len() != 1 || v.crls.Len() != 1 || v.chains.Len() != 0 {
		t.Fatalf("%d simulated chains, %d CRLs, %d real chains cached; want 1, 1, 0", v.simChains.Len(), v.crls.Len(), v.chains.Len())
	}
	// Outside the window the cached chain does not count.
	_, err = v.Verify(context.Background(), ev, attest.Options{Now: time.Date(2050, 1, 1, 0, 0, 1, 0, time.UTC), AllowSimulated: true})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("after the window: %v", err)
	}
	// A cached simulated chain still needs AllowSimulated.
	if _, err := v.Verify(context.Background(), ev, attest.Options{Now: testNow}); err == nil {
		t.Fatal("simulated accepted from the cache")
	}

	// Bounded: VCEKs of many TCBs (distinct certificates).
	v.simChains = boundedcache.New[chainKey, *endorsement](4)
	for i := range 10 {
		ev, err := simtee.SNP{TCB: simtee.SNPTCB{Bootloader: 1, SNP: uint8(i + 1), Microcode: 1}}.Attest(context.Background(), [64]byte{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), ev, opts); err != nil {
			t.Fatal(err)
		}
		if v.simChains.Len() > 4 {
			t.Fatalf("%d chains cached, bound 4", v.simChains.Len())
		}
	}
	if v.chains.Len() != 0 {
		t.Fatalf("%d simulated chains in the real chains' cache", v.chains.Len())
	}
}

// TestSimulatedChainsNotCached: simulated VCEKs, which anyone can mint, are
// not cached when simulation is not allowed, and never in the cache real
// chains share, so that they cannot churn it.
func TestSimulatedChainsNotCached(t *testing.T) {
	v := NewVerifier(Config{
		Simulated:       map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}},
		AllowMissingCRL: true,
	})
	evs := make([]*attest.Evidence, 2*maxCachedSimulatedChains)
	for i := range evs {
		ev, err := simtee.SNP{TCB: simtee.SNPTCB{Bootloader: 1, SNP: uint8(i + 1), Microcode: 1}}.Attest(context.Background(), [64]byte{})
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = ev
	}
	for _, ev := range evs {
		if _, err := v.Verify(context.Background(), ev, attest.Options{Now: testNow}); !errors.Is(err, attest.ErrSimulated) {
			t.Fatalf("simulated evidence without AllowSimulated: %v", err)
		}
	}
	if v.chains.Len() != 0 || v.simChains.Len() != 0 {
		t.Fatalf("%d real and %d simulated chains cached without AllowSimulated; want none", v.chains.Len(), v.simChains.Len())
	}
	for _, ev := range evs {
		if _, err := v.Verify(context.Background(), ev, attest.Options{Now: testNow, AllowSimulated: true}); err != nil {
			t.Fatal(err)
		}
	}
	if v.chains.Len() != 0 || v.simChains.Len() != maxCachedSimulatedChains {
		t.Fatalf("%d real and %d simulated chains cached; want 0 and %d", v.chains.Len(), v.simChains.Len(), maxCachedSimulatedChains)
	}
	// A real chain goes to the shared cache.
	real := &attest.Evidence{
		Format: attest.FormatSNPReport,
		Data:   readFile(t, "gosevguest-milan-attestation.bin"),
		Certs:  [][]byte{readFile(t, "gosevguest-milan-vcek.der")},
	}
	if _, err := v.Verify(context.Background(), real, attest.Options{Now: testNow}); err != nil {
		t.Fatal(err)
	}
	if v.chains.Len() != 1 {
		t.Fatalf("%d real chains cached, want 1", v.chains.Len())
	}
}

// TestVerifyCRL covers what verifyCRL refuses, with a self-made ARK.
func TestVerifyCRL(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ARK-Test"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ark, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	other := *ark
	other.RawSubject = []byte{0x30, 0}
	mk := func(mut func(*x509.RevocationList)) *x509.RevocationList {
		rl := &x509.RevocationList{
			SignatureAlgorithm: x509.SHA384WithRSAPSS, Number: big.NewInt(2),
			ThisUpdate: testNow.Add(-time.Minute), NextUpdate: testNow.Add(time.Minute),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(5), RevocationTime: testNow}},
		}
		if mut != nil {
			mut(rl)
		}
		b, err := x509.CreateRevocationList(rand.Reader, rl, ark, key)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := parseCRL(b)
		if err != nil {
			t.Fatal(err)
		}
		return crl
	}
	revs, err := verifyCRL(mk(nil), ark)
	if err != nil || len(revs.revoked) != 1 || revs.freshAt(testNow) != nil {
		t.Fatalf("good CRL: %+v, %v", revs, err)
	}
	if _, ok := revs.revoked["5"]; !ok {
		t.Fatal("serial 5 not revoked")
	}
	for name, tc := range map[string]struct {
		crl *x509.RevocationList
		ark *x509.Certificate
		msg string
	}{
		"SHA-256 PSS":    {mk(func(rl *x509.RevocationList) { rl.SignatureAlgorithm = x509.SHA256WithRSAPSS }), ark, "want SHA384-RSAPSS"},
		"PKCS#1 v1.5":    {mk(func(rl *x509.RevocationList) { rl.SignatureAlgorithm = x509.SHA384WithRSA }), ark, "want SHA384-RSAPSS"},
		"another issuer": {mk(nil), &other, "is not the ARK"},
		"delta CRL": {mk(func(rl *x509.RevocationList) {
			rl.ExtraExtensions = []pkix.Extension{{Id: oidDeltaCRLIndicator, Critical: true, Value: []byte{2, 1, 1}}}
		}), ark, "delta CRL"},
		"critical extension": {mk(func(rl *x509.RevocationList) {
			rl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Critical: true, Value: []byte{5, 0}}}
		}), ark, "critical extension"},
		"critical entry extension": {mk(func(rl *x509.RevocationList) {
			rl.RevokedCertificateEntries[0].ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 29}, Critical: true, Value: []byte{0x30, 0}}}
		}), ark, "entry 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := verifyCRL(tc.crl, tc.ark)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("verifyCRL: %v, want %q", err, tc.msg)
			}
		})
	}
	tampered := mk(nil)
	tampered.Signature[10] ^= 1
	if _, err := verifyCRL(tampered, ark); err == nil || !strings.Contains(err.Error(), "not signed by the ARK") {
		t.Fatalf("tampered: %v", err)
	}
	for _, tc := range []struct {
		r   revocations
		msg string
	}{
		{revocations{thisUpdate: testNow}, "no nextUpdate"},
		{revocations{thisUpdate: testNow.Add(-time.Hour), nextUpdate: testNow.Add(-time.Second)}, "stale"},
	} {
		if err := tc.r.freshAt(testNow); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("freshAt: %v, want %q", err, tc.msg)
		}
	}
	edges := revocations{thisUpdate: testNow, nextUpdate: testNow}
	if err := edges.freshAt(testNow); err != nil {
		t.Errorf("thisUpdate = now = nextUpdate: %v", err)
	}
	// Issued after the time asked about: revocation is permanent, so a
	// later CRL is the stronger evidence.
	later := revocations{thisUpdate: testNow.Add(time.Second), nextUpdate: testNow.Add(time.Hour)}
	if err := later.freshAt(testNow); err != nil {
		t.Errorf("a CRL issued after now: %v", err)
	}
}

type noGetter struct{ asked *int }

func (g noGetter) Get(context.Context, string) ([]byte, error) {
	*g.asked++
	return nil, errors.New("404")
}

// TestFetchVCEKRefuses: what cannot be fetched is not asked for.
func TestFetchVCEKRefuses(t *testing.T) {
	asked := 0
	v := NewVerifier(Config{Getter: noGetter{&asked}})
	chip := make([]byte, 64)
	for _, tc := range []struct {
		chip []byte
		line string
		want error
		msg  string
	}{
		{make([]byte, 64), "Milan", ErrCollateral, "masked"},
		{append([]byte{1}, chip[1:]...), "Unknown", attest.ErrChain, "no AMD roots"},
		{append([]byte{1}, chip[1:]...), "Turin", ErrCollateral, "Turin"},
	} {
		_, _, err := v.fetchVCEK(context.Background(), &spb.Report{ChipId: tc.chip}, tc.line)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v saying %q", tc.line, err, tc.want, tc.msg)
		}
	}
	if asked != 0 {
		t.Errorf("the getter was asked %d times", asked)
	}
}

// TestSiblingOfRealChains: with AMD's embedded roots, the VCEK chain's
// sibling is the ASVK root set of the same line and ARK, and the other way
// round, so both Milan CRLs are checked for either.
func TestSiblingOfRealChains(t *testing.T) {
	roots := embeddedRoots()
	for _, tc := range []struct {
		cert string
		key  abi.ReportSigner
		at   time.Time
	}{
		{"gosevguest-milan-vcek.der", abi.VcekReportSigner, testNow},
		{"trustee-milan-vlek.der", abi.VlekReportSigner, time.Date(2024, 12, 11, 0, 0, 0, 0, time.UTC)},
	} {
		e, _, err := verifyEndorsement(readFile(t, tc.cert), tc.key, "Milan", roots, nil, tc.at)
		if err != nil {
			t.Fatalf("%s: %v", tc.cert, err)
		}
		if e.sibling == nil {
			t.Fatalf("%s: no sibling root set", tc.cert)
		}
		pc := e.sibling.ProductCerts
		if e.sibling == e.roots || !pc.Ark.Equal(e.ark) ||
			(tc.key == abi.VcekReportSigner && pc.Asvk == nil) || (tc.key == abi.VlekReportSigner && pc.Ask == nil) {
			t.Errorf("%s: sibling %+v", tc.cert, pc)
		}
	}
	// The simulated roots have no ASVK: no sibling.
	sim := map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}}
	ev, err := simtee.SNP{}.Attest(context.Background(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if e, _, err := verifyEndorsement(ev.Certs[0], abi.VcekReportSigner, "Milan", nil, sim, testNow); err != nil || e.sibling != nil {
		t.Fatalf("simulated: %v, sibling %v", err, e != nil && e.sibling != nil)
	}
}
