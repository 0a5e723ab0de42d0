package tdx_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/tdx"
)

var (
	// at is the day the vectors were collected: every PCK chain here is
	// valid then; no collateral here is fresh then.
	at = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	// qvlAt is inside the dcap-qvl TDX collateral's window
	// (2025-06-19..07-19), the time its tests verify at.
	qvlAt = time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)
	// qvlOutdatedAt is inside the window of the dcap-qvl "outdated"
	// collateral (2026-02-18..03-20).
	qvlOutdatedAt = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// sprAt is the time go-tdx-guest verifies its SPR sample at.
	sprAt = time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC)
)

var (
	qvlFMSPC         = [6]byte{0xb0, 0xc0, 0x6f, 0, 0, 0}
	qvlOutdatedFMSPC = [6]byte{0x90, 0xc0, 0x6f, 0, 0, 0}
	sprFMSPC         = [6]byte{0x50, 0x80, 0x6f, 0, 0, 0}
)

func evidence(b []byte) *attest.Evidence {
	return &attest.Evidence{Format: attest.FormatTDXQuote, Data: b}
}

func verify(t testing.TB, v *tdx.Verifier, b []byte, opts attest.Options) (*attest.Claims, error) {
	t.Helper()
	return v.Verify(context.Background(), evidence(b), opts)
}

// TestVerifyRealWithoutCollateral: every real quote verifies (PCK chain,
// QE report, attestation key, quote signature) with SkipCollateral, and its
// claims say what the quote says, unevaluated and unrevoked.
func TestVerifyRealWithoutCollateral(t *testing.T) {
	v := tdx.NewVerifier(tdx.Config{})
	type tc struct {
		realQuote
		data []byte
		at   time.Time
	}
	var cases []tc
	for _, rq := range realQuotes {
		cases = append(cases, tc{rq, readTestdata(t, rq.file), at})
	}
	var spr realQuote // the oasis-core out-of-date quote is the SPR sample
	for _, rq := range realQuotes {
		if rq.file == "oasis-core-quote_v4_tdx_ecdsa_p256_out_of_date.bin" {
			spr = rq
		}
	}
	spr.file = "gotdxguest-spr-quote_v4.dat (trimmed)"
	cases = append(cases, tc{spr, sprQuote(t), sprAt}, tc{spr, sprQuote(t), at})
	for _, c := range cases {
		t.Run(c.file+"@"+c.at.Format(time.DateOnly), func(t *testing.T) {
			cl, err := verify(t, v, c.data, attest.Options{Now: c.at, SkipCollateral: true})
			if err != nil {
				t.Fatal(err)
			}
			if cl.TEE != attest.TDX || cl.Format != attest.FormatTDXQuote || cl.Simulated || cl.RevocationChecked || cl.TCB.Evaluated || cl.TCB.Status != "" {
				t.Errorf("tee %q format %q simulated %v revocation %v tcb %+v", cl.TEE, cl.Format, cl.Simulated, cl.RevocationChecked, cl.TCB)
			}
			for _, f := range []struct {
				name string
				got  attest.Hex
				want string
			}{
				{"measurement", cl.Measurement, c.mrtd},
				{"report data", cl.ReportData, c.reportData},
				{"host data", cl.HostData, c.mrconfigid},
			} {
				if f.got.String() != f.want {
					t.Errorf("%s %s, want %s", f.name, f.got, f.want)
				}
			}
			if cl.Debug != c.debug || cl.Signer != nil || cl.SVN != 0 || cl.ProductID != 0 || cl.VMPL != nil {
				t.Errorf("debug %v signer %x svn %d product %d vmpl %v", cl.Debug, cl.Signer, cl.SVN, cl.ProductID, cl.VMPL)
			}
			p := cl.Platform
			want := map[string]string{
				"fmspc": c.fmspc, "pck_ca": "platform", "rtmr0": c.rtmr0, "mrtd": c.mrtd, "mrconfigid": c.mrconfigid,
				"quote_version": string(rune('0' + c.version)), "quote_body_type": string(rune('0' + c.bodyType)),
				"qe_vendor_id": "939a7233f79c4ca9940a0db3957f0607", "qe_isv_prod_id": "2",
			}
			for k, w := range want {
				if p[k] != w {
					t.Errorf("platform %s = %q, want %q", k, p[k], w)
				}
			}
			for _, k := range []string{"rtmr1", "rtmr2", "rtmr3", "mrseam", "mrsignerseam", "mrowner", "mrownerconfig", "tee_tcb_svn", "td_attributes", "xfam", "seam_attributes", "qe_svn", "pce_svn", "qe_mrsigner"} {
				if p[k] == "" {
					t.Errorf("platform %s missing", k)
				}
			}
			_, has := p["mrservicetd"]
			if has != (c.bodyType == tdx.BodyTypeTD15) || (p["tee_tcb_svn2"] != "") != has {
				t.Errorf("mrservicetd %q tee_tcb_svn2 %q for body type %d", p["mrservicetd"], p["tee_tcb_svn2"], c.bodyType)
			}
			if len(cl.TCB.Components) != 34 {
				t.Errorf("%d TCB components", len(cl.TCB.Components))
			}
		})
	}
}

// TestTrusteeQuote4Claims: trustee's expected claims for tdx_quote_4.
func TestTrusteeQuote4Claims(t *testing.T) {
	cl, err := verify(t, tdx.NewVerifier(tdx.Config{}), readTestdata(t, "trustee-tdx_quote_4.dat"), attest.Options{Now: at, SkipCollateral: true})
	if err != nil {
		t.Fatal(err)
	}
	// The certificate's OCTET STRING is 021ac64d…8d5482; trustee prints it
	// byte-reversed (82548d22…1a02, as a little-endian number). The claim
	// keeps the certificate's byte order.
	if got := cl.Platform["platform_instance_id"]; got != "021ac64d355ba904e2d5948d228d5482" || reverseHex(got) != "82548d228d94d5e204a95b354dc61a02" {
		t.Errorf("platform instance ID %q", got)
	}
	if !strings.HasPrefix(cl.ReportData.String(), "7c71fe2c") || !strings.HasSuffix(cl.ReportData.String(), "501429") || !cl.Debug {
		t.Errorf("report data %s debug %v", cl.ReportData, cl.Debug)
	}
	if cl.Platform["td_attributes"] != "0100001000000000" || cl.Platform["tee_tcb_svn"] != "03000500000000000000000000000000" {
		t.Errorf("td_attributes %s tee_tcb_svn %s", cl.Platform["td_attributes"], cl.Platform["tee_tcb_svn"])
	}
}

func TestVerifyCollateral(t *testing.T) {
	qvl := &source{kind: dcap.TDX, fmspc: qvlFMSPC, ca: dcap.PlatformCA, c: qvlCollateral(t, "dcap-qvl-tdx_quote_collateral.json")}
	v := tdx.NewVerifier(tdx.Config{Collateral: qvl})

	t.Run("dcap-qvl UpToDate at 2025-07-04", func(t *testing.T) {
		cl, err := verify(t, v, readTestdata(t, "dcap-qvl-tdx_quote"), attest.Options{Now: qvlAt})
		if err != nil {
			t.Fatal(err)
		}
		if !cl.TCB.Evaluated || cl.TCB.Status != "UpToDate" || len(cl.TCB.Advisories) != 0 || !cl.RevocationChecked {
			t.Errorf("tcb %+v revocation checked %v", cl.TCB, cl.RevocationChecked)
		}
	})
	t.Run("dcap-qvl refused now: collateral stale", func(t *testing.T) {
		_, err := verify(t, v, readTestdata(t, "dcap-qvl-tdx_quote"), attest.Options{Now: at})
		if !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), "stale") {
			t.Fatalf("want stale collateral, got %v", err)
		}
	})
	t.Run("dcap-qvl refused the day after the TCB info's nextUpdate", func(t *testing.T) {
		_, err := verify(t, v, readTestdata(t, "dcap-qvl-tdx_quote"), attest.Options{Now: time.Date(2025, 7, 20, 0, 0, 0, 0, time.UTC)})
		if !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), "tcbInfo has expired") {
			t.Fatalf("want an expired TCB info, got %v", err)
		}
	})
	t.Run("dcap-qvl collateral for another quote", func(t *testing.T) {
		_, err := verify(t, v, readTestdata(t, "trustee-tdx_quote_6.dat"), attest.Options{Now: qvlAt})
		if !errors.Is(err, dcap.ErrCollateral) || qvl.calls == 0 {
			t.Fatalf("want ErrCollateral from the source, got %v", err)
		}
	})
	t.Run("go-tdx-guest SPR with its sample collateral: no matching TCB level", func(t *testing.T) {
		v := tdx.NewVerifier(tdx.Config{Collateral: &source{kind: dcap.TDX, fmspc: sprFMSPC, ca: dcap.PlatformCA, c: sprCollateral(t)}})
		_, err := verify(t, v, sprQuote(t), attest.Options{Now: sprAt})
		if !errors.Is(err, dcap.ErrNoMatchingTCBLevel) || !strings.Contains(err.Error(), "no matching TCB level") {
			t.Fatalf("want no matching TCB level, got %v", err)
		}
	})
	t.Run("dcap-qvl outdated (v5): the platform is below every TCB level", func(t *testing.T) {
		// The PCK certificate's SGX TCB component 08 is 3; every level of
		// the TCB info asks for 5, so Intel's verdict is "TCB not
		// supported" (dcap-qvl's own test inserts a permissive level to
		// get a status at all).
		v := tdx.NewVerifier(tdx.Config{Collateral: &source{kind: dcap.TDX, fmspc: qvlOutdatedFMSPC, ca: dcap.PlatformCA,
			c: qvlCollateral(t, "dcap-qvl-tdx_quote_outdated_collateral.json")}})
		_, err := verify(t, v, readTestdata(t, "dcap-qvl-tdx_quote_outdated"), attest.Options{Now: qvlOutdatedAt})
		if !errors.Is(err, dcap.ErrNoMatchingTCBLevel) {
			t.Fatalf("want no matching TCB level, got %v", err)
		}
	})
	t.Run("no source configured", func(t *testing.T) {
		_, err := verify(t, tdx.NewVerifier(tdx.Config{}), readTestdata(t, "dcap-qvl-tdx_quote"), attest.Options{Now: qvlAt})
		if !errors.Is(err, dcap.ErrCollateral) {
			t.Fatalf("want ErrCollateral, got %v", err)
		}
	})
	t.Run("SkipCollateral asks no source", func(t *testing.T) {
		s := &source{}
		cl, err := verify(t, tdx.NewVerifier(tdx.Config{Collateral: s}), readTestdata(t, "dcap-qvl-tdx_quote"), attest.Options{Now: at, SkipCollateral: true})
		if err != nil || s.calls != 0 || cl.TCB.Evaluated || cl.RevocationChecked {
			t.Fatalf("%v, %d calls", err, s.calls)
		}
	})
}

// TestVerifyTampered changes one byte (or certificate) of real quotes,
// v4 and v5: each is refused with the error of the stage that catches it.
func TestVerifyTampered(t *testing.T) {
	v := tdx.NewVerifier(tdx.Config{})
	for _, file := range []string{"trustee-tdx_quote_4.dat", "trustee-tdx_quote_5.dat"} {
		orig := readTestdata(t, file)
		q := mustParse(t, orig)
		bodyStart := tdx.HeaderSize
		if q.Header.Version == 5 {
			bodyStart += 6
		}
		sig := len(q.SignedByAttestationKey) + 4
		qe := sig + 128 + 6
		auth := qe + 384 + 64 + 2
		flip := func(off int) []byte { b := bytes.Clone(orig); b[off] ^= 0x01; return b }
		for _, c := range []struct {
			name string
			data []byte
			want error
			msg  string
		}{
			{"quote signature", flip(sig + 5), attest.ErrSignature, "quote signature"},
			{"attestation key", flip(sig + 64 + 7), attest.ErrSignature, "QE report data"},
			{"QE report ISVSVN", flip(qe + 258), attest.ErrSignature, "QE report signature"},
			{"QE report MRSIGNER", flip(qe + 128), attest.ErrSignature, "QE report signature"},
			{"QE report data", flip(qe + 320), attest.ErrSignature, "QE report signature"},
			{"QE report signature", flip(qe + 384 + 3), attest.ErrSignature, "QE report signature"},
			{"QE authentication data (QE report data binding)", flip(auth + 1), attest.ErrSignature, "QE report data"},
			{"header user data", flip(30), attest.ErrSignature, "quote signature"},
			{"TEE_TCB_SVN", flip(bodyStart + 0), attest.ErrSignature, "quote signature"},
			{"MRSEAM", flip(bodyStart + 16), attest.ErrSignature, "quote signature"},
			{"TD_ATTRIBUTES.DEBUG", flip(bodyStart + 120), attest.ErrSignature, "quote signature"},
			{"MRTD", flip(bodyStart + 136 + 47), attest.ErrSignature, "quote signature"},
			{"MRCONFIGID", flip(bodyStart + 184), attest.ErrSignature, "quote signature"},
			{"MROWNER", flip(bodyStart + 232), attest.ErrSignature, "quote signature"},
			{"RTMR0", flip(bodyStart + 328), attest.ErrSignature, "quote signature"},
			{"RTMR1", flip(bodyStart + 376 + 10), attest.ErrSignature, "quote signature"},
			{"RTMR2", flip(bodyStart + 424 + 20), attest.ErrSignature, "quote signature"},
			{"RTMR3", flip(bodyStart + 472 + 47), attest.ErrSignature, "quote signature"},
			{"REPORTDATA", flip(bodyStart + 520), attest.ErrSignature, "quote signature"},
			{"trailing byte", append(bytes.Clone(orig), 1), attest.ErrMalformed, "non-zero byte"},
			{"PCK signature", withChain(t, orig, func(c [][]byte) [][]byte { c[0][len(c[0])-1] ^= 1; return c }), attest.ErrChain, ""},
			{"PCK chain without its CA", withChain(t, orig, func(c [][]byte) [][]byte { return [][]byte{c[0], c[2]} }), attest.ErrChain, ""},
			{"PCK chain, leaf only", withChain(t, orig, func(c [][]byte) [][]byte { return c[:1] }), attest.ErrChain, ""},
			{"PCK chain with a forged root", withChain(t, orig, func(c [][]byte) [][]byte { return [][]byte{c[0], c[1], forgedRoot(t, c[2])} }), attest.ErrChain, "does not carry the key"},
			{"PCK chain from another platform", withChain(t, orig, func([][]byte) [][]byte { return chainOf(t, "dcap-qvl-tdx_quote") }), attest.ErrSignature, "QE report signature"},
			{"simulated PCK chain", withChain(t, orig, func([][]byte) [][]byte { return simChain(t) }), attest.ErrChain, ""},
		} {
			t.Run(file+"/"+c.name, func(t *testing.T) {
				_, err := verify(t, v, c.data, attest.Options{Now: at, SkipCollateral: true, AllowSimulated: true})
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("want %v (%q), got %v", c.want, c.msg, err)
				}
			})
		}
	}
}

// withChain returns quote b with its PCK chain (DER certificates) changed by
// f, the size fields made to agree.
func withChain(t testing.TB, b []byte, f func([][]byte) [][]byte) []byte {
	t.Helper()
	q := mustParse(t, b)
	ders := f(clone2(q.PCKChain))
	var chain []byte
	for _, d := range ders {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	q.Signature.PCKCertChain = append(chain, 0)
	out, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func clone2(b [][]byte) [][]byte {
	c := make([][]byte, len(b))
	for i := range b {
		c[i] = bytes.Clone(b[i])
	}
	return c
}

func chainOf(t testing.TB, file string) [][]byte {
	return clone2(mustParse(t, readTestdata(t, file)).PCKChain)
}

func simChain(t testing.TB) [][]byte {
	ev, err := simtee.TDX{}.Attest(context.Background(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	return clone2(mustParse(t, ev.Data).PCKChain)
}

// forgedRoot is a self-signed certificate with the subject of root der but
// another key.
func forgedRoot(t testing.TB, der []byte) []byte {
	t.Helper()
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pki, err := newFakeIntel(root.NotBefore, root.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *pki.Root
	tmpl.Subject, tmpl.Issuer = root.Subject, root.Subject
	forged, err := x509.CreateCertificate(randReader{}, &tmpl, &tmpl, &pki.RootKey.PublicKey, pki.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	return forged
}

// TestVerifySimulated: a simtee quote chains to the simulated root only,
// which needs AllowSimulated, and says so.
func TestVerifySimulated(t *testing.T) {
	td := simtee.TDX{MRTD: [48]byte{1}, MRConfigID: [48]byte{2}, RTMRs: [4][48]byte{{3}, {4}, {5}, {6}}, Debug: true}
	ev, err := td.Attest(context.Background(), [64]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	sim := tdx.NewVerifier(tdx.Config{Simulated: []*x509.Certificate{simtee.SGXRoot()}})
	if _, err := sim.Verify(context.Background(), ev, attest.Options{Now: at, SkipCollateral: true}); !errors.Is(err, attest.ErrSimulated) {
		t.Fatalf("without AllowSimulated: %v", err)
	}
	if _, err := tdx.NewVerifier(tdx.Config{}).Verify(context.Background(), ev, attest.Options{Now: at, SkipCollateral: true, AllowSimulated: true}); !errors.Is(err, attest.ErrChain) {
		t.Fatalf("no simulated root configured: %v", err)
	}
	cl, err := sim.Verify(context.Background(), ev, attest.Options{Now: at, SkipCollateral: true, AllowSimulated: true})
	if err != nil {
		t.Fatal(err)
	}
	// Collateral: a simulated chain is never evaluated against the real
	// source, and simulated SGX collateral does not vouch for a TD.
	real := &source{}
	withSGX := tdx.NewVerifier(tdx.Config{Simulated: []*x509.Certificate{simtee.SGXRoot()}, Collateral: real, SimulatedCollateral: simtee.SGXCollateralSource()})
	if _, err := withSGX.Verify(context.Background(), ev, attest.Options{Now: at, AllowSimulated: true}); !errors.Is(err, dcap.ErrCollateral) || real.calls != 0 {
		t.Fatalf("simulated SGX collateral for a TD: %v (%d calls to the real source)", err, real.calls)
	}
	if _, err := sim.Verify(context.Background(), ev, attest.Options{Now: at, AllowSimulated: true}); !errors.Is(err, dcap.ErrCollateral) {
		t.Fatalf("no simulated collateral source: %v", err)
	}
	if !cl.Simulated || !cl.Debug || cl.Measurement[0] != 1 || cl.HostData[0] != 2 || cl.ReportData[0] != 7 || cl.Platform["rtmr3"][:2] != "06" || cl.Platform["pck_ca"] != "processor" {
		t.Errorf("claims %+v", cl)
	}
}

func TestVerifyRefusesMisuse(t *testing.T) {
	v := tdx.NewVerifier(tdx.Config{})
	b := readTestdata(t, "trustee-tdx_quote_4.dat")
	ctx := context.Background()
	opts := attest.Options{Now: at, SkipCollateral: true}
	if _, err := v.Verify(ctx, nil, opts); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("nil evidence: %v", err)
	}
	if _, err := v.Verify(ctx, &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: b}, opts); !errors.Is(err, attest.ErrUnknownFormat) {
		t.Errorf("SGX format: %v", err)
	}
	if _, err := v.Verify(ctx, &attest.Evidence{Format: attest.FormatTDXQuote, Data: b, Certs: [][]byte{{1}}}, opts); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("certs: %v", err)
	}
	if _, err := v.Verify(ctx, evidence(b), attest.Options{SkipCollateral: true}); err == nil {
		t.Error("no time")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := v.Verify(cctx, evidence(b), opts); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// Before the PCK certificate was issued, and after the PCK Platform
	// CA expires (2033-05-21).
	for _, when := range []time.Time{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := v.Verify(ctx, evidence(b), attest.Options{Now: when, SkipCollateral: true}); !errors.Is(err, attest.ErrChain) {
			t.Errorf("at %s: %v", when, err)
		}
	}
	// No real root trusted.
	if _, err := tdx.NewVerifier(tdx.Config{Roots: []*x509.Certificate{}}).Verify(ctx, evidence(b), opts); !errors.Is(err, attest.ErrChain) {
		t.Errorf("no roots: %v", err)
	}
	if v.Format() != attest.FormatTDXQuote {
		t.Error("format")
	}
}

// TestVerifyCachedChainStillTimed: a chain verified once is not trusted
// from the cache outside its validity.
func TestVerifyCachedChainStillTimed(t *testing.T) {
	v := tdx.NewVerifier(tdx.Config{})
	b := readTestdata(t, "trustee-tdx_quote_4.dat")
	for i, c := range []struct {
		at time.Time
		ok bool
	}{{at, true}, {at, true}, {time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC), false}, {time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), false}, {at, true}} {
		_, err := verify(t, v, b, attest.Options{Now: c.at, SkipCollateral: true})
		if (err == nil) != c.ok {
			t.Errorf("%d at %s: %v", i, c.at, err)
		}
	}
}

// The header of every quote here says version 4 or 5 in its first bytes;
// this guards the offsets TestVerifyTampered computes.
func TestTamperOffsets(t *testing.T) {
	b := readTestdata(t, "trustee-tdx_quote_5.dat")
	q := mustParse(t, b)
	sig := len(q.SignedByAttestationKey)
	if binary.LittleEndian.Uint32(b[sig:]) != uint32(len(b)-sig-4) || !bytes.Equal(b[sig+4+134:sig+4+134+384], q.SignedByPCK) {
		t.Fatal("offsets")
	}
	if hex.EncodeToString(b[sig+4+64:sig+4+128]) != hex.EncodeToString(q.Signature.AttestationKey[:]) {
		t.Fatal("attestation key offset")
	}
}

func reverseHex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		return ""
	}
	slices.Reverse(b)
	return hex.EncodeToString(b)
}
