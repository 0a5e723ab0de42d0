package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// The token payload is Claims.MarshalJSON's output as it is (sign skips
// json.Marshal's re-scan): it must be byte for byte what json.Marshal
// writes, HTML-sensitive characters escaped, in a workload name, an
// issued claim and a runtime document alike.
func TestSignedPayloadIsJSONMarshal(t *testing.T) {
	r := testResult(t)
	r.Workload = "web<&>"
	r.Issued = map[string]any{"note": "a<b>&c", "n": 1}
	c, err := NewClaims(r)
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := newIssuer(t, ES256)
	raw, tc, err := iss.IssueClaims(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(*tc)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("payload differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
	if !bytes.Contains(got, []byte(`web\u003c\u0026\u003e`)) || !bytes.Contains(got, []byte(`a\u003cb\u003e\u0026c`)) {
		t.Errorf("payload does not escape < & > as json.Marshal does: %s", got)
	}
}

// Runtime.Doc is the document compacted, whether it had whitespace to
// remove (json.Compact) or none (copied as it is); spaces inside strings
// stay, and the copy does not alias the input.
func TestParseRuntimeDocCompact(t *testing.T) {
	for _, doc := range []string{
		`{"nonce":"n1","user-data":"a b\tc"}`,
		"{ \"nonce\" : \"n1\",\n\t\"user-data\": \"a b\" }\r\n",
		`{"nonce":"n1","x":[1,2,{"y":null}]}`,
	} {
		in := []byte(doc)
		rt, err := ParseRuntime(in)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := json.Compact(&want, in); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rt.Doc, want.Bytes()) {
			t.Errorf("Doc of %q = %s, want %s", doc, rt.Doc, want.Bytes())
		}
		in[0] = 'X'
		if rt.Doc[0] != '{' {
			t.Errorf("Doc of %q aliases the input", doc)
		}
	}
}
