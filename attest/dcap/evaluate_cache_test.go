package dcap_test

import (
	"bytes"
	"testing"

	"github.com/trustbound/trustbound/attest/dcap"
)

// tamperings edit one input of an evaluation each: every collateral part
// (a byte of a signature, a CRL or a certificate), the PCK chain and the
// kind. A warm Evaluator must judge each as a fresh one does.
func tamperings(t *testing.T) map[string]func(in *dcap.Input) {
	t.Helper()
	flip := func(b []byte, at int) []byte {
		b = bytes.Clone(b)
		b[at] ^= 1
		return b
	}
	mid := func(b []byte) int { return len(b) / 2 }
	other := parseTDQuote(t, readTestdata(t, "gotdxguest-spr/quote_v4.dat"))
	return map[string]func(in *dcap.Input){
		"PCK CRL": func(in *dcap.Input) { in.Collateral.PCKCRL = flip(in.Collateral.PCKCRL, len(in.Collateral.PCKCRL)-3) },
		"PCK CRL issuer chain": func(in *dcap.Input) {
			in.Collateral.PCKCRLIssuerChain = flip(in.Collateral.PCKCRLIssuerChain, mid(in.Collateral.PCKCRLIssuerChain))
		},
		"root CA CRL": func(in *dcap.Input) {
			in.Collateral.RootCACRL = flip(in.Collateral.RootCACRL, len(in.Collateral.RootCACRL)-3)
		},
		"TCB info": func(in *dcap.Input) {
			in.Collateral.TCBInfo = flip(in.Collateral.TCBInfo, len(in.Collateral.TCBInfo)-4)
		},
		"TCB info issuer chain": func(in *dcap.Input) {
			in.Collateral.TCBInfoIssuerChain = flip(in.Collateral.TCBInfoIssuerChain, mid(in.Collateral.TCBInfoIssuerChain))
		},
		"QE identity": func(in *dcap.Input) {
			in.Collateral.QEIdentity = flip(in.Collateral.QEIdentity, len(in.Collateral.QEIdentity)-4)
		},
		"QE identity issuer chain": func(in *dcap.Input) {
			in.Collateral.QEIdentityIssuerChain = flip(in.Collateral.QEIdentityIssuerChain, mid(in.Collateral.QEIdentityIssuerChain))
		},
		"another platform's chain": func(in *dcap.Input) {
			in.PCKChain, in.QE, in.TDX = verifiedChain(t, other.chain, dcap.IntelSGXRoot(), in.Now), other.qe, &other.tdx
		},
		"SGX kind": func(in *dcap.Input) { in.Kind, in.TDX = dcap.SGX, nil },
	}
}

// TestEvaluatorCacheConfirmsInputs: a warm Evaluator reuses verified
// collateral only for the very bytes it verified: any changed part, another
// PCK chain or kind is evaluated afresh (and refused as a fresh Evaluator
// refuses it), also when the caller changes the collateral it served in
// place, and also when the cache key collides.
func TestEvaluatorCacheConfirmsInputs(t *testing.T) {
	orig, err := dcap.ParseQVLCollateral(readTestdata(t, "qvl_tdx_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	good := tdxInput(t, "qvl_tdx_quote_v4.dat", orig, qvlTDXAt)
	var e dcap.Evaluator
	if r, err := e.Evaluate(good); err != nil || r.Status != dcap.UpToDate {
		t.Fatalf("cold: %v", err)
	}
	for name, edit := range tamperings(t) {
		in := *good
		c := *orig
		in.Collateral = &c
		edit(&in)
		_, fresh := dcap.Evaluate(&in)
		if fresh == nil {
			t.Fatalf("%s: a fresh Evaluator accepts it: the tampering is not one", name)
		}
		if _, err := e.Evaluate(&in); err == nil || err.Error() != fresh.Error() {
			t.Errorf("%s: warm Evaluator: %v, want the fresh verdict %v", name, err, fresh)
		}
		// A collision of the cache key: the good collateral's entry filed
		// under the tampered inputs' key is not taken for them.
		var collided dcap.Evaluator
		if _, err := collided.Evaluate(good); err != nil {
			t.Fatal(err)
		}
		if !collided.CollideForTest(good, &in) {
			t.Fatalf("%s: no cache entry for the good collateral", name)
		}
		if _, err := collided.Evaluate(&in); err == nil || err.Error() != fresh.Error() {
			t.Errorf("%s: after a key collision: %v, want the fresh verdict %v", name, err, fresh)
		}
	}
	if r, err := e.Evaluate(good); err != nil || r.Status != dcap.UpToDate {
		t.Fatalf("warm again: %v", err)
	}

	// The caller changes the bytes it served in place: the cache kept its
	// own copy of what it verified, and the changed bytes are verified,
	// even under a colliding key.
	c := *orig
	c.TCBInfo = bytes.Clone(orig.TCBInfo)
	in := *good
	in.Collateral = &c
	var f dcap.Evaluator
	if _, err := f.Evaluate(&in); err != nil {
		t.Fatal(err)
	}
	c.TCBInfo[len(c.TCBInfo)-4] ^= 1 // a hex digit of the signature
	if _, err := f.Evaluate(&in); err == nil {
		t.Error("TCB info changed in place after caching: accepted")
	}
	if !f.CollideForTest(good, &in) {
		t.Fatal("no cache entry for the good collateral")
	}
	if _, err := f.Evaluate(&in); err == nil {
		t.Error("TCB info changed in place after caching, under a colliding key: accepted")
	}
	c.TCBInfo[len(c.TCBInfo)-4] ^= 1
	if _, err := f.Evaluate(&in); err != nil {
		t.Errorf("TCB info restored: %v", err)
	}
}
