package snp_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
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
		{name: "preloaded, issued after the verification time", rootsCRL: early, noGetter: true, want: checked},
		{name: "preloaded, issued after, VCEK revoked", rootsCRL: simCRL(t, now.Add(hour), now.Add(48*hour), vcekSerial), noGetter: true, want: attest.ErrChain},
		{name: "preloaded stale, VCEK revoked, allow missing", rootsCRL: simCRL(t, now.Add(-48*hour), now.Add(-hour), vcekSerial), noGetter: true, allowMissing: true, want: attest.ErrChain, msg: "revoked the VCEK"},
		{name: "preloaded forged", rootsCRL: forged, served: fresh(), want: snp.ErrCollateral, msg: "not signed by the ARK"},
		{name: "served", served: fresh(), want: checked},
		{name: "served as PEM", served: pemOf(fresh()), want: checked},
		{name: "served, VCEK revoked", served: fresh(vcekSerial), want: attest.ErrChain, msg: "SEV-VCEK"},
		{name: "served, ASK revoked, as PEM", served: pemOf(fresh(ask.SerialNumber)), want: attest.ErrChain},
		{name: "served stale", served: stale, want: snp.ErrCollateral, msg: "nextUpdate"},
		{name: "served stale, allow missing", served: stale, allowMissing: true, want: unchecked},
		{name: "served stale, ASK revoked, allow missing", served: simCRL(t, now.Add(-48*hour), now.Add(-hour), ask.SerialNumber), allowMissing: true, want: attest.ErrChain, msg: "revoked the ASK"},
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

// TestRevocationAtAPastTime: AMD's KDS serves only its current CRL, so a
// verification at a past time T gets a CRL issued after T. Revocation being
// permanent, such a CRL counts: clean, the chain was not revoked at T;
// listing the ASK or the VCEK, it is refused. A CRL stale at T is not
// enough.
func TestRevocationAtAPastTime(t *testing.T) {
	at := time.Date(2024, 12, 11, 0, 0, 0, 0, time.UTC)
	ev := attestSim(t, simtee.SNP{}, [64]byte{})
	_, ask := simtee.SNPRoots()
	year, week := 365*24*time.Hour, 7*24*time.Hour
	later := func(serials ...*big.Int) []byte { return simCRL(t, at.Add(year), at.Add(year+week), serials...) }
	stale := simCRL(t, at.Add(-5*week), at.Add(-week))
	for _, tc := range []struct {
		name         string
		crl          []byte
		allowMissing bool
		want         error // nil: revocation checked
	}{
		{"issued a year later", later(), false, nil},
		{"issued a year later, ASK revoked", later(ask.SerialNumber), false, attest.ErrChain},
		{"issued a year later, VCEK revoked", later(serialOf(t, ev.Certs[0])), false, attest.ErrChain},
		{"issued a year later, VCEK revoked, allow missing", later(serialOf(t, ev.Certs[0])), true, attest.ErrChain},
		{"stale", stale, false, snp.ErrCollateral},
		{"stale, allow missing", stale, true, nil},
	} {
		for _, preloaded := range []bool{false, true} {
			name := tc.name + ", served"
			cfg := snp.Config{Simulated: simRootsWithCRL(t, nil), Getter: newGetter(map[string][]byte{simtee.SNPCRLURL(): tc.crl}), AllowMissingCRL: tc.allowMissing}
			if preloaded {
				name = tc.name + ", preloaded"
				cfg.Simulated, cfg.Getter = simRootsWithCRL(t, tc.crl), nil
			}
			t.Run(name, func(t *testing.T) {
				c, err := snp.NewVerifier(cfg).Verify(context.Background(), ev, attest.Options{Now: at, AllowSimulated: true})
				if tc.want != nil {
					wantOnly(t, err, attest.ErrChain)
					if !errors.Is(err, tc.want) || (tc.want == attest.ErrChain) == errors.Is(err, snp.ErrCollateral) {
						t.Fatalf("error %v, want %v", err, tc.want)
					}
					return
				}
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if want := !tc.allowMissing; c.RevocationChecked != want || c.TCB.Evaluated != want {
					t.Fatalf("RevocationChecked %v TCB.Evaluated %v, want %v", c.RevocationChecked, c.TCB.Evaluated, want)
				}
			})
		}
	}
}

// TestRevocationSiblingCRL: the VCEK and VLEK CRLs of a product line are
// signed by the same ARK, so a bundle could serve one for the other. When
// the verifier trusts both chains of the line, the ASK and the VCEK are
// checked against both CRLs the getter has; the VLEK CRL may be missing.
func TestRevocationSiblingCRL(t *testing.T) {
	ev := attestSim(t, simtee.SNP{}, [64]byte{})
	vcekSerial := serialOf(t, ev.Certs[0])
	ark, ask := simtee.SNPRoots()
	hour := time.Hour
	fresh := func(serials ...*big.Int) []byte { return simCRL(t, now.Add(-hour), now.Add(hour), serials...) }
	vlekURL := kds.CrlLinkByKey(simtee.SNPProductLine, abi.VlekReportSigner)

	// The simulated chain has no ASVK: its ASK stands in, only its presence
	// matters here. Either one root set holds the ASK and the ASVK, or two
	// under the same ARK do (as the VCEK and VLEK bundles of AMD's KDS).
	oneSet := func(t *testing.T, _ []byte) map[string][]*trust.AMDRootCerts {
		r := simtee.SNPTrust(ark, ask)
		r.CRL = nil
		r.ProductCerts.Asvk = ask
		return map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {r}}
	}
	twoSets := func(t *testing.T, vlekCRL []byte) map[string][]*trust.AMDRootCerts {
		m := simRootsWithCRL(t, nil)
		vlek := trust.AMDRootCertsProduct(simtee.SNPProductLine)
		vlek.ProductCerts = &trust.ProductCerts{Ark: ark, Asvk: ask}
		if vlekCRL != nil {
			var err error
			if vlek.CRL, err = x509.ParseRevocationList(vlekCRL); err != nil {
				t.Fatal(err)
			}
		}
		m[simtee.SNPProductLine] = append(m[simtee.SNPProductLine], vlek)
		return m
	}
	for _, layout := range []struct {
		name  string
		roots func(*testing.T, []byte) map[string][]*trust.AMDRootCerts
	}{{"one root set", oneSet}, {"two root sets", twoSets}} {
		for _, tc := range []struct {
			name         string
			vcek, vlek   []byte // served; nil: 404
			allowMissing bool
			want         any // checked, unchecked, or the error
		}{
			{name: "both clean", vcek: fresh(), vlek: fresh(), want: "checked"},
			{name: "VLEK CRL missing", vcek: fresh(), want: "checked"},
			{name: "VLEK CRL revokes the VCEK", vcek: fresh(), vlek: fresh(vcekSerial), want: attest.ErrChain},
			{name: "VLEK CRL revokes the ASK", vcek: fresh(), vlek: fresh(ask.SerialNumber), want: attest.ErrChain},
			{name: "swapped: VCEK CRL clean, VLEK CRL revokes", vcek: fresh(big.NewInt(7)), vlek: fresh(vcekSerial), want: attest.ErrChain},
			{name: "VCEK CRL revokes, VLEK CRL clean", vcek: fresh(vcekSerial), vlek: fresh(), want: attest.ErrChain},
			{name: "stale VLEK CRL revokes", vcek: fresh(), vlek: simCRL(t, now.Add(-48*hour), now.Add(-hour), vcekSerial), want: attest.ErrChain},
			{name: "stale VLEK CRL clean", vcek: fresh(), vlek: simCRL(t, now.Add(-48*hour), now.Add(-hour)), want: "checked"},
			{name: "VLEK CRL garbage", vcek: fresh(), vlek: []byte("<html>503</html>"), allowMissing: true, want: snp.ErrCollateral},
			{name: "VCEK CRL missing, allow missing", vlek: fresh(vcekSerial), allowMissing: true, want: "unchecked"},
		} {
			t.Run(layout.name+"/"+tc.name, func(t *testing.T) {
				g := newGetter(nil)
				if tc.vcek != nil {
					g.set(simtee.SNPCRLURL(), tc.vcek)
				}
				if tc.vlek != nil {
					g.set(vlekURL, tc.vlek)
				}
				v := snp.NewVerifier(snp.Config{Simulated: layout.roots(t, nil), Getter: g, AllowMissingCRL: tc.allowMissing})
				c, err := v.Verify(context.Background(), ev, simulation)
				switch tc.want {
				case "checked", "unchecked":
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					if c.RevocationChecked != (tc.want == "checked") {
						t.Fatalf("RevocationChecked %v, want %s", c.RevocationChecked, tc.want)
					}
				default:
					wantOnly(t, err, attest.ErrChain)
					if want := tc.want.(error); !errors.Is(err, want) || (want == attest.ErrChain) == errors.Is(err, snp.ErrCollateral) {
						t.Fatalf("error %v, want %v", err, want)
					}
				}
				// The VLEK CRL is asked for only with the VCEK CRL in hand.
				asked := slices.Contains(g.urls(), vlekURL)
				if asked != (tc.vcek != nil) {
					t.Errorf("VLEK CRL asked for: %v; requests %v", asked, g.urls())
				}
			})
		}
	}

	t.Run("preloaded on the VLEK root set", func(t *testing.T) {
		g := newGetter(map[string][]byte{simtee.SNPCRLURL(): fresh()})
		_, err := snp.NewVerifier(snp.Config{Simulated: twoSets(t, fresh(vcekSerial)), Getter: g}).Verify(context.Background(), ev, simulation)
		wantOnly(t, err, attest.ErrChain)
		if slices.Contains(g.urls(), vlekURL) {
			t.Errorf("the fresh preloaded VLEK CRL was fetched again")
		}
	})

	// Without a sibling chain (the simulated roots alone), the VLEK CRL is
	// not asked for: a real getter would serve AMD's, which the simulated
	// ARK did not sign.
	t.Run("no sibling", func(t *testing.T) {
		g := newGetter(map[string][]byte{simtee.SNPCRLURL(): fresh(), vlekURL: fresh(vcekSerial)})
		c, err := snp.NewVerifier(snp.Config{Simulated: simRootsWithCRL(t, nil), Getter: g}).Verify(context.Background(), ev, simulation)
		if err != nil || !c.RevocationChecked {
			t.Fatalf("Verify: %+v, %v", c, err)
		}
		if got := g.urls(); !slices.Equal(got, []string{simtee.SNPCRLURL()}) {
			t.Errorf("requests %v, want only the VCEK CRL", got)
		}
	})

	// Warm: one getter call per CRL and verification (the getter decides
	// how long to cache; verified CRLs are cached by digest).
	t.Run("warm", func(t *testing.T) {
		g := newGetter(map[string][]byte{simtee.SNPCRLURL(): fresh(), vlekURL: fresh(big.NewInt(7))})
		v := snp.NewVerifier(snp.Config{Simulated: twoSets(t, nil), Getter: g})
		for range 3 {
			if c, err := v.Verify(context.Background(), ev, simulation); err != nil || !c.RevocationChecked {
				t.Fatalf("Verify: %+v, %v", c, err)
			}
		}
		if g.requests() != 6 {
			t.Errorf("%d requests for 3 verifications, want 2 each", g.requests())
		}
	})
}

// forgetfulGetter is a fakeGetter that can be told a body was bad, as
// collateral.Fetcher can.
type forgetfulGetter struct {
	*fakeGetter
	invalidated []string
}

func (g *forgetfulGetter) Invalidate(url string) { g.invalidated = append(g.invalidated, url) }

// A CRL that does not verify is reported back to the getter, so a cache
// refetches it instead of serving it until it expires; a good one is not.
func TestBadCollateralIsInvalidated(t *testing.T) {
	ev := attestSim(t, simtee.SNP{}, [64]byte{})
	g := &forgetfulGetter{fakeGetter: newGetter(map[string][]byte{simtee.SNPCRLURL(): []byte("not a CRL")})}
	v := snp.NewVerifier(snp.Config{Simulated: simRootsWithCRL(t, nil), Getter: g})
	if _, err := v.Verify(context.Background(), ev, simulation); !errors.Is(err, snp.ErrCollateral) {
		t.Fatalf("bad CRL: %v", err)
	}
	if len(g.invalidated) != 1 || g.invalidated[0] != simtee.SNPCRLURL() {
		t.Fatalf("invalidated %v, want the CRL's URL", g.invalidated)
	}
	g.set(simtee.SNPCRLURL(), simCRL(t, now.Add(-time.Hour), now.Add(time.Hour)))
	if _, err := v.Verify(context.Background(), ev, simulation); err != nil {
		t.Fatal(err)
	}
	if len(g.invalidated) != 1 {
		t.Errorf("a good CRL was invalidated: %v", g.invalidated)
	}
}
