package snp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"strconv"
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

var (
	now        = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	sentinels  = []error{attest.ErrMalformed, attest.ErrChain, attest.ErrSignature, attest.ErrSimulated}
	simulation = attest.Options{Now: now, AllowSimulated: true}
)

// newVerifier trusts go-sev-guest's embedded AMD roots and, as simulated,
// the simtee chain with its preloaded CRL, without a getter: the wiring of
// attest/formats and the quickstart.
func newVerifier() *snp.Verifier {
	return snp.NewVerifier(snp.Config{Simulated: simRoots()})
}

func simRoots() map[string][]*trust.AMDRootCerts {
	return map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}}
}

func attestSim(t *testing.T, s simtee.SNP, reportData [64]byte) *attest.Evidence {
	t.Helper()
	ev, err := s.Attest(context.Background(), reportData)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	return ev
}

// wantOnly checks that err wraps want and no other stage's sentinel.
func wantOnly(t *testing.T, err, want error) {
	t.Helper()
	t.Log(err)
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("error = %v, wraps %v besides %v", err, s, want)
		}
	}
}

func fill[T ~[]byte](b T, v byte) T {
	for i := range b {
		b[i] = v + byte(i)
	}
	return b
}

func TestVerifySimulated(t *testing.T) {
	s := simtee.SNP{GuestSVN: 7, VMPL: 2}
	fill(s.Measurement[:], 0x10)
	fill(s.HostData[:], 0x80)
	fill(s.FamilyID[:], 0xf0)
	fill(s.ImageID[:], 0xe0)
	var rd [64]byte
	fill(rd[:], 0x40)
	ev := attestSim(t, s, rd)

	c, err := newVerifier().Verify(context.Background(), ev, simulation)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	chip := simtee.SNPChipID()
	want := &attest.Claims{
		TEE:               attest.SEVSNP,
		Format:            attest.FormatSNPReport,
		Simulated:         true,
		Measurement:       s.Measurement[:],
		SVN:               7,
		HostData:          s.HostData[:],
		ReportData:        rd[:],
		VMPL:              u32(2),
		RevocationChecked: true, // against the simulated CRL simtee.SNPTrust preloads
		TCB: attest.TCB{Evaluated: true, Components: map[string]uint64{
			"bootloader": 4, "tee": 0, "snp": 22, "microcode": 213,
		}},
	}
	checkClaims(t, c, want)
	wantPlatform(t, c.Platform, map[string]string{
		"version":            "3",
		"vmpl":               "2",
		"policy":             "0x30000",
		"abi_major":          "0",
		"abi_minor":          "0",
		"smt_allowed":        "true",
		"migration_allowed":  "false",
		"single_socket":      "false",
		"family_id":          hex.EncodeToString(s.FamilyID[:]),
		"image_id":           hex.EncodeToString(s.ImageID[:]),
		"id_key_digest":      strings.Repeat("00", 48),
		"author_key_digest":  strings.Repeat("00", 48),
		"author_key_en":      "false",
		"chip_id":            hex.EncodeToString(chip[:]),
		"report_id_ma":       strings.Repeat("ff", 32),
		"signer":             "vcek",
		"product_line":       "Milan",
		"platform_info":      "0x1",
		"current_tcb":        "0xd516000000000004",
		"committed_tcb":      "0xd516000000000004",
		"launch_tcb":         "0xd516000000000004",
		"reported_tcb":       "0xd516000000000004",
		"current_firmware":   "1.55.21",
		"committed_firmware": "1.55.21",
		"cpuid_family":       "0x19",
		"cpuid_model":        "0x1",
		"cpuid_stepping":     "0x0",
	})

	_, err = newVerifier().Verify(context.Background(), ev, attest.Options{Now: now})
	wantOnly(t, err, attest.ErrSimulated)

	// Without simulated roots configured it is just an unknown chain.
	_, err = snp.NewVerifier(snp.Config{}).Verify(context.Background(), ev, simulation)
	wantOnly(t, err, attest.ErrChain)
}

func u32(v uint32) *uint32 { return &v }

// checkClaims compares everything but Platform (wantPlatform does).
func checkClaims(t *testing.T, got, want *attest.Claims) {
	t.Helper()
	if got.TEE != want.TEE || got.Format != want.Format || got.Simulated != want.Simulated ||
		got.SVN != want.SVN || got.Debug != want.Debug || got.ProductID != 0 ||
		!bytes.Equal(got.Measurement, want.Measurement) || !bytes.Equal(got.HostData, want.HostData) ||
		!bytes.Equal(got.ReportData, want.ReportData) || !bytes.Equal(got.Signer, want.Signer) ||
		got.VMPL == nil || want.VMPL == nil || *got.VMPL != *want.VMPL || got.MigrationAgent != want.MigrationAgent ||
		got.RevocationChecked != want.RevocationChecked || got.TCB.Evaluated != want.TCB.Evaluated ||
		got.TCB.Status != "" || got.TCB.Advisories != nil || got.PCRs != nil || got.Runtime != nil ||
		!maps.Equal(got.TCB.Components, want.TCB.Components) {
		t.Fatalf("claims\n got %+v\nwant %+v", got, want)
	}
}

// wantPlatform checks the listed platform claims; report_id varies.
func wantPlatform(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Platform[%q] = %q, want %q", k, got[k], v)
		}
	}
	if len(got["report_id"]) != 64 {
		t.Errorf("Platform[report_id] = %q, want 32 bytes of hex", got["report_id"])
	}
}

func TestVerifySimulatedDebugAndSigner(t *testing.T) {
	var author, id [48]byte
	fill(author[:], 0xa0)
	fill(id[:], 0x30)
	for _, tc := range []struct {
		name       string
		s          simtee.SNP
		debug      bool
		policy     string
		signer     []byte
		authorKeEn string
	}{
		{"debug", simtee.SNP{Debug: true}, true, "0xb0000", nil, "false"},
		{"policy", simtee.SNP{Policy: 0x1f | 1<<17 | 1<<18 | 1<<20}, false, "0x16001f", nil, "false"},
		{"id key", simtee.SNP{IDKeyDigest: id}, false, "0x30000", id[:], "false"},
		{"author key", simtee.SNP{IDKeyDigest: id, AuthorKeyDigest: author}, false, "0x30000", author[:], "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newVerifier().Verify(context.Background(), attestSim(t, tc.s, [64]byte{}), simulation)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Debug != tc.debug || c.Platform["policy"] != tc.policy || !bytes.Equal(c.Signer, tc.signer) ||
				c.Platform["author_key_en"] != tc.authorKeEn {
				t.Fatalf("Debug=%v policy=%s Signer=%x author_key_en=%s, want %v %s %x %s",
					c.Debug, c.Platform["policy"], c.Signer, c.Platform["author_key_en"], tc.debug, tc.policy, tc.signer, tc.authorKeEn)
			}
			// Only the "policy" case sets MIGRATE_MA (bit 18).
			if c.MigrationAgent != (tc.name == "policy") || c.Platform["migration_allowed"] != strconv.FormatBool(c.MigrationAgent) {
				t.Errorf("MigrationAgent %v, migration_allowed %s", c.MigrationAgent, c.Platform["migration_allowed"])
			}
		})
	}
}

func TestVerifySimulatedOtherTCB(t *testing.T) {
	ev := attestSim(t, simtee.SNP{TCB: simtee.SNPTCB{Bootloader: 1, TEE: 2, SNP: 3, Microcode: 4}}, [64]byte{})
	c, err := newVerifier().Verify(context.Background(), ev, simulation)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := map[string]uint64{"bootloader": 1, "tee": 2, "snp": 3, "microcode": 4}
	if !maps.Equal(c.TCB.Components, want) || c.Platform["reported_tcb"] != "0x0403000000000201" {
		t.Fatalf("TCB %v reported_tcb %s, want %v 0x0403000000000201", c.TCB.Components, c.Platform["reported_tcb"], want)
	}

	// The VCEK of the default TCB does not fit a report of another TCB
	// (simtee signs all TCBs with one key, so only the binding catches it).
	def := attestSim(t, simtee.SNP{}, [64]byte{})
	ev.Certs[0] = def.Certs[0]
	_, err = newVerifier().Verify(context.Background(), ev, simulation)
	wantOnly(t, err, attest.ErrChain)
	if !strings.Contains(err.Error(), "REPORTED_TCB") {
		t.Errorf("error does not name the TCB mismatch: %v", err)
	}
}

func TestVerifyTampered(t *testing.T) {
	base := attestSim(t, simtee.SNP{}, [64]byte{1, 2, 3})
	vcekPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: base.Certs[0]})
	for _, tc := range []struct {
		name   string
		mutate func(ev *attest.Evidence)
		want   error // nil: verifies
	}{
		{"untouched", func(*attest.Evidence) {}, nil},
		{"VCEK as PEM", func(ev *attest.Evidence) { ev.Certs[0] = vcekPEM }, nil},
		{"VCEK alone", func(ev *attest.Evidence) { ev.Certs = ev.Certs[:1] }, nil},
		{"measurement", func(ev *attest.Evidence) { ev.Data[0x90] ^= 1 }, attest.ErrSignature},
		{"report data", func(ev *attest.Evidence) { ev.Data[0x50] ^= 0x80 }, attest.ErrSignature},
		{"host data", func(ev *attest.Evidence) { ev.Data[0xC0] ^= 1 }, attest.ErrSignature},
		{"chip id", func(ev *attest.Evidence) { ev.Data[0x1A0] ^= 1 }, attest.ErrSignature},
		{"signature R", func(ev *attest.Evidence) { ev.Data[0x2A0+3] ^= 1 }, attest.ErrSignature},
		{"signature S", func(ev *attest.Evidence) { ev.Data[0x2A0+0x48] ^= 1 }, attest.ErrSignature},
		{"not signed", func(ev *attest.Evidence) { ev.Data[0x48] = byte(abi.NoneReportSigner) << 2 }, attest.ErrSignature},
		{"empty", func(ev *attest.Evidence) { ev.Data = nil }, attest.ErrMalformed},
		{"truncated", func(ev *attest.Evidence) { ev.Data = ev.Data[:abi.ReportSize-1] }, attest.ErrMalformed},
		{"trailing byte", func(ev *attest.Evidence) { ev.Data = append(ev.Data, 0) }, attest.ErrMalformed},
		{"version 1", func(ev *attest.Evidence) { ev.Data[0] = 1 }, attest.ErrMalformed},
		{"version 6", func(ev *attest.Evidence) { ev.Data[0] = 6 }, attest.ErrMalformed},
		{"signature algo", func(ev *attest.Evidence) { ev.Data[0x34] = 2 }, attest.ErrMalformed},
		{"policy bit 17", func(ev *attest.Evidence) { ev.Data[0x0A] &^= 0x02 }, attest.ErrMalformed},
		{"policy bit 40", func(ev *attest.Evidence) { ev.Data[0x0D] = 1 }, attest.ErrMalformed},
		{"reserved signing key", func(ev *attest.Evidence) { ev.Data[0x48] = 2 << 2 }, attest.ErrMalformed},
		{"reserved 0x4C", func(ev *attest.Evidence) { ev.Data[0x4C] = 1 }, attest.ErrMalformed},
		{"reserved 0x19F", func(ev *attest.Evidence) { ev.Data[0x19F] = 1 }, attest.ErrMalformed},
		{"reserved 0x1EB", func(ev *attest.Evidence) { ev.Data[0x1EB] = 1 }, attest.ErrMalformed},
		{"reserved 0x1F8 in v3", func(ev *attest.Evidence) { ev.Data[0x1F8] = 1 }, attest.ErrMalformed},
		{"reserved 0x29F", func(ev *attest.Evidence) { ev.Data[0x29F] = 1 }, attest.ErrMalformed},
		{"R beyond 384 bits", func(ev *attest.Evidence) { ev.Data[0x2A0+0x30] = 1 }, attest.ErrMalformed},
		{"after signature", func(ev *attest.Evidence) { ev.Data[abi.ReportSize-1] = 1 }, attest.ErrMalformed},
		{"stepping 0x10", func(ev *attest.Evidence) { ev.Data[0x18A] = 0x10 }, attest.ErrMalformed},
		{"no certificates", func(ev *attest.Evidence) { ev.Certs = nil }, attest.ErrChain},
		{"garbage certificate", func(ev *attest.Evidence) { ev.Certs[0] = []byte("not a certificate") }, attest.ErrChain},
		{"ASK as VCEK", func(ev *attest.Evidence) { ev.Certs[0] = ev.Certs[1] }, attest.ErrChain},
		{"ARK as VCEK", func(ev *attest.Evidence) { ev.Certs[0] = ev.Certs[2] }, attest.ErrChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &attest.Evidence{Format: base.Format, Data: bytes.Clone(base.Data)}
			for _, c := range base.Certs {
				ev.Certs = append(ev.Certs, bytes.Clone(c))
			}
			tc.mutate(ev)
			c, err := newVerifier().Verify(context.Background(), ev, simulation)
			if tc.want == nil {
				if err != nil || !c.Simulated || c.ReportData[2] != 3 {
					t.Fatalf("Verify = %+v, %v; want simulated claims", c, err)
				}
				return
			}
			if c != nil {
				t.Errorf("claims %+v returned with an error", c)
			}
			wantOnly(t, err, tc.want)
		})
	}
}

func TestVerifyTime(t *testing.T) {
	ev := attestSim(t, simtee.SNP{}, [64]byte{})
	for _, at := range []time.Time{
		time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC), // before the simulated VCEK's start
		time.Date(2050, 1, 1, 0, 0, 1, 0, time.UTC),      // after its end
	} {
		_, err := newVerifier().Verify(context.Background(), ev, attest.Options{Now: at, AllowSimulated: true})
		wantOnly(t, err, attest.ErrChain)
		_, err = newVerifier().Verify(context.Background(), ev, attest.Options{Now: at})
		wantOnly(t, err, attest.ErrChain)
	}
	for _, at := range []time.Time{
		time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		if _, err := newVerifier().Verify(context.Background(), ev, attest.Options{Now: at, AllowSimulated: true}); err != nil {
			t.Errorf("at %v: %v", at, err)
		}
	}
	if _, err := newVerifier().Verify(context.Background(), ev, attest.Options{AllowSimulated: true}); err == nil {
		t.Error("verified without a time")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newVerifier().Verify(ctx, ev, simulation); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := newVerifier().Verify(context.Background(), &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: ev.Data}, simulation); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("wrong format: %v", err)
	}
}

// TestVerifyUnrelatedCA replaces the VCEK with a lookalike: the same names
// and KDS extensions, issued by a self-made ARK and ASK, and re-signs the
// report with its key, so that only the chain is wrong.
func TestVerifyUnrelatedCA(t *testing.T) {
	ev := attestSim(t, simtee.SNP{}, [64]byte{9})
	real, err := x509.ParseCertificate(ev.Certs[0])
	if err != nil {
		t.Fatal(err)
	}
	simARK, simASK := simtee.SNPRoots()
	newCA := func(subject *x509.Certificate, parent *x509.Certificate, parentKey *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: subject.Subject,
			NotBefore: real.NotBefore, NotAfter: real.NotAfter,
			SignatureAlgorithm: x509.SHA384WithRSAPSS,
			IsCA:               true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key
	}
	ark, arkKey := newCA(simARK, nil, nil)
	ask, askKey := newCA(simASK, ark, arkKey)
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	amdOID := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: real.Subject,
		NotBefore: real.NotBefore, NotAfter: real.NotAfter,
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}
	for _, e := range real.Extensions {
		if len(e.Id) > len(amdOID) && e.Id[:len(amdOID)].Equal(amdOID) {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, e)
		}
	}
	fakeDER, err := x509.CreateCertificate(rand.Reader, tmpl, ask, &key.PublicKey, askKey)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha512.Sum384(abi.SignedComponent(ev.Data))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := abi.SetSignature(r, s, ev.Data); err != nil {
		t.Fatal(err)
	}
	ev.Certs = [][]byte{fakeDER, ask.Raw, ark.Raw}

	for _, allow := range []bool{true, false} {
		_, err := newVerifier().Verify(context.Background(), ev, attest.Options{Now: now, AllowSimulated: allow})
		wantOnly(t, err, attest.ErrChain)
	}
	// Trusting the self-made CA as a root proves the report is otherwise fine.
	trusted := trust.AMDRootCertsProduct("Milan")
	trusted.ProductCerts = &trust.ProductCerts{Ark: ark, Ask: ask}
	c, err := snp.NewVerifier(snp.Config{Roots: map[string][]*trust.AMDRootCerts{"Milan": {trusted}}, AllowMissingCRL: true}).
		Verify(context.Background(), ev, attest.Options{Now: now})
	if err != nil || c.Simulated || c.ReportData[0] != 9 || c.RevocationChecked {
		t.Fatalf("with the self-made CA trusted: %+v, %v", c, err)
	}
}

// TestTurinRefused: go-sev-guest v0.15.0 cannot read Turin VCEKs (8-byte
// hwID, FMC SPL) and its TCB layout differs, so a report whose CPUID says
// Turin is refused as unsupported, before any certificate is fetched or
// checked: not as the certificate of "another chip or TCB". The simulated
// report is not re-signed after its CPUID is changed; the refusal comes
// before the signature check.
func TestTurinRefused(t *testing.T) {
	ev := attestSim(t, simtee.SNP{}, [64]byte{})
	ev.Data[0x188], ev.Data[0x189] = 0x1A, 0x02 // CPUID_FAM_ID, CPUID_MOD_ID
	r, err := snp.ParseReport(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if line := kds.ProductLineFromFms(r.GetCpuid1EaxFms()); line != "Turin" {
		t.Fatalf("product line %q, want Turin", line)
	}
	const msg = "Turin (product line from CPUID family 0x1A) is not supported by go-sev-guest v0.15.0: its VCEK extensions cannot be read"
	g := newGetter(nil)
	v := snp.NewVerifier(snp.Config{Simulated: simRoots(), Getter: g})
	for _, tc := range []struct {
		name  string
		certs [][]byte
		opts  attest.Options
	}{
		{"simulation allowed", ev.Certs, simulation},
		{"simulation not allowed", ev.Certs, attest.Options{Now: now}},
		{"no VCEK (would be fetched)", nil, attest.Options{Now: now}},
	} {
		_, err := v.Verify(context.Background(), &attest.Evidence{Format: ev.Format, Data: ev.Data, Certs: tc.certs}, tc.opts)
		wantOnly(t, err, attest.ErrChain)
		if !strings.Contains(err.Error(), msg) || strings.Contains(err.Error(), "another chip") {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, msg)
		}
	}
	if g.requests() != 0 {
		t.Errorf("%d requests for Turin evidence: %v", g.requests(), g.urls())
	}
}
