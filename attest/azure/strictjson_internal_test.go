package azure

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// scanJSON must agree with encoding/json: it accepts exactly the valid
// documents without duplicate keys, and its top-level members are the
// bytes json.Unmarshal gives a map[string]json.RawMessage.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `"x"`, `1`, `{"a":1,"b":[1,{"c":"}"}],"d":{"e":null}}`,
		" \n{ \"a\" : \"x\\\"y\" , \"b\" :\t[ ] }\n", `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`,
		`{"\u0061":1,"a":2}`, `{"a":1}{}`, `{"a":1,}`, `[{"a":1},{"a":1}]`, `{"k":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := scanJSON(data)
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("scanJSON accepted invalid JSON %q", data)
			}
			return
		}
		if err != nil {
			if !strings.Contains(err.Error(), "duplicate key") {
				t.Fatalf("scanJSON refused valid JSON %q: %v", data, err)
			}
			return
		}
		t0 := bytes.TrimLeft(data, " \t\r\n")
		if (m != nil) != (t0[0] == '{') {
			t.Fatalf("scanJSON(%q): members %v for a document starting %q", data, m, t0[0])
		}
		if m == nil {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if len(m) != len(want) {
			t.Fatalf("scanJSON(%q): %d members, encoding/json %d", data, len(m), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(m[k], v) {
				t.Fatalf("scanJSON(%q): member %q is %q, encoding/json says %q", data, k, m[k], v)
			}
		}
	})
}

func TestScanJSONDuplicates(t *testing.T) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"x":[{"b":1,"b":2}]}`, `{"\u0061":1,"a":2}`} {
		if _, err := scanJSON([]byte(s)); err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("scanJSON(%s) = %v, want a duplicate key error", s, err)
		}
	}
	m, err := scanJSON([]byte(`{"a":{"b":1},"c":[1,"x,y"]}`))
	if err != nil || string(m["a"]) != `{"b":1}` || string(m["c"]) != `[1,"x,y"]` || len(m) != 2 {
		t.Errorf("scanJSON members = %q, %v", m, err)
	}
}
