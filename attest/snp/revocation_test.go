package snp_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

// simCRL returns a simulated AMD CRL revoking serials, valid from..until.
func simCRL(t testing.TB, from, until time.Time, serials ...*big.Int) []byte {
	t.Helper()
	der, err := simtee.SNPRevocationList(serials, from, until)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// simRootsWithCRL is the simulated root set with crl preloaded (nil: none,
// so the verifier asks its getter).
func simRootsWithCRL(t testing.TB, crl []byte) map[string][]*trust.AMDRootCerts {
	t.Helper()
	r := simtee.SNPTrust(simtee.SNPRoots())
	r.CRL = nil
	if crl != nil {
		var err error
		if r.CRL, err = x509.ParseRevocationList(crl); err != nil {
			t.Fatal(err)
		}
	}
	return map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {r}}
}

func serialOf(t testing.TB, der []byte) *big.Int {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// TestRevocation checks the simulated chain against simulated AMD CRLs, from
// the roots and from the getter.
func TestRevocation(t *testing.T) {
	ev := attestSim(t, simtee.SNP{}, [64]byte{0x42})
	vcekSerial := serialOf(t, ev.Certs[0])
	_, ask := simtee.SNPRoots()
	hour := time.Hour
	fresh := func(serials ...*big.Int) []byte { return simCRL(t, now.Add(-hour), now.Add(hour), serials...) }
	stale := simCRL(t, now.Add(-48*hour), now.Add(-hour))
	early := simCRL(t, now.Add(hour), now.Add(48*hour))
	pemOf := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}) }

	// A CRL of the simulated ARK's name signed by another key.
	ark, _ := simtee.SNPRoots()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	impostor := *ark
	impostor.PublicKey = &otherKey.PublicKey
	forged, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		SignatureAlgorithm: x509.SHA384WithRSAPSS, Number: big.NewInt(1), ThisUpdate: now.Add(-hour), NextUpdate: now.Add(hour),
	}, &impostor, otherKey)
	if err != nil {
		t.Fatal(err)
	}

	const (
		checked   = "checked"
		unchecked = "unchecked"
	)
	for _, tc := range []struct {
		name         string
		rootsCRL     []byte // preloaded on the root set
		served       []byte // at SNPCRLURL; nil: 404
		noGetter     bool
		allowMissing bool
		skip         bool
		want         any // checked, unchecked, or the error
		msg          string
	}{
		{name: "preloaded", rootsCRL: fresh(), want: checked},
		{name: "preloaded, other serial revoked", rootsCRL: fresh(big.NewInt(7)), want: checked},
		{name: "preloaded, VCEK revoked", rootsCRL: fresh(vcekSerial), want: attest.ErrChain, msg: "revoked the VCEK certificate"},
		{name: "preloaded, ASK revoked", rootsCRL: fresh(ask.SerialNumber), want: attest.ErrChain, msg: "revoked the ASK certificate \"SEV-Milan\""},
		{name: "preloaded, VCEK revoked, allow missing", rootsCRL: fresh(vcekSerial), allowMissing: true, want: attest.ErrChain},
		{name: "preloaded, VCEK revoked, skip collateral", rootsCRL: fresh(vcekSerial), skip: true, want: unchecked},
		{name: "preloaded stale, no getter", rootsCRL: stale, noGetter: true, want: snp.ErrCollateral, msg: "stale"},
		{name: "preloaded stale, allow missing", rootsCRL: stale, noGetter: true, allowMissing: true, want: unchecked},
		{name: "preloaded stale, getter has a fresh one", rootsCRL: stale, served: fresh(), want: checked},
		{name: "preloaded stale, getter revokes", rootsCRL: stale, served: fresh(vcekSerial), want: attest.ErrChain},
		{name: "preloaded not yet valid", rootsCRL: early, noGetter: true, want: snp.ErrCollateral, msg: "not valid before"},
		{name: "preloaded forged", rootsCRL: forged, served: fresh(), want: snp.ErrCollateral, msg: "not signed by the ARK"},
		{name: "served", served: fresh(), want: checked},
		{name: "served as PEM", served: pemOf(fresh()), want: checked},
		{name: "served, VCEK revoked", served: fresh(vcekSerial), want: attest.ErrChain, msg: "SEV-VCEK"},
		{name: "served, ASK revoked, as PEM", served: pemOf(fresh(ask.SerialNumber)), want: attest.ErrChain},
		{name: "served stale", served: stale, want: snp.ErrCollateral, msg: "nextUpdate"},
		{name: "served stale, allow missing", served: stale, allowMissing: true, want: unchecked},
		{name: "not served", want: snp.ErrCollateral, msg: "404"},
		{name: "not served, allow missing", allowMissing: true, want: unchecked},
		{name: "no getter", noGetter: true, want: snp.ErrCollateral, msg: "allowMissingCRL"},
		{name: "no getter, allow missing", noGetter: true, allowMissing: true, want: unchecked},
		{name: "no getter, skip collateral", noGetter: true, skip: true, want: unchecked},
		{name: "served garbage", served: []byte("<html>503</html>"), allowMissing: true, want: snp.ErrCollateral},
		{name: "served forged", served: forged, allowMissing: true, want: snp.ErrCollateral, msg: "not signed by the ARK"},
		{name: "served PEM with trailing bytes", served: append(pemOf(fresh()), "x"...), allowMissing: true, want: snp.ErrCollateral},
		{name: "served PEM of another type", served: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fresh()}), want: snp.ErrCollateral},
		{name: "served DER with trailing bytes", served: append(fresh(), 0), allowMissing: true, want: snp.ErrCollateral},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGetter(nil)
			if tc.served != nil {
				g.set(simtee.SNPCRLURL(), tc.served)
			}
			cfg := snp.Config{Simulated: simRootsWithCRL(t, tc.rootsCRL), Getter: g, AllowMissingCRL: tc.allowMissing}
			if tc.noGetter {
				cfg.Getter = nil
			}
			c, err := snp.NewVerifier(cfg).Verify(context.Background(), ev, attest.Options{Now: now, AllowSimulated: true, SkipCollateral: tc.skip})
			switch tc.want {
			case checked, unchecked:
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.RevocationChecked != (tc.want == checked) || c.TCB.Evaluated != (tc.want == checked) {
					t.Fatalf("RevocationChecked %v TCB.Evaluated %v, want %s", c.RevocationChecked, c.TCB.Evaluated, tc.want)
				}
			default:
				wantOnly(t, err, attest.ErrChain)
				if want := tc.want.(error); !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
				if tc.want == attest.ErrChain && errors.Is(err, snp.ErrCollateral) {
					t.Fatalf("revocation reported as missing collateral: %v", err)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error does not say %q", tc.msg)
				}
			}
			if tc.skip && g.requests() != 0 {
				t.Errorf("%d requests with SkipCollateral", g.requests())
			}
		})
	}
}

// TestRevocationFollowsTheGetter: the verifier asks the getter each time
// (the getter decides how long to cache), so a revocation takes effect as
// soon as the getter serves the new CRL, and a revoked serial is named.
func TestRevocationFollowsTheGetter(t *testing.T) {
	ev := attestSim(t, simtee.SNP{}, [64]byte{})
	serial := serialOf(t, ev.Certs[0])
	g := newGetter(map[string][]byte{simtee.SNPCRLURL(): simCRL(t, now.Add(-time.Hour), now.Add(time.Hour))})
	v := snp.NewVerifier(snp.Config{Simulated: simRootsWithCRL(t, nil), Getter: g})
	for range 3 {
		if c, err := v.Verify(context.Background(), ev, simulation); err != nil || !c.RevocationChecked {
			t.Fatalf("Verify: %+v, %v", c, err)
		}
	}
	if g.requests() != 3 {
		t.Errorf("%d requests for 3 verifications", g.requests())
	}
	g.set(simtee.SNPCRLURL(), simCRL(t, now.Add(-time.Minute), now.Add(time.Hour), serial))
	_, err := v.Verify(context.Background(), ev, simulation)
	wantOnly(t, err, attest.ErrChain)
	if !strings.Contains(err.Error(), "0x"+serial.Text(16)) {
		t.Errorf("error does not name the serial %#x: %v", serial, err)
	}
	// A later time, past the CRL's nextUpdate: stale.
	_, err = v.Verify(context.Background(), ev, attest.Options{Now: now.Add(2 * time.Hour), AllowSimulated: true})
	if !errors.Is(err, snp.ErrCollateral) {
		t.Errorf("stale CRL: %v", err)
	}
}

// TestRevocationQuickstartWiring: the wiring of attest/formats (simulated
// roots from simtee.SNPTrust, no getter) checks simulated evidence against
// the built-in simulated CRL and refuses real evidence for want of a CRL.
func TestRevocationQuickstartWiring(t *testing.T) {
	c, err := newVerifier().Verify(context.Background(), attestSim(t, simtee.SNP{}, [64]byte{}), simulation)
	if err != nil || !c.RevocationChecked || !c.TCB.Evaluated {
		t.Fatalf("simulated: %+v, %v", c, err)
	}
	// The built-in CRL is valid as long as the simulated chain.
	for _, at := range []time.Time{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2049, 12, 31, 0, 0, 0, 0, time.UTC)} {
		if _, err := newVerifier().Verify(context.Background(), attestSim(t, simtee.SNP{}, [64]byte{}), attest.Options{Now: at, AllowSimulated: true}); err != nil {
			t.Errorf("at %v: %v", at, err)
		}
	}
	_, err = newVerifier().Verify(context.Background(), realVectors[0].evidence(t), attest.Options{Now: now})
	if !errors.Is(err, snp.ErrCollateral) {
		t.Errorf("real evidence without a CRL: %v", err)
	}
}
