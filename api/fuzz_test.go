package api

import (
	"bytes"
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

// UniqueNames accepts exactly the valid JSON documents in which no object
// repeats a member name: it agrees with json.Valid, and with a decoder
// that counts the members of every object.
func FuzzUniqueNames(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"b":[{"c":1,"c":2}]}}`, `{"\u0061":1,"a":2}`,
		`[{"a":1},{"a":1}]`, `{"a":"\"a\"","b":"a"}`, `{"a":1}x`, `"s"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := UniqueNames(doc)
		if !json.Valid(doc) {
			if err == nil {
				t.Fatalf("UniqueNames accepted invalid JSON %q", doc)
			}
			return
		}
		if dup := hasDuplicate(doc); dup != (err != nil) {
			t.Fatalf("UniqueNames(%q) = %v, duplicate by decoding: %v", doc, err, dup)
		}
	})
}

func TestUniqueNames(t *testing.T) {
	for doc, dup := range map[string]bool{
		`{"a":1,"b":{"a":2}}`: false, `{"a":1,"a":2}`: true, `[{"x":1},{"x":1}]`: false,
		`{"a":{"b":[{"c":1,"c":2}]}}`: true, `{"\u0061":1,"a":2}`: true, `{"a":",\"a\":"}`: false,
	} {
		if err := UniqueNames([]byte(doc)); (err != nil) != dup {
			t.Errorf("UniqueNames(%s) = %v, want duplicate %v", doc, err, dup)
		}
	}
}

// hasDuplicate decodes doc token by token and reports whether an object
// repeats a member name.
func hasDuplicate(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			dup := false
			for dec.More() {
				k, _ := dec.Token()
				name, _ := k.(string)
				if seen[name] {
					dup = true
				}
				seen[name] = true
				if walk() {
					dup = true
				}
			}
			_, _ = dec.Token()
			return dup
		case json.Delim('['):
			dup := false
			for dec.More() {
				if walk() {
					dup = true
				}
			}
			_, _ = dec.Token()
			return dup
		}
		return false
	}
	return walk()
}
