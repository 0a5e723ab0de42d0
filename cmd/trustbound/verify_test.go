package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"

	"github.com/trustbound/trustbound/attest/simtee"
)

// Real vectors live beside the verifiers that own them (with PROVENANCE.md).
const (
	snpTestdata   = "../../attest/snp/testdata/"
	azureTestdata = "../../attest/azure/testdata/"
	atNow         = "2026-11-27T00:00:00Z"
)

func verifyJSON(t *testing.T, args ...string) (int, verifyOutput, string) {
	t.Helper()
	code, out, errOut := runCmd(t, append([]string{"verify"}, args...)...)
	var v verifyOutput
	if code == exitOK {
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("verify printed no JSON: %v\n%s", err, out)
		}
	}
	return code, v, errOut
}

func TestVerifyRealSNPReport(t *testing.T) {
	report, vcek := snpTestdata+"gosevguest-milan-attestation.bin", snpTestdata+"gosevguest-milan-vcek.der"
	code, v, e := verifyJSON(t, "--no-collateral", "--at", atNow, "--nonce", "0102030405", report, vcek)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, e)
	}
	c := v.Claims
	if v.Format != "sev-snp-report" || c.Simulated || c.RevocationChecked || c.TCB.Components["microcode"] != 68 || c.TCB.Components["bootloader"] != 2 ||
		!strings.HasPrefix(c.Platform["chip_id"], "3ac3fe21") || c.Platform["policy"] != "0xb0000" {
		t.Errorf("claims %+v", c)
	}
	if v.Azure["x-ms-attestation-type"] != "sevsnpvm" || v.Azure["x-ms-sevsnpvm-microcode-svn"] != float64(68) {
		t.Errorf("azure claims %v", v.Azure)
	}
	if strings.Join(v.Unchecked, ",") != "revocation,tcb" {
		t.Errorf("unchecked %v, want revocation and tcb", v.Unchecked)
	}
	// Each refusal exits 1 and names its reason.
	raw, _ := os.ReadFile(report)
	tampered := filepath.Join(t.TempDir(), "tampered.bin")
	raw[0x90] ^= 1
	os.WriteFile(tampered, raw, 0o600)
	empty := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"wrong nonce":          {[]string{"--no-collateral", "--at", atNow, "--nonce", "01020304ff", report, vcek}, "not the nonce"},
		"tampered measurement": {[]string{"--no-collateral", "--at", atNow, tampered, vcek}, "signature"},
		"VCEK expired":         {[]string{"--no-collateral", "--at", "2029-09-25T00:00:00Z", report, vcek}, "expired"},
		"no VCEK offline":      {[]string{"--no-collateral", "--at", atNow, report}, "VCEK"},
		"no revocation list":   {[]string{"--collateral", empty, "--at", atNow, report, vcek}, "CRL"},
		"another chip's VCEK":  {[]string{"--no-collateral", "--at", atNow, report, snpTestdata + "trustee-milan-vcek.der"}, "chip"},
	} {
		code, _, e := runCmd(t, append([]string{"verify"}, tc.args...)...)
		if code != exitRefused || !strings.Contains(e, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 naming %q", name, code, e, tc.want)
		}
	}
}

func TestVerifyVLEKAtItsTime(t *testing.T) {
	args := []string{"--no-collateral", snpTestdata + "trustee-milan-vlek-report.bin", snpTestdata + "trustee-milan-vlek.der"}
	if code, v, e := verifyJSON(t, append([]string{"--at", "2024-12-11T00:00:00Z"}, args...)...); code != exitOK || v.Claims.Platform["signer"] != "vlek" {
		t.Fatalf("VLEK at 2024-12-11: exit %d %s %+v", code, e, v.Claims)
	}
	if code, _, e := runCmd(t, append([]string{"verify", "--at", atNow}, args...)...); code != exitRefused || !strings.Contains(e, "expired") {
		t.Fatalf("VLEK at %s: exit %d %s", atNow, code, e)
	}
}

func TestVerifyAzureCVM(t *testing.T) {
	for file, pcr0 := range map[string]string{
		"evidence-v1.json":    "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced",
		"evidence-genoa.json": "afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338",
	} {
		code, v, e := verifyJSON(t, "--no-collateral", "--at", atNow, azureTestdata+file)
		if code != exitOK {
			t.Fatalf("%s: exit %d %s", file, code, e)
		}
		if v.Format != "az-snp-vtpm" || v.Claims.PCRs[0].String() != pcr0 || v.Azure["x-ms-attestation-type"] != "azurevm" {
			t.Errorf("%s: format %s, PCR0 %s, azure %v", file, v.Format, v.Claims.PCRs[0], v.Azure["x-ms-attestation-type"])
		}
		// The Azure names carry the real vector's values: the VM id from the
		// runtime claims, the SNP report data (which binds them) nested.
		tee, _ := v.Azure["x-ms-isolation-tee"].(map[string]any)
		if v.Azure["x-ms-azurevm-vmid"] == "" || v.Azure["x-ms-azurevm-vmid"] != v.Claims.Platform["vm_unique_id"] ||
			tee["x-ms-sevsnpvm-reportdata"] != v.Claims.Platform["snp_report_data"] || tee["x-ms-sevsnpvm-launchmeasurement"] != v.Claims.Measurement.String() {
			t.Errorf("%s: azure claims %v", file, v.Azure)
		}
	}
	challenge := hex.EncodeToString([]byte("challenge"))
	if code, _, e := runCmd(t, "verify", "--no-collateral", "--at", atNow, "--nonce", challenge, azureTestdata+"evidence-v1.json"); code != exitOK {
		t.Fatalf("nonce 'challenge': %d %s", code, e)
	}
	if code, _, e := runCmd(t, "verify", "--no-collateral", "--at", atNow, "--nonce", hex.EncodeToString([]byte("other")), azureTestdata+"evidence-v1.json"); code != exitRefused || !strings.Contains(e, "not the nonce") {
		t.Fatalf("wrong nonce: %d %s", code, e)
	}
}

// A simulated SNP guest's configfs-tsm capture (outblob + auxblob), as the
// kernel lays it out, verifies with --allow-simulated and is refused without.
func TestVerifyConfigFSCapture(t *testing.T) {
	var rd [64]byte
	copy(rd[:], "nonce")
	ev, err := simtee.SNP{}.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	table := abi.CertTable{Entries: []abi.CertTableEntry{
		{GUID: uuid.MustParse(abi.VcekGUID), RawCert: ev.Certs[0]},
		{GUID: uuid.MustParse(abi.AskGUID), RawCert: ev.Certs[1]},
		{GUID: uuid.MustParse(abi.ArkGUID), RawCert: ev.Certs[2]},
	}}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "outblob"), ev.Data, 0o600)
	os.WriteFile(filepath.Join(dir, "auxblob"), table.Marshal(), 0o600)
	code, v, e := verifyJSON(t, "--allow-simulated", "--nonce", hex.EncodeToString([]byte("nonce")), dir)
	if code != exitOK || !v.Claims.Simulated || !strings.Contains(e, "SIMULATED") {
		t.Fatalf("capture: exit %d %s %+v", code, e, v.Claims)
	}
	if code, _, e := runCmd(t, "verify", dir); code != exitRefused || !strings.Contains(e, "simulated") {
		t.Fatalf("without --allow-simulated: %d %s", code, e)
	}
	// The same capture given as separate files.
	if code, _, e := runCmd(t, "verify", "--allow-simulated", filepath.Join(dir, "outblob"), filepath.Join(dir, "auxblob")); code != exitOK {
		t.Fatalf("outblob + auxblob as files: %d %s", code, e)
	}
}

// Malformed Azure evidence is refused by the verifier (exit 1, with the
// reason), not mistaken for an unknown file.
func TestVerifyMalformedAzureEvidence(t *testing.T) {
	raw, _ := os.ReadFile(azureTestdata + "evidence-v1.json")
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(string(raw), `"version": 1`, `"version": 3`, 1)), 0o600)
	if code, _, e := runCmd(t, "verify", "--no-collateral", "--at", atNow, bad); code != exitRefused || !strings.Contains(e, "refused") {
		t.Fatalf("exit %d %s", code, e)
	}
	two := []string{"verify", snpTestdata + "gosevguest-milan-attestation.bin", snpTestdata + "trustee-milan-report.bin"}
	if code, _, e := runCmd(t, two...); code != exitUsage || !strings.Contains(e, "one piece of evidence") {
		t.Fatalf("two reports: exit %d %s", code, e)
	}
}

func TestVerifyUsage(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("hello"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "verify FILE"},
		{[]string{"--collateral", "x", "--no-collateral", "f"}, "exclude each other"},
		{[]string{"--at", "yesterday", junk}, "--at"},
		{[]string{"--nonce", "zz", junk}, "--nonce"},
		{[]string{junk}, "not a report"},
	} {
		code, _, e := runCmd(t, append([]string{"verify"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d %q, want 2 containing %q", tc.args, code, e, tc.want)
		}
	}
}

// An air-gapped round trip: a bundle holding the report's VCEK under its
// AMD KDS URL is imported into a cache, exported again, and used offline;
// the VCEK then comes from the bundle, and the missing AMD CRL still fails
// closed.
func TestCollateralBundleRoundTrip(t *testing.T) {
	vcek, err := os.ReadFile(snpTestdata + "gosevguest-milan-vcek.der")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://kdsintf.amd.com/vcek/v1/Milan/3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68"
	bundle, _ := json.Marshal(map[string]any{"version": 1, "format": "trustbound-collateral",
		"entries": []map[string]any{{"url": url, "body": vcek, "fetchedAt": "2026-11-01T00:00:00Z"}}})
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	os.WriteFile(in, bundle, 0o600)
	cacheA, cacheB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if code, out, e := runCmd(t, "collateral", "import", "--cache", cacheA, in); code != exitOK || !strings.Contains(out, "1 collateral entries imported") {
		t.Fatalf("import: %d %s %s", code, out, e)
	}
	out := filepath.Join(dir, "out.json")
	if code, _, e := runCmd(t, "collateral", "export", "--cache", cacheA, "--out", out); code != exitOK {
		t.Fatalf("export: %d %s", code, e)
	}
	if code, o, e := runCmd(t, "collateral", "import", "--cache", cacheB, out); code != exitOK || !strings.Contains(o, "1 collateral entries") {
		t.Fatalf("re-import: %d %s %s", code, o, e)
	}
	report := snpTestdata + "gosevguest-milan-attestation.bin"
	code, _, e := runCmd(t, "verify", "--collateral", out, "--at", atNow, report)
	if code != exitRefused || !strings.Contains(e, "CRL") {
		t.Fatalf("offline with the VCEK but no CRL: exit %d %s", code, e)
	}
	// Without the bundle, the refusal is about the VCEK itself.
	code, _, e = runCmd(t, "verify", "--collateral", t.TempDir(), "--at", atNow, report)
	if code != exitRefused || !strings.Contains(e, "VCEK") {
		t.Fatalf("offline with nothing: exit %d %s", code, e)
	}
	if code, _, e := runCmd(t, "collateral", "import", "--cache", cacheB, report); code != exitRefused {
		t.Fatalf("importing a report as a bundle: exit %d %s", code, e)
	}
}

// FuzzDetect: verify reads untrusted files; detection must never panic and
// must classify consistently.
func FuzzDetect(f *testing.F) {
	for _, p := range []string{snpTestdata + "gosevguest-milan-attestation.bin", snpTestdata + "gosevguest-milan-vcek.der", azureTestdata + "evidence-v1.json", azureTestdata + "vcek.pem"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"sev-snp-report"}`))
	f.Add([]byte{3, 0, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, ders := detect(b)
		if kind == "certs" && len(ders) == 0 {
			t.Fatal("certificates detected without any DER")
		}
		if again, _ := detect(b); again != kind {
			t.Fatalf("detect is not deterministic: %q then %q", kind, again)
		}
	})
}

const (
	tdxTestdata = "../../attest/tdx/testdata/"
	sgxTestdata = "../../attest/sgx/testdata/"
)

// Intel evidence with dcap-qvl's collateral: the TCB status and advisories
// Intel's rules give, at a time inside the collateral's window, and a
// refusal once it has expired.
func TestVerifyIntelWithCollateral(t *testing.T) {
	code, v, e := verifyJSON(t, "--collateral", tdxTestdata+"dcap-qvl-tdx_quote_collateral.json", "--at", "2025-07-04T00:00:00Z", tdxTestdata+"dcap-qvl-tdx_quote")
	if code != exitOK {
		t.Fatalf("TDX: exit %d %s", code, e)
	}
	if v.Format != "tdx-quote" || v.Claims.TEE != "tdx" || !v.Claims.TCB.Evaluated || v.Claims.TCB.Status != "UpToDate" || !v.Claims.RevocationChecked || len(v.Unchecked) != 1 {
		t.Errorf("TDX claims %+v, unchecked %v", v.Claims, v.Unchecked)
	}
	if code, _, e := runCmd(t, "verify", "--collateral", tdxTestdata+"dcap-qvl-tdx_quote_collateral.json", "--at", atNow, tdxTestdata+"dcap-qvl-tdx_quote"); code != exitRefused || !strings.Contains(e, "refused") {
		t.Fatalf("TDX now: exit %d %s", code, e)
	}
	code, v, e = verifyJSON(t, "--collateral", sgxTestdata+"qvl_sgx_collateral.json", "--at", "2025-07-04T00:00:00Z", sgxTestdata+"qvl_sgx_quote_v3.dat")
	if code != exitOK {
		t.Fatalf("SGX: exit %d %s", code, e)
	}
	if v.Claims.TCB.Status != "ConfigurationAndSWHardeningNeeded" || strings.Join(v.Claims.TCB.Advisories, ",") != "INTEL-SA-00289,INTEL-SA-00615" {
		t.Errorf("SGX TCB %+v", v.Claims.TCB)
	}
	if v.Azure["x-ms-sgx-mrenclave"] != v.Claims.Measurement.String() {
		t.Errorf("SGX azure claims %v", v.Azure)
	}
	// Without collateral the verdict is signatures and chain only.
	if code, v, e := verifyJSON(t, "--no-collateral", "--at", atNow, tdxTestdata+"trustee-tdx_quote_4.dat"); code != exitOK || v.Claims.TCB.Evaluated || strings.Join(v.Unchecked, ",") != "revocation,tcb,nonce (no --nonce given)" {
		t.Fatalf("TDX no collateral: exit %d %s %+v %v", code, e, v.Claims, v.Unchecked)
	}
}

func TestVerifyAzureTDX(t *testing.T) {
	code, v, e := verifyJSON(t, "--no-collateral", "--at", atNow, "--nonce", hex.EncodeToString([]byte("challenge")), azureTestdata+"tdx-evidence-v1.json")
	if code != exitOK {
		t.Fatalf("exit %d %s", code, e)
	}
	if v.Format != "az-tdx-vtpm" || v.Claims.TEE != "tdx" || v.Claims.PCRs[0].String() != "782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273" {
		t.Errorf("format %s, TEE %s, PCR0 %s", v.Format, v.Claims.TEE, v.Claims.PCRs[0])
	}
}
