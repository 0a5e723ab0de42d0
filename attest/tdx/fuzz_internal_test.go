package tdx

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecodeV4Differential decodes every framed version 4 quote with both
// go-tdx-guest's abi package (what ParseQuote uses for version 4) and this
// package's own decoder (what it uses for version 5): they must agree.
func FuzzDecodeV4Differential(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range names {
		if b, err := os.ReadFile(n); err == nil && len(b) > 2 && b[0] == 4 && b[1] == 0 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := frame(b)
		if err != nil || l.version != Version4 {
			return
		}
		b = b[:l.end]
		own := decode(b, l)
		viaABI, err := decodeV4(b)
		if err != nil {
			// abi refuses what this package's own checkHeader refuses
			// too: another key or TEE type, non-zero header reserved
			// bytes. Nothing else.
			if checkHeader(b) == nil {
				t.Fatalf("abi refuses a framed quote: %v", err)
			}
			return
		}
		if !reflect.DeepEqual(own, viaABI) {
			t.Fatalf("decoders disagree:\n own %+v\n abi %+v", own, viaABI)
		}
	})
}
