package coordinator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPreparePolicy: owners' policy texts (and dry-run drafts) are
// detected and parsed by PolicyCache.Prepare; it never panics, refuses
// only with a *PolicyError, and an accepted text is of the kind detected.
func FuzzPreparePolicy(f *testing.F) {
	seeds, _ := filepath.Glob("../policy/testdata/*.json")
	more, _ := filepath.Glob("../policy/testdata/*.policy")
	rego, _ := filepath.Glob("../policy/testdata/rego/*.rego")
	for _, p := range append(append(seeds, more...), rego...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("")
	f.Add("version = 1.0;")
	f.Add("# c\npackage trustbound\n")
	pc := NewPolicyCache(8, 0)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := pc.Prepare(context.Background(), "fuzz", "", text)
		if err != nil {
			if pe := (*PolicyError)(nil); !errors.As(err, &pe) {
				t.Fatalf("refusal %T is not a *PolicyError: %v", err, err)
			}
			return
		}
		kind, err := DetectPolicyKind(text)
		if err != nil || kind != p.Kind {
			t.Fatalf("prepared as %s, detected as %s (%v)", p.Kind, kind, err)
		}
	})
}
