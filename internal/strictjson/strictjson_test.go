package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Members must agree with encoding/json: it accepts exactly the valid
// documents without duplicate member names, and its top-level members are
// the bytes json.Unmarshal gives a map[string]json.RawMessage.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `"x"`, `1`, `{"a":1,"b":[1,{"c":"}"}],"d":{"e":null}}`,
		" \n{ \"a\" : \"x\\\"y\" , \"b\" :\t[ ] }\n", `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`,
		`{"\u0061":1,"a":2}`, `{"a":1}{}`, `{"a":1,}`, `[{"a":1},{"a":1}]`, `{"k":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Members(data, 0)
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("Members accepted invalid JSON %q", data)
			}
			return
		}
		if err != nil {
			if !strings.Contains(err.Error(), "duplicate key") {
				t.Fatalf("Members refused valid JSON %q: %v", data, err)
			}
			return
		}
		t0 := bytes.TrimLeft(data, " \t\r\n")
		if (m != nil) != (t0[0] == '{') {
			t.Fatalf("Members(%q): members %v for a document starting %q", data, m, t0[0])
		}
		if m == nil {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if len(m) != len(want) {
			t.Fatalf("Members(%q): %d members, encoding/json %d", data, len(m), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(m[k], v) {
				t.Fatalf("Members(%q): member %q is %q, encoding/json says %q", data, k, m[k], v)
			}
		}
	})
}

func TestMembersDuplicates(t *testing.T) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"x":[{"b":1,"b":2}]}`, `{"\u0061":1,"a":2}`} {
		if _, err := Members([]byte(s), 0); err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("Members(%s) = %v, want a duplicate key error", s, err)
		}
	}
	m, err := Members([]byte(`{"a":{"b":1},"c":[1,"x,y"]}`), 0)
	if err != nil || string(m["a"]) != `{"b":1}` || string(m["c"]) != `[1,"x,y"]` || len(m) != 2 {
		t.Errorf("Members = %q, %v", m, err)
	}
	// Past 16 names an object switches from a list to a set: a name
	// repeated there is still found.
	var many strings.Builder
	many.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&many, `"k%d":1,`, i)
	}
	many.WriteString(`"k0":2}`)
	if err := Check([]byte(many.String()), 0); err == nil || !strings.Contains(err.Error(), `duplicate key "k0"`) {
		t.Errorf("a name repeated after 40 others: %v", err)
	}
}

// maxDepth bounds the containers open at once; 0 bounds nothing.
func TestCheckDepth(t *testing.T) {
	nest := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	if err := Check(nest(3), 3); err != nil {
		t.Errorf("3 deep with a bound of 3: %v", err)
	}
	if err := Check(nest(4), 3); err == nil || !strings.Contains(err.Error(), "nested deeper than 3") {
		t.Errorf("4 deep with a bound of 3: %v", err)
	}
	if err := Check([]byte(`{"a":{"b":{"c":{}}}}`), 3); err == nil {
		t.Error("4 objects deep passed a bound of 3")
	}
	if err := Check(nest(1000), 0); err != nil {
		t.Errorf("no bound: %v", err)
	}
	for _, bad := range []string{`{"a":1}x`, ``, `{"a":1,}`} {
		if err := Check([]byte(bad), 0); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Errorf("Check(%q) = %v, want not valid JSON", bad, err)
		}
	}
}
