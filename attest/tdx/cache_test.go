package tdx_test

import (
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/dcap/dcaptest"
	"github.com/trustbound/trustbound/attest/tdx"
)

// TestVerifyWarmCachesFollowChanges: one Verifier, its PCK chain and
// collateral caches warm, judges each change as a fresh Verifier does: a
// new PCK CRL that revokes the platform, the same PCK chain with a QE
// report signed by another key, another platform's chain, and the
// collateral changed in place by its Source.
func TestVerifyWarmCachesFollowChanges(t *testing.T) {
	f := newFakeIntelQuote(t)
	collateral := func(rev dcaptest.Revoked) *dcap.Collateral {
		c, err := f.pki.Collateral(f.tcb, f.qe, at.Add(-time.Hour), at.Add(24*time.Hour), rev)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, revoked := collateral(dcaptest.Revoked{}), collateral(dcaptest.Revoked{ByPCKCA: []*big.Int{f.pck.SerialNumber}})
	src := &source{kind: dcap.TDX, fmspc: qvlFMSPC, ca: dcap.PlatformCA, c: good}
	v := tdx.NewVerifier(tdx.Config{Roots: []*x509.Certificate{f.pki.Root}, Collateral: src})
	opts := attest.Options{Now: at}
	ok := func(what string) {
		t.Helper()
		if cl, err := verify(t, v, f.quote, opts); err != nil || cl.TCB.Status != "UpToDate" || !cl.RevocationChecked {
			t.Fatalf("%s: %v", what, err)
		}
	}
	ok("cold")
	ok("warm")

	src.c = revoked
	if _, err := verify(t, v, f.quote, opts); !errors.Is(err, attest.ErrChain) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a new PCK CRL revokes the PCK certificate: %v", err)
	}
	src.c = good
	ok("the old CRL again")

	// The cached chain's key still checks every quote's QE report.
	other := newFakeIntelQuote(t) // another fake Intel, another PCK key
	q := mustParse(t, other.quote)
	q.Signature.PCKCertChain = mustParse(t, f.quote).Signature.PCKCertChain
	forged, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, v, forged, opts); !errors.Is(err, attest.ErrSignature) {
		t.Errorf("the cached chain with a QE report signed by another key: %v", err)
	}
	// Another chain (to a root not trusted here) is verified, not taken
	// for the cached one.
	if _, err := verify(t, v, other.quote, opts); !errors.Is(err, attest.ErrChain) {
		t.Errorf("another platform's chain to an untrusted root: %v", err)
	}

	// The Source changes the collateral it served in place.
	i := len(good.TCBInfo) - 4 // a hex digit of the signature
	good.TCBInfo[i] ^= 1
	if _, err := verify(t, v, f.quote, opts); !errors.Is(err, dcap.ErrCollateral) {
		t.Errorf("TCB info changed in place: %v", err)
	}
	good.TCBInfo[i] ^= 1
	ok("TCB info restored")
}
