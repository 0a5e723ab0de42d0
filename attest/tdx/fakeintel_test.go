package tdx_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/dcap/dcaptest"
	"github.com/trustbound/trustbound/attest/tdx"
)

// randReader is crypto/rand's reader, for x509.CreateCertificate.
type randReader struct{}

func (randReader) Read(b []byte) (int, error) { return rand.Read(b) }

func newFakeIntel(notBefore, notAfter time.Time) (*dcaptest.PKI, error) {
	return dcaptest.NewPKI("trustbound TEST", dcap.PlatformCA, notBefore, notAfter)
}

// fakeIntel is the dcap-qvl TDX quote moved under a fake Intel PKI: its PCK
// certificate reissued (same SGX extension) by the fake PCK Platform CA
// and its QE report re-signed with the new PCK key. The quote signature
// and the attestation key stay the real ones, so every byte the TD and
// its QE produced is real, and collateral can be made for any TCB.
type fakeIntel struct {
	pki   *dcaptest.PKI
	pck   *x509.Certificate
	quote []byte
	tcb   *dcap.TCBInfo
	qe    *dcap.QEIdentity
}

func newFakeIntelQuote(t testing.TB) *fakeIntel {
	t.Helper()
	pki, err := newFakeIntel(at.AddDate(-3, 0, 0), at.AddDate(5, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	q := mustParse(t, readTestdata(t, "dcap-qvl-tdx_quote"))
	real, err := x509.ParseCertificate(q.PCKChain[0])
	if err != nil {
		t.Fatal(err)
	}
	ext, err := dcap.ParsePCKExtensions(real)
	if err != nil {
		t.Fatal(err)
	}
	pck, key, err := pki.PCK(ext)
	if err != nil {
		t.Fatal(err)
	}
	q.Signature.QEReportSignature = signRS(t, key, q.SignedByPCK)
	q.Signature.PCKCertChain = append(dcaptest.ChainPEM(pck, pki.PCKCA, pki.Root), 0)
	b, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The real collateral's documents, made fresh at at.
	c := qvlCollateral(t, "dcap-qvl-tdx_quote_collateral.json")
	tcb, err := dcap.ParseTCBInfo(c.TCBInfo)
	if err != nil {
		t.Fatal(err)
	}
	qe, err := dcap.ParseQEIdentity(c.QEIdentity)
	if err != nil {
		t.Fatal(err)
	}
	tcb.IssueDate, tcb.NextUpdate = at.Add(-24*time.Hour), at.Add(29*24*time.Hour)
	qe.IssueDate, qe.NextUpdate = tcb.IssueDate, tcb.NextUpdate
	return &fakeIntel{pki: pki, pck: pck, quote: b, tcb: tcb, qe: qe}
}

func signRS(t testing.TB, k *ecdsa.PrivateKey, msg []byte) [64]byte {
	t.Helper()
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

func (f *fakeIntel) verify(t testing.TB, rev dcaptest.Revoked) (*attest.Claims, error) {
	t.Helper()
	c, err := f.pki.Collateral(f.tcb, f.qe, at.Add(-time.Hour), at.Add(24*time.Hour), rev)
	if err != nil {
		t.Fatal(err)
	}
	v := tdx.NewVerifier(tdx.Config{
		Roots:      []*x509.Certificate{f.pki.Root},
		Collateral: &source{kind: dcap.TDX, fmspc: qvlFMSPC, ca: dcap.PlatformCA, c: c},
	})
	return verify(t, v, f.quote, attest.Options{Now: at})
}

// TestVerifyTCBStatuses: the claims carry the status and advisories of the
// TCB level the platform matches, and revocation refuses.
func TestVerifyTCBStatuses(t *testing.T) {
	t.Run("UpToDate", func(t *testing.T) {
		f := newFakeIntelQuote(t)
		cl, err := f.verify(t, dcaptest.Revoked{})
		if err != nil {
			t.Fatal(err)
		}
		if !cl.TCB.Evaluated || cl.TCB.Status != "UpToDate" || len(cl.TCB.Advisories) != 0 || !cl.RevocationChecked || cl.Simulated {
			t.Errorf("tcb %+v revocation %v", cl.TCB, cl.RevocationChecked)
		}
	})
	for _, st := range []dcap.Status{dcap.SWHardeningNeeded, dcap.OutOfDate, dcap.ConfigurationAndSWHardeningNeeded} {
		t.Run(string(st), func(t *testing.T) {
			f := newFakeIntelQuote(t)
			f.tcb.TCBLevels[0].Status = st
			f.tcb.TCBLevels[0].AdvisoryIDs = []string{"INTEL-SA-00615", "INTEL-SA-00828"}
			cl, err := f.verify(t, dcaptest.Revoked{})
			if err != nil {
				t.Fatal(err)
			}
			if cl.TCB.Status != string(st) || !slices.Equal(cl.TCB.Advisories, []string{"INTEL-SA-00615", "INTEL-SA-00828"}) {
				t.Errorf("tcb %+v", cl.TCB)
			}
		})
	}
	t.Run("QE OutOfDate converges", func(t *testing.T) {
		f := newFakeIntelQuote(t)
		for i := range f.qe.TCBLevels {
			f.qe.TCBLevels[i].Status = dcap.OutOfDate
		}
		cl, err := f.verify(t, dcaptest.Revoked{})
		if err != nil || cl.TCB.Status != "OutOfDate" {
			t.Fatalf("%v %+v", err, cl)
		}
	})
	t.Run("PCK certificate revoked", func(t *testing.T) {
		f := newFakeIntelQuote(t)
		_, err := f.verify(t, dcaptest.Revoked{ByPCKCA: []*big.Int{f.pck.SerialNumber}})
		if !errors.Is(err, attest.ErrChain) {
			t.Fatalf("want ErrChain, got %v", err)
		}
	})
	t.Run("PCK CA revoked", func(t *testing.T) {
		f := newFakeIntelQuote(t)
		// The PCK CA also signs the PCK CRL, so attest/dcap may find it
		// revoked as a collateral signer first.
		_, err := f.verify(t, dcaptest.Revoked{ByRoot: []*big.Int{f.pki.PCKCA.SerialNumber}})
		if !(errors.Is(err, attest.ErrChain) || errors.Is(err, dcap.ErrCollateral)) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("want a revocation, got %v", err)
		}
	})
	t.Run("TD QE of another signer", func(t *testing.T) {
		f := newFakeIntelQuote(t)
		f.qe.MRSigner[0] ^= 1
		if _, err := f.verify(t, dcaptest.Revoked{}); err == nil {
			t.Fatal("a QE identity of another signer accepted")
		}
	})
	t.Run("TCB info for another FMSPC", func(t *testing.T) {
		f := newFakeIntelQuote(t)
		f.tcb.FMSPC[5] = 1
		if _, err := f.verify(t, dcaptest.Revoked{}); !errors.Is(err, dcap.ErrCollateral) {
			t.Fatalf("want ErrCollateral, got %v", err)
		}
	})
	t.Run("TCB info signature", func(t *testing.T) {
		f := newFakeIntelQuote(t)
		c, err := f.pki.Collateral(f.tcb, f.qe, at.Add(-time.Hour), at.Add(24*time.Hour), dcaptest.Revoked{})
		if err != nil {
			t.Fatal(err)
		}
		c.TCBInfo[len(c.TCBInfo)-4] ^= 1 // a hex digit of the signature
		v := tdx.NewVerifier(tdx.Config{Roots: []*x509.Certificate{f.pki.Root}, Collateral: &source{kind: dcap.TDX, fmspc: qvlFMSPC, ca: dcap.PlatformCA, c: c}})
		if _, err := verify(t, v, f.quote, attest.Options{Now: at}); !errors.Is(err, dcap.ErrCollateral) {
			t.Fatalf("want ErrCollateral, got %v", err)
		}
	})
	t.Run("collateral of the real Intel for the fake PKI", func(t *testing.T) {
		f := newFakeIntelQuote(t)
		v := tdx.NewVerifier(tdx.Config{Roots: []*x509.Certificate{f.pki.Root},
			Collateral: &source{kind: dcap.TDX, fmspc: qvlFMSPC, ca: dcap.PlatformCA, c: qvlCollateral(t, "dcap-qvl-tdx_quote_collateral.json")}})
		if _, err := verify(t, v, f.quote, attest.Options{Now: qvlAt}); !errors.Is(err, dcap.ErrCollateral) {
			t.Fatalf("want ErrCollateral, got %v", err)
		}
	})
}
