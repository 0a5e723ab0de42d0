package manifest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse: Parse consumes untrusted bytes. It must not panic, and what it
// accepts must survive a JSON round trip unchanged.
//
// The seeds are whole manifests, and the fuzzer minimizes each new
// interesting input for up to a minute by default, so short runs spend
// most of their time minimizing; add -fuzzminimizetime=100x to fuzz.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"workloads":[{"reference":{"measurement":"aa","minSVN":4294967295}}]}`))
	f.Add([]byte("version: 1\nowners: [{name: a, publicKey: \"\"}]\nworkloads: [{name: 0123, reference: {measurements: [00, \"\"]}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		_ = m.Validate() // must not panic either
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if len(out) > MaxSize {
			return
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-Parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%#v\n%#v", m, m2)
		}
	})
}
