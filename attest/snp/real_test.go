package snp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
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

// vlekDay is when the VLEK vector verifies (its VLEK is valid
// 2024-12-10T22:14:21Z to 2025-12-10T22:14:21Z); at now it has expired.
var vlekDay = time.Date(2024, 12, 11, 0, 0, 0, 0, time.UTC)

// realVector is a real report with its endorsement certificate and a time
// at which SOURCES.md says it verifies.
type realVector struct {
	name, report, cert string
	at                 time.Time
}

var realVectors = []realVector{
	{"go-sev-guest Milan VCEK", "gosevguest-milan-attestation.bin", "gosevguest-milan-vcek.der", now},
	{"trustee Milan VCEK", "trustee-milan-report.bin", "trustee-milan-vcek.der", now},
	{"trustee Milan VLEK", "trustee-milan-vlek-report.bin", "trustee-milan-vlek.der", vlekDay},
}

func (rv realVector) evidence(t testing.TB) *attest.Evidence {
	return &attest.Evidence{
		Format: attest.FormatSNPReport,
		Data:   readTestdata(t, rv.report),
		Certs:  [][]byte{readTestdata(t, rv.cert)},
	}
}

// realVerifier trusts the genuine AMD roots (and the simulated ones, as in
// production) and accepts a missing CRL: there is no real AMD CRL among
// the vectors.
func realVerifier(g snp.Getter) *snp.Verifier {
	return snp.NewVerifier(snp.Config{Simulated: simRoots(), Getter: g, AllowMissingCRL: true})
}

// TestRealVectors: each real vector verifies at its time, with revocation
// unchecked, and without a CRL source and AllowMissingCRL it is refused.
func TestRealVectors(t *testing.T) {
	for _, rv := range realVectors {
		t.Run(rv.name, func(t *testing.T) {
			ev := rv.evidence(t)
			for _, opts := range []attest.Options{{Now: rv.at}, {Now: rv.at, SkipCollateral: true}} {
				c, err := realVerifier(nil).Verify(context.Background(), ev, opts)
				if err != nil {
					t.Fatalf("Verify(%+v): %v", opts, err)
				}
				if c.Simulated || c.RevocationChecked || c.TCB.Evaluated {
					t.Errorf("Simulated %v RevocationChecked %v TCB.Evaluated %v, want all false", c.Simulated, c.RevocationChecked, c.TCB.Evaluated)
				}
			}
			// Fail closed: no CRL and no permission to go without.
			_, err := snp.NewVerifier(snp.Config{}).Verify(context.Background(), ev, attest.Options{Now: rv.at})
			wantOnly(t, err, attest.ErrChain)
			if !errors.Is(err, snp.ErrCollateral) || !strings.Contains(err.Error(), "/v1/Milan/crl") {
				t.Errorf("not an ErrCollateral naming the CRL: %v", err)
			}
			// ... however many certificates come along (ASK, ARK: ignored).
			ev.Certs = append(ev.Certs, []byte("ignored"), nil)
			if _, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: rv.at}); err != nil {
				t.Errorf("with extra certificates: %v", err)
			}
		})
	}
}

// TestRealGoSevGuestMilan checks every claim of go-sev-guest's real Milan
// report.
func TestRealGoSevGuestMilan(t *testing.T) {
	ev := realVectors[0].evidence(t)
	c, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: now})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var rd [64]byte
	copy(rd[:], []byte{1, 2, 3, 4, 5})
	measurement, _ := hex.DecodeString("b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01")
	checkClaims(t, c, &attest.Claims{
		TEE:         attest.SEVSNP,
		Format:      attest.FormatSNPReport,
		Simulated:   false,
		Measurement: measurement,
		Debug:       true, // policy 0xb0000 has bit 19
		HostData:    make([]byte, 32),
		ReportData:  rd[:],
		VMPL:        u32(0),
		TCB: attest.TCB{Components: map[string]uint64{
			"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68,
		}},
	})
	wantPlatform(t, c.Platform, map[string]string{
		"version":           "2",
		"vmpl":              "0",
		"policy":            "0xb0000",
		"smt_allowed":       "true",
		"migration_allowed": "false",
		"signer":            "vcek",
		"product_line":      "Milan",
		"reported_tcb":      "0x4405000000000002",
		"report_id":         "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a",
		"report_id_ma":      strings.Repeat("ff", 32),
		"current_firmware":  "1.49.3",
		"chip_id":           "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d",
	})
	if _, ok := c.Platform["cpuid_family"]; ok {
		t.Errorf("a version 2 report claims a CPUID family")
	}

	// The VCEK is valid 2022-09-24T00:55:28Z to 2029-09-24T00:55:28Z.
	for _, at := range []time.Time{time.Date(2022, 9, 24, 0, 55, 27, 0, time.UTC), time.Date(2029, 9, 24, 0, 55, 29, 0, time.UTC)} {
		_, err = realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: at})
		wantOnly(t, err, attest.ErrChain)
		if !strings.Contains(err.Error(), "https://kdsintf.amd.com/vcek/v1/Milan/3ac3fe21") {
			t.Errorf("error does not say where to get the VCEK: %v", err)
		}
	}

	// Trusting only the simulated roots, the real report does not verify.
	_, err = snp.NewVerifier(snp.Config{Roots: map[string][]*trust.AMDRootCerts{}, Simulated: simRoots(), AllowMissingCRL: true}).
		Verify(context.Background(), ev, simulation)
	wantOnly(t, err, attest.ErrChain)
}

// vcekURL is the KDS URL of the go-sev-guest vector's VCEK, as SOURCES.md
// gives it (TestRealAttestationVerification).
const vcekURL = "https://kdsintf.amd.com/vcek/v1/Milan/3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68"

// TestRealFetchVCEK: a VCEK missing from the evidence is fetched from the
// getter by its exact KDS URL, and only when collateral may be fetched.
func TestRealFetchVCEK(t *testing.T) {
	report := readTestdata(t, "gosevguest-milan-attestation.bin")
	ev := &attest.Evidence{Format: attest.FormatSNPReport, Data: report}
	g := newGetter(map[string][]byte{vcekURL: readTestdata(t, "gosevguest-milan-vcek.der")})
	c, err := realVerifier(g).Verify(context.Background(), ev, attest.Options{Now: now})
	if err != nil {
		t.Fatalf("Verify with the VCEK fetched: %v", err)
	}
	if c.ReportData[4] != 5 || c.RevocationChecked {
		t.Errorf("claims %+v", c)
	}
	// A version 2 report does not name its product line: Milan is tried
	// first, and found. The CRL was asked for too (and is missing).
	want := []string{vcekURL, "https://kdsintf.amd.com/vcek/v1/Milan/crl"}
	if got := g.urls(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("requests %v, want %v", got, want)
	}

	// Without the VCEK anywhere: every product line tried, then refused.
	g = newGetter(nil)
	_, err = realVerifier(g).Verify(context.Background(), ev, attest.Options{Now: now})
	wantOnly(t, err, attest.ErrChain)
	if !errors.Is(err, snp.ErrCollateral) || !strings.Contains(err.Error(), vcekURL) ||
		!strings.Contains(err.Error(), strings.Replace(vcekURL, "Milan", "Genoa", 1)) {
		t.Errorf("not an ErrCollateral naming the URLs tried: %v", err)
	}
	// No getter, or collateral skipped: the VCEK must be in the evidence.
	for _, tc := range []struct {
		g    snp.Getter
		opts attest.Options
	}{
		{nil, attest.Options{Now: now}},
		{g, attest.Options{Now: now, SkipCollateral: true}},
	} {
		before := g.requests()
		_, err = realVerifier(tc.g).Verify(context.Background(), ev, tc.opts)
		wantOnly(t, err, attest.ErrChain)
		if !errors.Is(err, snp.ErrCollateral) || !strings.Contains(err.Error(), "no VCEK in the evidence") {
			t.Errorf("not an ErrCollateral saying the VCEK is missing: %v", err)
		}
		if g.requests() != before {
			t.Errorf("the getter was asked with %+v", tc.opts)
		}
	}
	// A getter serving another chip's VCEK at that URL.
	g = newGetter(map[string][]byte{vcekURL: readTestdata(t, "trustee-milan-vcek.der")})
	_, err = realVerifier(g).Verify(context.Background(), ev, attest.Options{Now: now})
	wantOnly(t, err, attest.ErrSignature)
	// A cancelled context stops the fetch.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := realVerifier(newGetter(nil)).Verify(ctx, ev, attest.Options{Now: now}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestRealTrusteeMilan checks trustee's real Milan VCEK report.
func TestRealTrusteeMilan(t *testing.T) {
	ev := realVectors[1].evidence(t)
	c, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: now})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	measurement, _ := hex.DecodeString("a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c")
	idKey, _ := hex.DecodeString("0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3")
	rd, _ := hex.DecodeString("ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2" + strings.Repeat("00", 32))
	checkClaims(t, c, &attest.Claims{
		TEE:         attest.SEVSNP,
		Format:      attest.FormatSNPReport,
		Measurement: measurement,
		Signer:      idKey, // no author key: the ID key
		SVN:         4,
		HostData:    make([]byte, 32),
		ReportData:  rd,
		VMPL:        u32(0),
		TCB: attest.TCB{Components: map[string]uint64{
			"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115,
		}},
	})
	wantPlatform(t, c.Platform, map[string]string{
		"version":      "2",
		"policy":       "0x3001f",
		"abi_minor":    "31",
		"family_id":    "01" + strings.Repeat("00", 15),
		"image_id":     "02" + strings.Repeat("00", 15),
		"reported_tcb": "0x7308000000000003",
		"current_tcb":  "0xce08000000000003",
		"signer":       "vcek",
		"product_line": "Milan",
	})
	// The VCEK is valid 2023-01-24T17:58:26Z to 2030-01-24T17:58:26Z.
	for _, at := range []time.Time{time.Date(2023, 1, 24, 17, 58, 25, 0, time.UTC), time.Date(2030, 1, 24, 17, 58, 27, 0, time.UTC)} {
		_, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: at})
		wantOnly(t, err, attest.ErrChain)
	}
}

// TestRealVLEK: trustee's VLEK report verifies through AMD's ASVK at
// 2024-12-11 and is refused at now, the VLEK having expired; a VLEK is never
// fetched.
func TestRealVLEK(t *testing.T) {
	ev := realVectors[2].evidence(t)
	c, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: vlekDay})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := map[string]uint64{"bootloader": 4, "tee": 0, "snp": 24, "microcode": 217}
	if c.Simulated || !maps.Equal(c.TCB.Components, want) || *c.VMPL != 1 {
		t.Fatalf("Simulated %v TCB %v VMPL %d, want false %v 1", c.Simulated, c.TCB.Components, *c.VMPL, want)
	}
	wantPlatform(t, c.Platform, map[string]string{
		"version":        "3",
		"vmpl":           "1",
		"signer":         "vlek",
		"product_line":   "Milan",
		"csp_id":         "CN=cc-us-east-2.amazonaws.com",
		"cpuid_family":   "0x19",
		"cpuid_model":    "0x1",
		"cpuid_stepping": "0x1",
		"platform_info":  "0x27",
		"reported_tcb":   "0xd918000000000004",
		"chip_id":        strings.Repeat("00", 64),
	})

	_, err = realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: now})
	wantOnly(t, err, attest.ErrChain)
	if !strings.Contains(err.Error(), "expired") {
		t.Errorf("error does not say the VLEK expired: %v", err)
	}

	// The VLEK CRL is the vlek endpoint's.
	g := newGetter(nil)
	if _, err := realVerifier(g).Verify(context.Background(), ev, attest.Options{Now: vlekDay}); err != nil {
		t.Fatal(err)
	}
	if got := g.urls(); !slices.Equal(got, []string{"https://kdsintf.amd.com/vlek/v1/Milan/crl"}) {
		t.Errorf("requests %v, want only the VLEK CRL", got)
	}

	// Without the VLEK: refused, nothing fetched.
	g = newGetter(nil)
	_, err = realVerifier(g).Verify(context.Background(), &attest.Evidence{Format: ev.Format, Data: ev.Data}, attest.Options{Now: vlekDay})
	wantOnly(t, err, attest.ErrChain)
	if errors.Is(err, snp.ErrCollateral) || !strings.Contains(err.Error(), "no VLEK") || g.requests() != 0 {
		t.Errorf("missing VLEK: %v (%d requests)", err, g.requests())
	}

	// Without the ASVK among the roots, the VLEK does not chain.
	milanVCEKOnly := trust.AMDRootCertsProduct("Milan")
	if err := milanVCEKOnly.FromKDSCertBytes(trust.AskArkMilanVcekBytes); err != nil {
		t.Fatal(err)
	}
	_, err = snp.NewVerifier(snp.Config{Roots: map[string][]*trust.AMDRootCerts{"Milan": {milanVCEKOnly}}, AllowMissingCRL: true}).
		Verify(context.Background(), ev, attest.Options{Now: vlekDay})
	wantOnly(t, err, attest.ErrChain)

	// Reported as VCEK-signed, the VLEK is unfit.
	bad := bytes.Clone(ev.Data)
	binary.LittleEndian.PutUint32(bad[0x48:], abi.ComposeSignerInfo(abi.SignerInfo{SigningKey: abi.VcekReportSigner}))
	_, err = realVerifier(nil).Verify(context.Background(), &attest.Evidence{Format: ev.Format, Data: bad, Certs: ev.Certs}, attest.Options{Now: vlekDay})
	wantOnly(t, err, attest.ErrChain)
}

// TestRealInvalidVCEKs: trustee's VCEKs with the legacy (raw) and new
// (OCTET STRING) hwID encodings parse, and are refused at the chain: their
// signatures are not AMD's.
func TestRealInvalidVCEKs(t *testing.T) {
	placeholder := make([]byte, 64)
	for i := range placeholder {
		placeholder[i] = byte(i)
	}
	for _, name := range []string{"trustee-vcek-invalid-legacy.der", "trustee-vcek-invalid-new.der"} {
		t.Run(name, func(t *testing.T) {
			der := readTestdata(t, name)
			cert, err := trust.ParseCert(der)
			if err != nil {
				t.Fatal(err)
			}
			exts, err := kds.VcekCertificateExtensions(cert)
			if err != nil || !bytes.Equal(exts.HWID, placeholder) || exts.ProductName != "Milan-B0" {
				t.Fatalf("extensions %+v, %v", exts, err)
			}
			ev := &attest.Evidence{Format: attest.FormatSNPReport, Data: readTestdata(t, "trustee-milan-report.bin"), Certs: [][]byte{der}}
			_, err = realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: now})
			wantOnly(t, err, attest.ErrChain)
			if !strings.Contains(err.Error(), "signed by unknown authority") {
				t.Errorf("unclear error: %v", err)
			}
		})
	}
}

// TestRealTampered flips every field group of each real report, and every
// byte of the signed area, and swaps certificates.
func TestRealTampered(t *testing.T) {
	for i, rv := range realVectors {
		t.Run(rv.name, func(t *testing.T) {
			base := rv.evidence(t)
			other := realVectors[(i+1)%2].cert // a VCEK of another chip
			verify := func(t *testing.T, ev *attest.Evidence) error {
				t.Helper()
				c, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: rv.at})
				if err == nil {
					t.Fatalf("tampered evidence verified: %+v", c)
				}
				if c != nil {
					t.Errorf("claims returned with an error")
				}
				return err
			}
			flip := func(off int, mask byte) *attest.Evidence {
				ev := &attest.Evidence{Format: base.Format, Data: bytes.Clone(base.Data), Certs: base.Certs}
				ev.Data[off] ^= mask
				return ev
			}
			for _, tc := range []struct {
				name string
				ev   *attest.Evidence
				want error
			}{
				{"signature R", flip(0x2A0, 1), attest.ErrSignature},
				{"signature S", flip(0x2A0+0x48+5, 0x10), attest.ErrSignature},
				{"measurement", flip(0x90+47, 1), attest.ErrSignature},
				{"report data", flip(0x50, 0x80), attest.ErrSignature},
				{"host data", flip(0xC0+31, 1), attest.ErrSignature},
				{"policy SMT", flip(0x0A, 0x01), attest.ErrSignature},
				{"policy debug", flip(0x0A, 0x08), attest.ErrSignature},
				{"policy ABI minor", flip(0x08, 0x01), attest.ErrSignature},
				{"guest SVN", flip(0x04, 1), attest.ErrSignature},
				{"VMPL", flip(0x30, 2), attest.ErrSignature},
				{"reported TCB microcode", flip(0x187, 1), attest.ErrSignature},
				{"reported TCB bootloader", flip(0x180, 1), attest.ErrSignature},
				{"chip id", flip(0x1A0+63, 1), attest.ErrSignature},
				{"truncated", &attest.Evidence{Format: base.Format, Data: base.Data[:abi.ReportSize-1], Certs: base.Certs}, attest.ErrMalformed},
				{"extended", &attest.Evidence{Format: base.Format, Data: append(bytes.Clone(base.Data), 0), Certs: base.Certs}, attest.ErrMalformed},
				{"certificate table appended", &attest.Evidence{Format: base.Format, Data: append(bytes.Clone(base.Data), make([]byte, 24)...), Certs: base.Certs}, attest.ErrMalformed},
				{"another chip's VCEK", &attest.Evidence{Format: base.Format, Data: base.Data, Certs: [][]byte{readTestdata(t, other)}}, nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					err := verify(t, tc.ev)
					want := tc.want
					if want == nil { // the other chip's certificate
						want = attest.ErrSignature
						if strings.Contains(rv.name, "VLEK") {
							want = attest.ErrChain // a VCEK is unfit as a VLEK
						} else if !strings.Contains(err.Error(), "another chip") {
							t.Errorf("error does not suggest a wrong certificate: %v", err)
						}
					}
					wantOnly(t, err, want)
				})
			}
			// Every byte of the signed area, one bit flipped: each region
			// fails at the stage it belongs to (tamperedWant). It wraps
			// exactly one sentinel, and the parser agrees on what is
			// malformed.
			version := binary.LittleEndian.Uint32(base.Data)
			for off := range 0x2A0 {
				ev := flip(off, 0x01)
				err := verify(t, ev)
				region, want := tamperedWant(off, version)
				n := 0
				for _, s := range sentinels {
					if errors.Is(err, s) {
						n++
					}
				}
				if n != 1 || !errors.Is(err, want) {
					t.Errorf("byte %#x (%s): %v, want only %v", off, region, err, want)
				}
				if _, perr := snp.ParseReport(ev.Data); (perr != nil) != (want == attest.ErrMalformed) {
					t.Errorf("byte %#x (%s): ParseReport: %v", off, region, perr)
				}
			}
		})
	}
}

// TestRealCRLOfAnotherRoot: a CRL that the real ARK did not sign (here the
// simulated one, served at the real URL) is refused, even where a missing
// CRL would be accepted.
func TestRealCRLOfAnotherRoot(t *testing.T) {
	crl, err := simtee.SNPRevocationList(nil, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	g := newGetter(map[string][]byte{"https://kdsintf.amd.com/vcek/v1/Milan/crl": crl})
	_, err = realVerifier(g).Verify(context.Background(), realVectors[0].evidence(t), attest.Options{Now: now})
	wantOnly(t, err, attest.ErrChain)
	if !errors.Is(err, snp.ErrCollateral) || !strings.Contains(err.Error(), "not the ARK") {
		t.Errorf("error: %v", err)
	}
}

// tamperedWant is the stage that refuses a report of the given version
// whose byte off of the signed area has its lowest bit flipped, by the
// ATTESTATION_REPORT table of the SEV-SNP ABI specification, and the
// field's name. Reserved fields and bits are malformed; anything else,
// a changed CPUID family or model included, breaks the signature.
func tamperedWant(off int, version uint32) (region string, want error) {
	v3 := version >= abi.ReportVersion3
	switch {
	case off == 0x00 && v3:
		return "VERSION 3 to 2: the CPUID bytes become reserved", attest.ErrMalformed
	case off == 0x00:
		return "VERSION 2 to 3", attest.ErrSignature
	case off < 0x04:
		return "VERSION out of range", attest.ErrMalformed
	case off < 0x08:
		return "GUEST_SVN", attest.ErrSignature
	case off < 0x0C: // bits 0..31: ABI, SMT, reserved-one 17 (untouched by bit 0 of 0x0A), flags up to 25
		return "POLICY bits 0-31", attest.ErrSignature
	case off < 0x10:
		return "POLICY reserved bits 32-63", attest.ErrMalformed
	case off < 0x30:
		return "FAMILY_ID, IMAGE_ID", attest.ErrSignature
	case off < 0x34:
		return "VMPL", attest.ErrSignature
	case off < 0x38:
		return "SIGNATURE_ALGO", attest.ErrMalformed
	case off < 0x48:
		return "CURRENT_TCB, PLATFORM_INFO", attest.ErrSignature
	case off == 0x48:
		return "SIGNER_INFO AUTHOR_KEY_EN", attest.ErrSignature
	case off < 0x4C:
		return "SIGNER_INFO reserved bits", attest.ErrMalformed
	case off < 0x50:
		return "reserved 0x4C", attest.ErrMalformed
	case off < 0x188:
		return "REPORT_DATA to REPORTED_TCB", attest.ErrSignature
	case off < 0x18A && v3:
		// The flipped family/model is one go-sev-guest does not name, so
		// the certificate names the line and the signature breaks.
		return "CPUID_FAM_ID, CPUID_MOD_ID: an unnamed model", attest.ErrSignature
	case off == 0x18A && v3:
		return "CPUID_STEP", attest.ErrSignature
	case off < 0x1A0:
		return "reserved 0x188/0x18B", attest.ErrMalformed
	case off < 0x1EB:
		return "CHIP_ID, COMMITTED_TCB, CURRENT_BUILD/MINOR/MAJOR", attest.ErrSignature
	case off == 0x1EB:
		return "reserved 0x1EB", attest.ErrMalformed
	case off < 0x1EF:
		return "COMMITTED_BUILD/MINOR/MAJOR", attest.ErrSignature
	case off == 0x1EF:
		return "reserved 0x1EF", attest.ErrMalformed
	case off < 0x1F8:
		return "LAUNCH_TCB", attest.ErrSignature
	case off < 0x208 && version >= abi.ReportVersion4:
		return "LAUNCH_MIT_VECTOR, CURRENT_MIT_VECTOR", attest.ErrSignature
	}
	return "reserved 0x1F8 (0x208 from version 4) to 0x2A0", attest.ErrMalformed
}
