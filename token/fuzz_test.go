package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: tokens arrive from workloads and relying parties, untrusted.
// Whatever Verify accepts must be, header and payload, a token the issuer
// signed.
func FuzzVerify(f *testing.F) {
	testPrivs(&testing.T{})
	ring, err := NewKeyring(5*time.Minute, testKey(&testing.T{}, ES256, 0, t0), testKey(&testing.T{}, RS256, 0, t0))
	if err != nil {
		f.Fatal(err)
	}
	es, _ := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: 5 * time.Minute})
	rs, _ := NewIssuer(Config{Issuer: testIssuer, Keyring: ring, TTL: 5 * time.Minute, Algorithm: RS256})
	var signed []string
	for _, iss := range []*Issuer{es, rs} {
		c, err := NewClaims(testResult(&testing.T{}))
		if err != nil {
			f.Fatal(err)
		}
		raw, err := iss.Issue(c, t0)
		if err != nil {
			f.Fatal(err)
		}
		signed = append(signed, raw)
		f.Add(raw)
		parts := strings.Split(raw, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".." + parts[2])
	}
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := es.Verify(raw, t0.Add(time.Minute))
		if err != nil {
			return
		}
		signedInput := raw[:strings.LastIndex(raw, ".")]
		for _, s := range signed {
			if strings.HasPrefix(s, signedInput+".") {
				if c.Workload != "web" {
					t.Fatalf("accepted claims %+v", c)
				}
				return
			}
		}
		t.Fatalf("accepted a token the issuer never signed: %q", raw)
	})
}

// FuzzParseKeyring: the keyring comes back from sealed storage; parse it
// strictly and round-trip what is accepted.
func FuzzParseKeyring(f *testing.F) {
	testPrivs(&testing.T{})
	ring, err := NewKeyring(time.Hour, testKey(&testing.T{}, ES256, 0, t0), testKey(&testing.T{}, RS256, 0, t0))
	if err != nil {
		f.Fatal(err)
	}
	if err := ring.Rotate(t0.Add(time.Minute), testKey(&testing.T{}, ES256, 1, t0)); err != nil {
		f.Fatal(err)
	}
	b, err := json.Marshal(ring)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"maxLifetimeSeconds":60,"keys":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseKeyring(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("accepted keyring does not marshal: %v", err)
		}
		if _, err := ParseKeyring(again); err != nil {
			t.Fatalf("accepted keyring does not round-trip: %v", err)
		}
	})
}

// FuzzParseRuntime: runtime JSON is sent by the workload, untrusted.
func FuzzParseRuntime(f *testing.F) {
	f.Add(testRuntime(&testing.T{}))
	f.Add([]byte(`{"keys":[{"kid":"TpmEphemeralEncryptionKey","kty":"RSA","key_ops":["encrypt"],"n":"AQAB","e":"AQAB"}],"user-data":"00"}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rt, err := ParseRuntime(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(rt)
		if err != nil {
			t.Fatalf("accepted runtime does not marshal: %v", err)
		}
		back, err := ParseRuntime(out)
		if err != nil {
			t.Fatalf("runtime does not round-trip: %v", err)
		}
		// encoding/json may escape characters anew; the JSON is the same.
		var a, b2 any
		if json.Unmarshal(back.Doc, &a) != nil || json.Unmarshal(rt.Doc, &b2) != nil || !reflect.DeepEqual(a, b2) {
			t.Fatalf("runtime changed in a round trip: %s -> %s", rt.Doc, back.Doc)
		}
		if _, err := rt.JWKs(); err != nil {
			t.Fatalf("accepted runtime has unreadable keys: %v", err)
		}
	})
}

// FuzzPayload: Payload reads untrusted strings; what it returns for a
// string of three parts is exactly the middle part decoded, and it refuses
// every other shape.
func FuzzPayload(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln")
	f.Add("a.b")
	f.Add("..")
	f.Add("a.!!.c")
	f.Add("a.eyJ4IjoxfQ.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := Payload(raw)
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			if err == nil {
				t.Fatalf("Payload(%q) of %d parts accepted", raw, len(parts))
			}
			return
		}
		want, werr := base64.RawURLEncoding.DecodeString(parts[1])
		if (err == nil) != (werr == nil) || (err == nil && !bytes.Equal(got, want)) || (err != nil && got != nil) {
			t.Fatalf("Payload(%q) = %q, %v; want %q, %v", raw, got, err, want, werr)
		}
	})
}
