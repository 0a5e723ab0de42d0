package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// FuzzKBSAttestation feeds untrusted KBS attest bodies through what the
// coordinator does with them before any cryptography: strict decoding of
// the request, the composite evidence, and the canonical runtime data
// whose hash the evidence must bind. None may panic; the canonical form is
// deterministic and canonical JSON of canonical JSON is itself.
func FuzzKBSAttestation(f *testing.F) {
	for _, seed := range []string{
		`{"runtime-data":{"nonce":"abc","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AA"}},"tee-evidence":{"primary_evidence":{"version":2},"additional_evidence":""}}`,
		`{"init-data":{"format":"toml","body":"x = 1"},"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"AQAB","e":"AQAB"}},"tee-evidence":{}}`,
		`{"runtime-data":{"nonce":1},"tee-evidence":[]}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req kbsAttestation
		if err := json.Unmarshal(body, &req); err != nil {
			return
		}
		var comp kbsComposite
		_ = json.Unmarshal(req.TEEEvidence, &comp)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return
		}
		a, err := kbsCanonical(m)
		if err != nil {
			return
		}
		b, err := kbsCanonical(m)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("canonical JSON is not deterministic: %q vs %q (%v)", a, b, err)
		}
		var again map[string]any
		if err := json.Unmarshal(a, &again); err != nil {
			t.Fatalf("canonical JSON does not parse: %v", err)
		}
		c, err := kbsCanonical(again)
		if err != nil || !bytes.Equal(a, c) {
			t.Fatalf("canonical JSON is not a fixed point: %q vs %q", a, c)
		}
		if rd := KBSReportData(a); len(rd) == 0 {
			t.Fatal("no report data for runtime data")
		}
	})
}

// FuzzKBSTEEEvidence feeds untrusted bare tdx/snp KBS evidence to its
// conversion: no panic, and SNP evidence that converts is a 1184-byte
// report with the endorsement key first.
func FuzzKBSTEEEvidence(f *testing.F) {
	if b, err := os.ReadFile("testdata/trustee-e2e-snp-evidence.json"); err == nil {
		f.Add("snp", b)
	}
	f.Add("tdx", []byte(`{"cc_eventlog":null,"quote":"BAACAIEAAAA="}`))
	f.Add("tdx", []byte(`{"cc_eventlog":"AAAAAAMAAAA=","quote":"BAACAIEAAAA="}`))
	f.Add("snp", []byte(`{"attestation_report":{},"cert_chain":[]}`))
	f.Add("tdx", []byte(`{"quote":1}`))
	f.Fuzz(func(t *testing.T, tee string, data []byte) {
		ev, err := kbsEvidence(tee, data)
		if err != nil {
			return
		}
		if ev == nil {
			t.Fatal("no evidence and no error")
		}
		if tee == "snp" && len(ev.Data) != 1184 {
			t.Fatalf("SNP report of %d bytes", len(ev.Data))
		}
	})
}

// FuzzKBSInitData feeds untrusted init-data to its digest: no panic; what
// is accepted names one of the three algorithms, digests to that hash's
// size, and digests the same again.
func FuzzKBSInitData(f *testing.F) {
	for _, seed := range []string{
		"algorithm = \"sha384\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs]\n'''\n",
		"version = '0.1.0' # comment\n'algorithm' = 'sha256'\n[data]\n",
		"x = \"\"\"\nalgorithm = \"sha512\"\n\"\"\"\nalgorithm = \"sha256\"\n",
		"algorithm = \"sha384\"\nalgorithm = \"sha384\"\n",
		"algorithm = \"sha\\u0033\"\n",
		"[data]\nalgorithm = \"sha256\"\n",
		"\"algorithm\nx",
	} {
		f.Add("toml", seed)
	}
	f.Add("json", `{"algorithm":"sha384"}`)
	f.Fuzz(func(t *testing.T, format, body string) {
		alg, d, err := kbsInitDataDigest(&kbsInitData{Format: format, Body: body})
		if err != nil {
			if !errors.Is(err, errInitData) {
				t.Fatalf("refused without errInitData: %v", err)
			}
			return
		}
		size := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64}[alg]
		if size == 0 || len(d) != size {
			t.Fatalf("algorithm %q with a %d-byte digest", alg, len(d))
		}
		alg2, d2, err := kbsInitDataDigest(&kbsInitData{Format: format, Body: body})
		if err != nil || alg2 != alg || !bytes.Equal(d, d2) {
			t.Fatal("not deterministic")
		}
	})
}
