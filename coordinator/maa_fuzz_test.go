package coordinator

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzMAARequest feeds untrusted Azure attest request bodies through the
// request parsers: strict JSON, the evidence of each type, runtime and
// init-time data. None may panic, and evidence is only ever produced from
// the member the type takes.
func FuzzMAARequest(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	snp, _ := json.Marshal(map[string]string{"SnpReport": enc(make([]byte, 1184)), "VcekCertChain": enc([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))})
	oe := append([]byte{1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0}, 1, 2, 3, 4)
	for _, seed := range []string{
		`{"quote":"AAAA","runtimeData":{"data":"e30","dataType":"JSON"},"nonce":"n"}`,
		`{"report":"` + enc(snp) + `","initTimeData":{"data":"AQID","dataType":"Binary"}}`,
		`{"report":"` + enc(oe) + `"}`,
		`{"evidence":"` + enc([]byte(`{"td_quote":"AA"}`)) + `"}`,
		`{"evidence":"` + enc([]byte(`{"version":2}`)) + `","draftPolicyForAttestation":"version=1.0;"}`,
		`{"quote":"AAAA","report":"AAAA"}`,
		`{"runtimeData":{"data":"!!","dataType":"Text"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req maaRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return
		}
		_, _ = req.RuntimeData.bytes("runtimeData")
		_, _ = req.InitTimeData.bytes("initTimeData")
		for kind, member := range maaTypes {
			ev, err := maaEvidence(kind, &req)
			if err != nil {
				continue
			}
			if ev == nil {
				t.Fatalf("%s: no evidence and no error", kind)
			}
			for _, other := range []struct {
				name string
				set  bool
			}{{"quote", req.Quote != ""}, {"report", req.Report != ""}, {"evidence", req.Evidence != ""}} {
				if other.set && other.name != member {
					t.Fatalf("%s took evidence although %q was set", kind, other.name)
				}
			}
		}
	})
}

// FuzzMAAPolicyUpload feeds untrusted PUT /policies bodies to the upload
// parser: no panic, and an accepted upload always has a policy token whose
// payload names the text.
func FuzzMAAPolicyUpload(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	text := "version=1.0;\nauthorizationrules { => permit(); };"
	f.Add([]byte(text))
	f.Add([]byte(maaPolicyJWS(text)))
	f.Add([]byte(enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{"AttestationPolicy":"!"}`)) + "."))
	f.Add([]byte(enc([]byte(`{"alg":"RS256","x5c":["AAAA"]}`)) + ".e30.c2ln"))
	f.Add([]byte(enc([]byte(`{"alg":"none","jwk":{}}`)) + ".e30."))
	f.Fuzz(func(t *testing.T, body []byte) {
		up, f := parseMAAPolicyUpload(body)
		if f != nil {
			if up != nil || f.status != 400 {
				t.Fatalf("refusal %+v with upload %+v", f, up)
			}
			return
		}
		if up.jws == "" || strings.Count(up.jws, ".") != 2 {
			t.Fatalf("accepted upload without a policy token: %+v", up)
		}
	})
}
