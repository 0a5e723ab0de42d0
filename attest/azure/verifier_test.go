package azure_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// realVector is one set of real Azure CVM evidence and what SOURCES.md and
// trustee's tests say of it.
type realVector struct {
	file        string
	data        func(t testing.TB) []byte
	version     string
	nonce       []byte
	pcr0        string
	productLine string
	vmUniqueID  string
}

var realVectors = []realVector{
	{file: "evidence-v0.json", version: "0", nonce: []byte("challenge"), pcr0: "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced", productLine: "Milan", vmUniqueID: "26F8BC30-774E-4290-8E7A-535F3B672AEE"},
	{file: "evidence-v1.json", version: "1", nonce: []byte("challenge"), pcr0: "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced", productLine: "Milan", vmUniqueID: "26F8BC30-774E-4290-8E7A-535F3B672AEE"},
	{file: "evidence-v2.json", version: "2", nonce: mustHex("982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef"), pcr0: "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7", productLine: "Milan", vmUniqueID: "7DF7B373-B947-4AAA-96E5-C358F2A03D20"},
	{file: "evidence-genoa.json", version: "0", nonce: mustHex("0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f"), pcr0: "afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338", productLine: "Genoa", vmUniqueID: "390CBCF5-6C67-4D9B-98EF-C3F1699CC8FC"},
	// trustee's older standalone set: a Milan report of version 2 in the
	// HCL report, its VCEK (first of vcek.pem) and the quote of
	// tpm-quote-v1.json, put together here as schema 1 evidence.
	{file: "hcl-report.bin + vcek.pem + tpm-quote-v1.json", data: olderSet, version: "1", nonce: []byte("challenge"), pcr0: "f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be", productLine: "Milan", vmUniqueID: "911B0EF8-9DBA-48B0-B275-4E4DF2D39252"},
}

func (v realVector) bytes(t testing.TB) []byte {
	if v.data != nil {
		return v.data(t)
	}
	return readTestdata(t, v.file)
}

func olderSet(t testing.TB) []byte {
	blk, _ := pem.Decode(readTestdata(t, "vcek.pem"))
	if blk == nil {
		t.Fatal("vcek.pem")
	}
	var q struct{ Signature, Message string }
	var pcrs struct{ PCRs []string }
	raw := readTestdata(t, "tpm-quote-v1.json")
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &pcrs); err != nil {
		t.Fatal(err)
	}
	var ps [][]byte
	for _, p := range pcrs.PCRs {
		ps = append(ps, mustHex(p))
	}
	return encode(t, 1, readTestdata(t, "hcl-report.bin"), blk.Bytes, mustHex(q.Message), mustHex(q.Signature), ps)
}

// The real vectors carry no revocation collateral: they are verified with
// SkipCollateral and their claims must say revocation was not checked.
var noCollateral = attest.Options{Now: at, SkipCollateral: true}

func TestRealVectors(t *testing.T) {
	v := verifier()
	for _, rv := range realVectors {
		t.Run(rv.file, func(t *testing.T) {
			data := rv.bytes(t)
			c, err := v.Verify(context.Background(), &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data}, noCollateral)
			if err != nil {
				t.Fatal(err)
			}
			if c.Format != attest.FormatAzureSNPVTPM || c.TEE != attest.SEVSNP || c.Simulated || c.RevocationChecked {
				t.Errorf("format %q tee %q simulated %v revocation checked %v", c.Format, c.TEE, c.Simulated, c.RevocationChecked)
			}
			if !bytes.Equal(c.ReportData, rv.nonce) {
				t.Errorf("report data %x, want the quote nonce %x", c.ReportData, rv.nonce)
			}
			if len(c.PCRs) != 24 || c.PCRs[0].String() != rv.pcr0 {
				t.Errorf("%d PCRs, PCR0 %v, want %s", len(c.PCRs), c.PCRs[0], rv.pcr0)
			}
			if c.VMPL == nil || *c.VMPL != 0 {
				t.Errorf("VMPL %v", c.VMPL)
			}
			e, err := azure.ParseEvidence(data)
			if err != nil {
				t.Fatal(err)
			}
			hcl, err := azure.ParseHCLReport(e.HCLReport)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.Runtime, hcl.VarData) || !json.Valid(c.Runtime) {
				t.Errorf("runtime is not the var data")
			}
			rd := hcl.ReportData()
			for k, want := range map[string]string{
				"product_line": rv.productLine, "evidence_version": rv.version, "hcl_request_type": "2",
				"hcl_report_type": "snp", "hcl_hash_type": "sha256", "tpm_pcr_bank": "sha256",
				"secure_boot": "true", "tpm_enabled": "true", "console_enabled": "true",
				"vm_unique_id": rv.vmUniqueID, "snp_report_data": hex.EncodeToString(rd[:]),
			} {
				if got := c.Platform[k]; got != want {
					t.Errorf("platform %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// Without collateral the SNP verifier cannot check revocation: unless the
// verification skips collateral, the real vectors are refused, closed.
func TestRealVectorsNeedCollateral(t *testing.T) {
	for _, rv := range realVectors {
		ev := &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: rv.bytes(t)}
		if c, err := verifier().Verify(context.Background(), ev, attest.Options{Now: at}); err == nil {
			t.Errorf("%s: verified without revocation collateral (revocation checked %v)", rv.file, c.RevocationChecked)
		} else {
			t.Logf("%s: %v", rv.file, err)
		}
	}
}

// A trimmed HCL report (report_size bytes, without the NV index's zero
// tail) is the same report.
func TestTrimmedHCLReportVerifies(t *testing.T) {
	e, hcl := v1Parts(t)
	size := 1236 + len(hcl.VarData)
	data := reencode(t, e, func(e *azure.Evidence) { e.HCLReport = e.HCLReport[:size] })
	if _, err := verifier().Verify(context.Background(), &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data}, noCollateral); err != nil {
		t.Fatal(err)
	}
}

func v1Parts(t testing.TB) (*azure.Evidence, *azure.HCLReport) {
	t.Helper()
	e, err := azure.ParseEvidence(readTestdata(t, "evidence-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	hcl, err := azure.ParseHCLReport(e.HCLReport)
	if err != nil {
		t.Fatal(err)
	}
	return e, hcl
}

// reencode applies change to a deep copy of e and encodes it in e's schema.
func reencode(t testing.TB, e *azure.Evidence, change func(*azure.Evidence)) []byte {
	t.Helper()
	c := &azure.Evidence{
		Version: e.Version, HCLReport: bytes.Clone(e.HCLReport), VCEK: bytes.Clone(e.VCEK),
		Quote: azure.TPMQuote{Signature: bytes.Clone(e.Quote.Signature), Message: bytes.Clone(e.Quote.Message)},
	}
	for _, p := range e.Quote.PCRs {
		c.Quote.PCRs = append(c.Quote.PCRs, bytes.Clone(p))
	}
	change(c)
	return encode(t, c.Version, c.HCLReport, c.VCEK, c.Quote.Message, c.Quote.Signature, c.Quote.PCRs)
}

func TestRealVectorsTampered(t *testing.T) {
	e, hcl := v1Parts(t)
	genoa, err := azure.ParseEvidence(readTestdata(t, "evidence-genoa.json"))
	if err != nil {
		t.Fatal(err)
	}
	other := keys()[1]
	varData := 1236 + len(hcl.VarData)/2
	const measurement = 32 + 0x90
	const reportData = 32 + 0x50
	v1 := string(readTestdata(t, "evidence-v1.json"))

	for name, tc := range map[string]struct {
		data    []byte
		want    error
		message string
	}{
		"var data byte":               {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport[varData] ^= 1 }), want: attest.ErrBinding, message: "runtime claims were altered"},
		"SNP report measurement byte": {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport[measurement] ^= 1 }), want: attest.ErrSignature},
		"SNP report data byte":        {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport[reportData] ^= 1 }), want: attest.ErrSignature},
		"TPM message clock byte":      {data: reencode(t, e, func(e *azure.Evidence) { e.Quote.Message[len(e.Quote.Message)-50] ^= 1 }), want: attest.ErrSignature},
		"TPM message nonce byte":      {data: reencode(t, e, func(e *azure.Evidence) { e.Quote.Message[42] ^= 1 }), want: attest.ErrSignature},
		"TPM message magic byte":      {data: reencode(t, e, func(e *azure.Evidence) { e.Quote.Message[0] ^= 1 }), want: attest.ErrSignature},
		"TPM signature byte":          {data: reencode(t, e, func(e *azure.Evidence) { e.Quote.Signature[100] ^= 1 }), want: attest.ErrSignature},
		"PCR0 byte":                   {data: reencode(t, e, func(e *azure.Evidence) { e.Quote.PCRs[0][0] ^= 1 }), want: attest.ErrBinding, message: "PCR"},
		"PCR23 byte":                  {data: reencode(t, e, func(e *azure.Evidence) { e.Quote.PCRs[23][31] ^= 1 }), want: attest.ErrBinding, message: "PCR"},
		"PCRs swapped":                {data: reencode(t, e, func(e *azure.Evidence) { e.Quote.PCRs[0], e.Quote.PCRs[1] = e.Quote.PCRs[1], e.Quote.PCRs[0] }), want: attest.ErrBinding},
		"PCR missing":                 {data: reencode(t, e, func(e *azure.Evidence) { e.Quote.PCRs = e.Quote.PCRs[:23] }), want: attest.ErrMalformed},
		"quote signed by another RSA key": {data: reencode(t, e, func(e *azure.Evidence) {
			d := sha256.Sum256(e.Quote.Message)
			e.Quote.Signature, _ = rsa.SignPKCS1v15(rand.Reader, other, crypto.SHA256, d[:])
		}), want: attest.ErrSignature, message: "not signed by the HCLAkPub"},
		"HCL report truncated":         {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport = e.HCLReport[:len(e.HCLReport)-1] }), want: attest.ErrMalformed},
		"HCL report extended":          {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport = append(e.HCLReport, 0) }), want: attest.ErrMalformed},
		"HCL report short of its size": {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport = e.HCLReport[:1236+len(hcl.VarData)-1] }), want: attest.ErrMalformed},
		"HCL report non-zero tail":     {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport[2599] = 1 }), want: attest.ErrMalformed},
		"HCL report status":            {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport[16] = 1 }), want: attest.ErrMalformed},
		"VCEK of another chip (Genoa)": {data: reencode(t, e, func(e *azure.Evidence) { e.VCEK = genoa.VCEK }), want: attest.ErrChain},
		"schema 1 claimed as schema 2": {data: reencode(t, e, func(e *azure.Evidence) { e.Version = 2 }), want: attest.ErrBinding, message: "user-data"},
		"unknown top-level field":      {data: []byte(strings.Replace(v1, `"version": 1,`, `"version": 1, "extra": 0,`, 1)), want: attest.ErrMalformed, message: "unknown field"},
		"unknown quote field":          {data: []byte(strings.Replace(v1, `"tpm_quote": {`, `"tpm_quote": {"x": "",`, 1)), want: attest.ErrMalformed, message: "unknown field"},
		"field name in another case":   {data: []byte(strings.Replace(v1, `"hcl_report"`, `"HCL_report"`, 1)), want: attest.ErrMalformed},
		"duplicate field":              {data: []byte(strings.Replace(v1, `"version": 1,`, `"version": 1, "version": 1,`, 1)), want: attest.ErrMalformed, message: "duplicate"},
		"version 3":                    {data: []byte(strings.Replace(v1, `"version": 1,`, `"version": 3,`, 1)), want: attest.ErrMalformed},
		"version as a string":          {data: []byte(strings.Replace(v1, `"version": 1,`, `"version": "1",`, 1)), want: attest.ErrMalformed},
		"trailing data":                {data: []byte(v1 + "{}"), want: attest.ErrMalformed},
		"schema 0 fields in schema 1":  {data: []byte(strings.Replace(v1, `"version": 1,`, `"version": 1, "report": [],`, 1)), want: attest.ErrMalformed},
		"not JSON":                     {data: []byte("HCLA"), want: attest.ErrMalformed},
		"empty":                        {data: nil, want: attest.ErrMalformed},
		"too large":                    {data: append([]byte(v1), bytes.Repeat([]byte(" "), azure.MaxEvidenceSize)...), want: attest.ErrMalformed},
		"TDX HCL report":               {data: reencode(t, e, func(e *azure.Evidence) { e.HCLReport = readTestdata(t, "tdx-hcl-report.bin") }), want: attest.ErrMalformed, message: "send az-tdx-vtpm evidence"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := verifier().Verify(context.Background(), &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: tc.data}, noCollateral)
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
		})
	}
}

// Schema 0 (arrays of numbers, PEM VCEK) is as strict as schema 1.
func TestSchema0Tampered(t *testing.T) {
	v0 := string(readTestdata(t, "evidence-v0.json"))
	for name, tc := range map[string]struct {
		data string
		want error
	}{
		"unknown field": {strings.Replace(v0, `"quote": {`, `"quote": {"x": 1,`, 1), attest.ErrMalformed},
		"a byte of 256": {strings.Replace(v0, `"message": [
      255,`, `"message": [
      256,`, 1), attest.ErrMalformed},
		"a byte written 255.0": {strings.Replace(v0, `"message": [
      255,`, `"message": [
      255.0,`, 1), attest.ErrMalformed},
		"a negative byte": {strings.Replace(v0, `"message": [
      255,`, `"message": [
      -1,`, 1), attest.ErrMalformed},
		"junk before the PEM": {strings.Replace(v0, `"vcek": "-----BEGIN`, `"vcek": "junk-----BEGIN`, 1), attest.ErrMalformed},
		"version 0 written":   {strings.Replace(v0, `"quote": {`, `"version": 0, "quote": {`, 1), attest.ErrMalformed},
		"magic byte": {strings.Replace(v0, `"message": [
      255,`, `"message": [
      254,`, 1), attest.ErrSignature},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.data == v0 {
				t.Fatal("the replacement did not apply")
			}
			_, err := verifier().Verify(context.Background(), &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: []byte(tc.data)}, noCollateral)
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
		})
	}
}

func TestVerifyRefusesMisuse(t *testing.T) {
	ctx := context.Background()
	data := readTestdata(t, "evidence-v1.json")
	for name, tc := range map[string]struct {
		v    *azure.Verifier
		ev   *attest.Evidence
		opts attest.Options
		want error
	}{
		"no evidence":     {verifier(), nil, noCollateral, attest.ErrMalformed},
		"other format":    {verifier(), &attest.Evidence{Format: attest.FormatSNPReport, Data: data}, noCollateral, attest.ErrMalformed},
		"certs beside":    {verifier(), &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data, Certs: [][]byte{{1}}}, noCollateral, attest.ErrMalformed},
		"no time":         {verifier(), &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data}, attest.Options{}, nil},
		"no SNP verifier": {azure.NewVerifier(azure.Config{}), &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data}, noCollateral, nil},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := tc.v.Verify(ctx, tc.ev, tc.opts)
			if err == nil || c != nil {
				t.Fatalf("accepted: %v", c)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("want %v, got %v", tc.want, err)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := verifier().Verify(cctx, &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data}, noCollateral); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if f := verifier().Format(); f != attest.FormatAzureSNPVTPM {
		t.Errorf("format %q", f)
	}
}

// Evidence built piece by piece: what the real vectors do not exercise.
func TestBuiltEvidence(t *testing.T) {
	ks := keys()
	good := attest.Options{Now: at, AllowSimulated: true}
	nonce64 := bytes.Repeat([]byte{0xab}, 64)
	for name, tc := range map[string]struct {
		b       build
		want    error // nil: verifies
		message string
		check   func(t *testing.T, c *attest.Claims)
	}{
		"schema 0": {b: build{version: 0}},
		"schema 1": {b: build{version: 1}},
		"schema 2 with its user-data": {b: build{version: 2, nonce: nonce64, userData: strings.ToUpper(hex.EncodeToString(nonce64))}, check: func(t *testing.T, c *attest.Claims) {
			if !bytes.Equal(c.ReportData, nonce64) || c.Platform["user_data"] != hex.EncodeToString(nonce64) {
				t.Errorf("report data %x user data %q", c.ReportData, c.Platform["user_data"])
			}
		}},
		"schema 2, user-data another nonce": {b: build{version: 2, nonce: nonce64, userData: strings.Repeat("00", 64)}, want: attest.ErrBinding},
		"schema 2, no user-data":            {b: build{version: 2}, want: attest.ErrBinding},
		"SHA-384 binding":                   {b: build{version: 1, hashType: 2}, check: platform("hcl_hash_type", "sha384")},
		"SHA-512 binding":                   {b: build{version: 1, hashType: 3}, check: platform("hcl_hash_type", "sha512")},
		"unknown hash type":                 {b: build{version: 1, hashType: 4}, want: attest.ErrMalformed},
		"PCRs 0, 1 and 7 only": {b: build{version: 1, selection: []byte{0x83, 0, 0}}, check: func(t *testing.T, c *attest.Claims) {
			if len(c.PCRs) != 3 || !bytes.Equal(c.PCRs[7], pcrValue(7)) || !bytes.Equal(c.PCRs[1], pcrValue(1)) {
				t.Errorf("PCRs %v", c.PCRs)
			}
		}},
		"PCRs 0, 1, 7, all 24 presented": {b: build{version: 1, selection: []byte{0x83, 0, 0}, pcrs: func() (p [][]byte) {
			for i := range 24 {
				p = append(p, pcrValue(i))
			}
			return p
		}()}, want: attest.ErrMalformed},
		"no PCR selected":                       {b: build{version: 1, selection: []byte{0, 0, 0}, pcrs: [][]byte{pcrValue(0)}}, want: attest.ErrMalformed},
		"4-byte PCR bitmap":                     {b: build{version: 1, selection: []byte{0xff, 0xff, 0xff, 0}}, want: attest.ErrMalformed},
		"signed, not TPM made":                  {b: build{version: 1, magic: 0x12345678}, want: attest.ErrMalformed, message: "TPM_GENERATED"},
		"signed, not a quote":                   {b: build{version: 1, stType: 0x8017}, want: attest.ErrMalformed},
		"AK of 1024 bits":                       {b: build{version: 1, ak: ks[2]}, want: attest.ErrMalformed, message: "2048"},
		"quote by a key not named":              {b: build{version: 1, ak: ks[1], claimed: &ks[0].PublicKey}, want: attest.ErrSignature},
		"runtime claims not JSON":               {b: build{version: 1, runtime: []byte("not json")}, want: attest.ErrMalformed},
		"runtime claims without the AK":         {b: build{version: 1, runtime: []byte(`{"keys":[],"vm-configuration":{}}`)}, want: attest.ErrMalformed, message: "HCLAkPub"},
		"runtime claims with an unknown member": {b: build{version: 1, runtime: []byte(`{"keys":[],"vm-configuration":{},"x":1}`)}, want: attest.ErrMalformed},
		"nonce of 64 bytes": {b: build{version: 1, nonce: nonce64}, check: func(t *testing.T, c *attest.Claims) {
			if err := attest.BindsRuntimeData(c.ReportData, nil); !errors.Is(err, attest.ErrBinding) {
				t.Error(err)
			}
		}},
		"vm-configuration flattened": {b: build{version: 1}, check: func(t *testing.T, c *attest.Claims) {
			for k, want := range map[string]string{"secure_boot": "true", "vm_unique_id": "x", "current_time": "1700000000", "evidence_version": "1"} {
				if c.Platform[k] != want {
					t.Errorf("%s = %q, want %q", k, c.Platform[k], want)
				}
			}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := verifier().Verify(context.Background(), tc.b.evidence(t), good)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !c.Simulated || c.Format != attest.FormatAzureSNPVTPM {
					t.Errorf("simulated %v format %q", c.Simulated, c.Format)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
		})
	}
}

func platform(k, want string) func(t *testing.T, c *attest.Claims) {
	return func(t *testing.T, c *attest.Claims) {
		if c.Platform[k] != want {
			t.Errorf("%s = %q, want %q", k, c.Platform[k], want)
		}
	}
}
