package api

import (
	"encoding/json"
	"testing"
)

// FuzzParseRuntimeData: runtime data arrives from the workload, untrusted.
// Whatever parses must have a nonce, re-encode, and parse again to the same
// value; its keys must either decode or fail, never panic.
func FuzzParseRuntimeData(f *testing.F) {
	f.Add([]byte(`{"nonce":"a","workload":"w","keys":[{"kid":"tb-identity","kty":"EC","crv":"P-256","x":"AA","y":"AA"}],"hpke":{"kem":25722,"kdf":1,"aead":2,"publicKey":"AAAA"}}`))
	f.Add([]byte(`{"nonce":"a","keys":[{"kid":"k","kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"nonce":"a"} x`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rd, err := ParseRuntimeData(b)
		if err != nil {
			return
		}
		if rd.Nonce == "" {
			t.Fatal("accepted runtime data without a nonce")
		}
		for _, k := range rd.Keys {
			_, _ = k.PublicKey()
		}
		again, err := json.Marshal(rd)
		if err != nil {
			t.Fatal(err)
		}
		rd2, err := ParseRuntimeData(again)
		if err != nil {
			t.Fatalf("re-encoded runtime data does not parse: %v", err)
		}
		if rd2.Nonce != rd.Nonce || rd2.Workload != rd.Workload || len(rd2.Keys) != len(rd.Keys) {
			t.Fatal("runtime data does not round-trip")
		}
	})
}

// FuzzParseOwnerAuth: the Authorization header is untrusted.
func FuzzParseOwnerAuth(f *testing.F) {
	f.Add("TB-Owner name=alice,nonce=abc,sig=AAAA")
	f.Add("TB-Owner name=a,name=b,nonce=c,sig=AA")
	f.Add("Bearer x")
	f.Add("TB-Owner ")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseOwnerAuth(h)
		if err != nil {
			return
		}
		if a.Name == "" || a.Nonce == "" || len(a.Sig) == 0 {
			t.Fatalf("accepted a header without name, nonce or signature: %q", h)
		}
	})
}

// FuzzDecodeAttestRequest: the attest body is untrusted JSON.
func FuzzDecodeAttestRequest(f *testing.F) {
	f.Add([]byte(`{"workload":"w","evidence":{"format":"sev-snp-report","data":"AAAA","certs":["AA=="],"runtimeData":"e30="}}`))
	f.Add([]byte(`{"workload":"w","evidence":{"format":1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req AttestRequest
		if err := DecodeStrict(b, &req); err != nil {
			return
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var req2 AttestRequest
		if err := DecodeStrict(again, &req2); err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
	})
}
