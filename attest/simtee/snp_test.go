package simtee_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
)

var snpNow = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func snpAttest(t *testing.T, s simtee.SNP, rd [64]byte) (*attest.Evidence, *spb.Report) {
	t.Helper()
	ev, err := s.Attest(context.Background(), rd)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if ev.Format != attest.FormatSNPReport || len(ev.Data) != abi.ReportSize || len(ev.Certs) != 3 {
		t.Fatalf("evidence format %q, %d bytes, %d certs", ev.Format, len(ev.Data), len(ev.Certs))
	}
	r, err := abi.ReportToProto(ev.Data)
	if err != nil {
		t.Fatalf("ReportToProto: %v", err)
	}
	return ev, r
}

// snpGoSevGuest verifies with go-sev-guest's own verifier, offline, trusting
// roots (nil: its embedded AMD roots).
func snpGoSevGuest(ev *attest.Evidence, roots map[string][]*trust.AMDRootCerts, at time.Time) error {
	r, err := abi.ReportToProto(ev.Data)
	if err != nil {
		return err
	}
	return verify.SnpAttestation(&spb.Attestation{
		Report:           r,
		CertificateChain: &spb.CertificateChain{VcekCert: ev.Certs[0], AskCert: ev.Certs[1], ArkCert: ev.Certs[2]},
	}, &verify.Options{DisableCertFetching: true, Now: at, TrustedRoots: roots})
}

func snpSimRoots() map[string][]*trust.AMDRootCerts {
	return map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}}
}

func TestSNPGoSevGuestAccepts(t *testing.T) {
	for _, s := range []simtee.SNP{{}, {Debug: true, VMPL: 3}, {TCB: simtee.SNPTCB{Bootloader: 9, TEE: 1, SNP: 30, Microcode: 250}}} {
		ev, _ := snpAttest(t, s, [64]byte{0xaa})
		if err := snpGoSevGuest(ev, snpSimRoots(), snpNow); err != nil {
			t.Errorf("%+v: go-sev-guest refuses: %v", s, err)
		}
		if err := snpGoSevGuest(ev, nil, snpNow); err == nil {
			t.Errorf("%+v: go-sev-guest accepts simulated evidence under the real AMD roots", s)
		}
	}
}

func TestSNPReport(t *testing.T) {
	s := simtee.SNP{GuestSVN: 3, VMPL: 1}
	for i := range s.Measurement {
		s.Measurement[i] = byte(i)
	}
	s.HostData[0], s.FamilyID[0], s.ImageID[15] = 0x11, 0x22, 0x33
	rd := [64]byte{63: 0x44}
	ev, r := snpAttest(t, s, rd)

	const tcb = 0xd516000000000004 // ucode 213, snp 22, tee 0, bl 4
	chip := simtee.SNPChipID()
	if r.Version != 3 || r.GuestSvn != 3 || r.Vmpl != 1 || r.Policy != 0x30000 ||
		r.SignatureAlgo != abi.SignEcdsaP384Sha384 || r.SignerInfo != 0 ||
		!bytes.Equal(r.Measurement, s.Measurement[:]) || !bytes.Equal(r.HostData, s.HostData[:]) ||
		!bytes.Equal(r.FamilyId, s.FamilyID[:]) || !bytes.Equal(r.ImageId, s.ImageID[:]) ||
		!bytes.Equal(r.ReportData, rd[:]) || !bytes.Equal(r.ChipId, chip[:]) ||
		r.CurrentTcb != tcb || r.ReportedTcb != tcb || r.CommittedTcb != tcb || r.LaunchTcb != tcb ||
		kds.ProductLineFromFms(r.Cpuid1EaxFms) != simtee.SNPProductLine ||
		!bytes.Equal(r.ReportIdMa, bytes.Repeat([]byte{0xff}, 32)) {
		t.Fatalf("report %+v", r)
	}
	if !strings.HasPrefix(string(chip[:]), "trustbound simulated") {
		t.Errorf("chip id %q does not say simulated", chip)
	}

	vcek, err := x509.ParseCertificate(ev.Certs[0])
	if err != nil {
		t.Fatal(err)
	}
	exts, err := kds.VcekCertificateExtensions(vcek)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(exts.TCBVersion) != tcb || !bytes.Equal(exts.HWID, chip[:]) || exts.ProductName != "Milan-B0" || exts.StructVersion != 1 {
		t.Fatalf("VCEK extensions %+v", exts)
	}
	ark, ask := simtee.SNPRoots()
	if !bytes.Equal(ev.Certs[1], ask.Raw) || !bytes.Equal(ev.Certs[2], ark.Raw) {
		t.Error("Certs[1:] are not the simulated ASK and ARK")
	}

	_, dbg := snpAttest(t, simtee.SNP{Debug: true}, rd)
	if dbg.Policy != 0xb0000 {
		t.Errorf("Debug policy %#x, want 0xb0000", dbg.Policy)
	}
	_, author := snpAttest(t, simtee.SNP{AuthorKeyDigest: [48]byte{1}}, rd)
	if info, _ := abi.ParseSignerInfo(author.SignerInfo); !info.AuthorKeyEn || info.SigningKey != abi.VcekReportSigner {
		t.Errorf("author key: signer info %+v", info)
	}
}

func TestSNPRefuses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (simtee.SNP{}).Attest(ctx, [64]byte{}); err == nil {
		t.Error("attested with a cancelled context")
	}
	for _, s := range []simtee.SNP{
		{VMPL: 4},
		{Policy: 1 << 16},              // reserved bit 17 clear
		{Policy: 1<<17 | 1<<40},        // reserved high bit
		{TCB: simtee.SNPTCB{SNP: 128}}, // SPLs other than microcode are 7-bit
	} {
		if _, err := s.Attest(context.Background(), [64]byte{}); err == nil {
			t.Errorf("%+v: attested", s)
		}
	}
}

// TestSNPEmbeddedChain checks the material in amd/: keys match
// certificates, the chain is what AMD's KDS would issue, and every
// certificate says simulated.
func TestSNPEmbeddedChain(t *testing.T) {
	read := func(name string) *pem.Block {
		b, err := os.ReadFile("amd/" + name)
		if err != nil {
			t.Fatal(err)
		}
		blk, rest := pem.Decode(b)
		if blk == nil || len(rest) != 0 {
			t.Fatalf("%s: not one PEM block", name)
		}
		return blk
	}
	cert := func(name string) *x509.Certificate {
		c, err := x509.ParseCertificate(read(name).Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	key := func(name string) crypto.Signer {
		k, err := x509.ParsePKCS8PrivateKey(read(name).Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k.(crypto.Signer)
	}
	ark, ask, vcek := cert("ark.pem"), cert("ask.pem"), cert("vcek.pem")
	for _, p := range []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
	}{{"ARK", ark, key("ark-key.pem")}, {"ASK", ask, key("ask-key.pem")}, {"VCEK", vcek, key("vcek-key.pem")}} {
		if !p.cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(p.key.Public()) {
			t.Errorf("%s key does not match its certificate", p.name)
		}
		if !p.cert.NotBefore.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) || !p.cert.NotAfter.Equal(time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s valid %v..%v", p.name, p.cert.NotBefore, p.cert.NotAfter)
		}
		if p.cert.SignatureAlgorithm != x509.SHA384WithRSAPSS {
			t.Errorf("%s signed with %v", p.name, p.cert.SignatureAlgorithm)
		}
		if !strings.Contains(p.cert.Subject.SerialNumber, "SIMULATED") || !strings.HasPrefix(string(p.cert.SerialNumber.Bytes()), "SIM-") {
			t.Errorf("%s subject %q serial %q do not say simulated", p.name, p.cert.Subject, p.cert.SerialNumber.Bytes())
		}
	}
	if k, ok := ark.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 4096 {
		t.Error("ARK is not RSA-4096")
	}
	if k, ok := ask.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 4096 {
		t.Error("ASK is not RSA-4096")
	}
	if _, ok := vcek.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Error("VCEK is not ECDSA")
	}
	if err := ark.CheckSignatureFrom(ark); err != nil {
		t.Errorf("ARK not self-signed: %v", err)
	}
	if err := ask.CheckSignatureFrom(ark); err != nil {
		t.Errorf("ASK not signed by ARK: %v", err)
	}
	if err := vcek.CheckSignatureFrom(ask); err != nil {
		t.Errorf("VCEK not signed by ASK: %v", err)
	}
	nsComment := asn1.ObjectIdentifier{2, 16, 840, 1, 113730, 1, 13}
	for name, c := range map[string]*x509.Certificate{"ARK": ark, "ASK": ask} {
		found := false
		for _, e := range c.Extensions {
			found = found || (e.Id.Equal(nsComment) && strings.Contains(string(e.Value), "SIMULATED"))
		}
		if !found {
			t.Errorf("%s has no simulated comment extension", name)
		}
	}
	// The KDS-format bundle holds the same ASK and ARK.
	var r trust.AMDRootCerts
	b, err := os.ReadFile("amd/cert_chain.pem")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.FromKDSCertBytes(b); err != nil || !r.ProductCerts.Ask.Equal(ask) || !r.ProductCerts.Ark.Equal(ark) {
		t.Errorf("cert_chain.pem: %v", err)
	}
	gotARK, gotASK := simtee.SNPRoots()
	if !gotARK.Equal(ark) || !gotASK.Equal(ask) {
		t.Error("SNPRoots does not return the embedded ARK and ASK")
	}
}

// crlGetter serves one URL, for go-sev-guest's HTTPSGetter.
type crlGetter struct {
	url string
	crl []byte
}

func (g crlGetter) Get(url string) ([]byte, error) {
	if url != g.url {
		return nil, fmt.Errorf("%s: not found", url)
	}
	return g.crl, nil
}

// TestSNPRevocationList: the simulated CRL is what AMD's KDS serves, by
// go-sev-guest's own revocation check (which fetches it at SNPCRLURL, the
// ASK's distribution point), and SNPTrust preloads an empty one.
func TestSNPRevocationList(t *testing.T) {
	ark, ask := simtee.SNPRoots()
	from, until := snpNow.Add(-time.Hour), snpNow.Add(time.Hour)
	der, err := simtee.SNPRevocationList([]*big.Int{big.NewInt(7)}, from, until)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ark); err != nil || crl.SignatureAlgorithm != x509.SHA384WithRSAPSS ||
		!bytes.Equal(crl.RawIssuer, ark.RawSubject) || !crl.ThisUpdate.Equal(from) || !crl.NextUpdate.Equal(until) ||
		len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Int64() != 7 {
		t.Fatalf("CRL %+v: %v", crl, err)
	}
	if want := "https://kdsintf.amd.com/vcek/v1/Milan/crl"; simtee.SNPCRLURL() != want || !slices.Equal(ask.CRLDistributionPoints, []string{want}) {
		t.Errorf("SNPCRLURL %s, ASK distribution points %v", simtee.SNPCRLURL(), ask.CRLDistributionPoints)
	}

	// go-sev-guest checks revocation of the simulated chain with it.
	ev, _ := snpAttest(t, simtee.SNP{}, [64]byte{})
	r, err := abi.ReportToProto(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	check := func(crl []byte) error {
		roots := snpSimRoots()
		roots[simtee.SNPProductLine][0].CRL = nil // fetch it
		return verify.SnpAttestation(&spb.Attestation{Report: r, CertificateChain: &spb.CertificateChain{VcekCert: ev.Certs[0]}},
			&verify.Options{DisableCertFetching: true, CheckRevocations: true, Now: snpNow, TrustedRoots: roots,
				Getter: crlGetter{simtee.SNPCRLURL(), crl}})
	}
	if err := check(der); err != nil {
		t.Errorf("go-sev-guest refuses the simulated CRL: %v", err)
	}
	revokedASK, err := simtee.SNPRevocationList([]*big.Int{ask.SerialNumber}, from, until)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(revokedASK); err == nil || !strings.Contains(err.Error(), "ASK was revoked") {
		t.Errorf("go-sev-guest with the ASK revoked: %v", err)
	}

	// SNPTrust preloads the empty CRL, valid as long as the chain.
	r2 := simtee.SNPTrust(simtee.SNPRoots())
	if r2.CRL == nil || len(r2.CRL.RevokedCertificateEntries) != 0 || r2.CRL.CheckSignatureFrom(ark) != nil ||
		!r2.CRL.ThisUpdate.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) || !r2.CRL.NextUpdate.Equal(time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("preloaded CRL %+v", r2.CRL)
	}
	if simtee.SNPTrust(simtee.SNPRoots()).CRL == r2.CRL {
		t.Error("root sets share one CRL")
	}
	// Other roots get no simulated CRL.
	if r3 := simtee.SNPTrust(ask, ask); r3.CRL != nil {
		t.Error("a CRL preloaded for another ARK")
	}
}
