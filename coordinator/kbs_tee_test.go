package coordinator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/manifest"
)

// A simulated bare TDX guest (Kata/CoCo on TDX) speaks the KBS protocol
// with tee "tdx" and guest-components' TdxEvidence, protocol 0.1 (the
// evidence itself, no composite).
func TestKBSBareTDX(t *testing.T) {
	td := simtee.TDX{MRTD: [48]byte{7, 7, 7}}
	h := newMAAHarness(t, time.Now().UTC(), simtee.TDXCollateralSource(), func(m *manifest.Manifest) {
		m.Workloads = append(m.Workloads, manifest.Workload{
			Name: "kata-td", Model: manifest.ConfidentialVM, TEE: attest.TDX,
			Reference: manifest.Reference{Measurements: []attest.Hex{td.MRTD[:]}},
		})
		for i := range m.Secrets {
			if m.Secrets[i].Name == "db-password" {
				m.Secrets[i].GrantedTo = append(m.Secrets[i].GrantedTo, "kata-td")
			}
		}
	})
	secret := []byte("tdx secret")
	client := agent.NewClient(h.srv.URL, h.srv.Client())
	const name = "db-password"
	if _, err := client.SetSecret(context.Background(), agent.Owner{Name: h.m.Owners[0].Name, Key: h.owner}, name, secret); err != nil {
		t.Fatal(err)
	}
	g := newKBSGuest(t, h, ledgerCVM)
	attestTDX := func(bindNonce string, evidence func(quote []byte) any) (int, []byte) {
		st, out := g.do("POST", "/kbs/v0/auth", map[string]any{"version": "0.1.0", "tee": "tdx", "extra-params": ""})
		if st != http.StatusOK {
			t.Fatalf("auth: %d %s", st, out)
		}
		var ch struct{ Nonce string }
		_ = json.Unmarshal(out, &ch)
		if bindNonce == "" {
			bindNonce = ch.Nonce
		}
		pub, _ := json.Marshal(jose.JSONWebKey{Key: &g.key.PublicKey, Algorithm: "RSA-OAEP-256"})
		var pk any
		_ = json.Unmarshal(pub, &pk)
		canon, _ := json.Marshal(map[string]any{"nonce": bindNonce, "tee-pubkey": pk})
		sum := sha512.Sum384(canon)
		var rd [64]byte
		copy(rd[:], sum[:])
		ev, err := td.Attest(context.Background(), rd)
		if err != nil {
			t.Fatal(err)
		}
		return g.do("POST", "/kbs/v0/attest", map[string]any{
			"runtime-data": map[string]any{"nonce": ch.Nonce, "tee-pubkey": json.RawMessage(pub)},
			"tee-evidence": evidence(ev.Data),
		})
	}
	tdxEvidence := func(q []byte) any {
		return map[string]any{"cc_eventlog": nil, "quote": base64.StdEncoding.EncodeToString(q)}
	}
	if st, out := attestTDX("", tdxEvidence); st != http.StatusOK {
		t.Fatalf("attest: %d %s", st, out)
	}
	st, out := g.do("GET", "/kbs/v0/resource/default/"+name+"/latest", nil)
	if st != http.StatusOK {
		t.Fatalf("resource: %d %s", st, out)
	}
	if got := g.open(out); string(got) != string(secret) {
		t.Fatal("resource decrypts to another value")
	}

	if st, _ := attestTDX("other", tdxEvidence); st != http.StatusForbidden {
		t.Fatalf("report data binding another nonce: %d", st)
	}
	if st, _ := attestTDX("", func(q []byte) any { return map[string]any{"quote": "%%%"} }); st != http.StatusBadRequest {
		t.Fatalf("quote not base64: %d", st)
	}
	if st, _ := attestTDX("", func(q []byte) any {
		return map[string]any{"quote": base64.StdEncoding.EncodeToString(q), "extra": 1}
	}); st != http.StatusBadRequest {
		t.Fatalf("unknown member: %d", st)
	}
}

// The real SNP evidence of trustee's e2e test (guest-components' snp
// attester shape) re-serialises to an ABI report whose signature the VCEK
// in its cert_chain verifies.
func TestKBSSNPSampleConverts(t *testing.T) {
	raw, err := os.ReadFile("testdata/trustee-e2e-snp-evidence.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := coordinator.KBSEvidence("snp", raw)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Format != attest.FormatSNPReport || len(ev.Data) != 1184 || len(ev.Certs) != 1 {
		t.Fatalf("format %s, %d bytes, %d certs", ev.Format, len(ev.Data), len(ev.Certs))
	}
	// The signature, checked directly (ECDSA P-384 over SHA-384 of bytes
	// 0..0x2A0, R and S little-endian)...
	if !snpSigOK(t, ev) {
		t.Fatal("the re-serialised report's signature does not verify with the sample's VCEK")
	}
	// ...and the whole report through attest/snp: its CPUID (family 0x19,
	// model 0xA0) is a model go-sev-guest does not name, so the VCEK names
	// the line (Genoa) and its chain must reach AMD's Genoa root.
	vcek, err := x509.ParseCertificate(ev.Certs[0])
	if err != nil {
		t.Fatal(err)
	}
	at := vcek.NotBefore.Add(24 * time.Hour)
	c, err := snp.NewVerifier(snp.Config{}).Verify(context.Background(), ev, attest.Options{Now: at, SkipCollateral: true})
	if err != nil {
		t.Fatalf("attest/snp refuses the real sample at %s: %v", at, err)
	}
	if c.Simulated || c.Platform["product_line"] != "Genoa" {
		t.Errorf("claims: simulated %v, product line %q", c.Simulated, c.Platform["product_line"])
	}
	cl, err := snp.ParseReport(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		R struct {
			ReportData  []int `json:"report_data"`
			Measurement []int `json:"measurement"`
		} `json:"attestation_report"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.R.Measurement) != 48 || len(doc.R.ReportData) != 64 {
		t.Fatalf("the JSON's measurement (%d bytes) or report data (%d bytes) is not of an SNP report", len(doc.R.Measurement), len(doc.R.ReportData))
	}
	for i, b := range doc.R.Measurement {
		if cl.GetMeasurement()[i] != byte(b) {
			t.Fatal("measurement differs from the JSON's")
		}
	}
	for i, b := range doc.R.ReportData {
		if cl.GetReportData()[i] != byte(b) {
			t.Fatal("report data differs from the JSON's")
		}
	}

	// One altered byte: the signature no longer verifies.
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	rep := m["attestation_report"].(map[string]any)
	rep["guest_svn"] = 1
	alt, _ := json.Marshal(m)
	ev, err = coordinator.KBSEvidence("snp", alt)
	if err != nil {
		t.Fatal(err)
	}
	if snpSigOK(t, ev) {
		t.Fatal("an altered report verified")
	}
	// Members this mapping does not place are refused.
	rep["launch_mit_vector"] = 1
	alt, _ = json.Marshal(m)
	if _, err := coordinator.KBSEvidence("snp", alt); err == nil {
		t.Fatal("an unknown report member was accepted")
	}
}

func snpSigOK(t *testing.T, ev *attest.Evidence) bool {
	t.Helper()
	cert, err := x509.ParseCertificate(ev.Certs[0])
	if err != nil {
		t.Fatal(err)
	}
	pub := cert.PublicKey.(*ecdsa.PublicKey)
	le := func(b []byte) *big.Int {
		be := slices.Clone(b[:48])
		slices.Reverse(be)
		return new(big.Int).SetBytes(be)
	}
	sum := sha512.Sum384(ev.Data[:0x2A0])
	return ecdsa.Verify(pub, sum[:], le(ev.Data[0x2A0:]), le(ev.Data[0x2E8:]))
}
