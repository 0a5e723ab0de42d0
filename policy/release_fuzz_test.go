package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseReleasePolicy: release policies are untrusted input (uploaded
// with a key). Parsing never panics, refuses with a *ReleasePolicyError,
// and what it accepts evaluates without panicking, deciding the same for
// the same claims.
func FuzzParseReleasePolicy(f *testing.F) {
	files, _ := filepath.Glob("testdata/skr-*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"version":"1.0.0","anyOf":[{"authority":"https://issuer.example","allOf":[{"claim":"obj.inner.k","exists":true},{"claim":"n","greaterOrEquals":5}]}]}`,
		`{"version":"1.0.0","allOf":[{"authority":"issuer.example","anyOf":[{"anyOf":[{"claim":"b","equals":"false"}]},{"claim":"big","less":1e19}]}]}`,
		`{"version":"1.0.0","anyOf":[{"authority":"https://issuer.example","allOf":[{"claim":"s","equals":["a"]}]}]}`,
		`{"version":"1.0.0","anyOf":[]}`,
		`{"version":"2.0.0"}`,
		`{"version":"1.0.0","anyOf":[{"authority":"https://issuer.example","allOf":[{"claim":"s","equals":"a","notEquals":"b"}]}]}`,
	} {
		f.Add([]byte(s))
	}
	claims := kvClaims()
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseReleasePolicy(b)
		if err != nil {
			var pe *ReleasePolicyError
			if p != nil || !errors.As(err, &pe) {
				t.Fatalf("refusal %v (%T) with policy %v", err, err, p)
			}
			return
		}
		for _, iss := range []string{testIssuer, "issuer.example", ""} {
			first := p.Evaluate(iss, claims)
			if first != nil && !errors.Is(first, ErrDenied) {
				t.Fatalf("denial without ErrDenied: %v", first)
			}
			if again := p.Evaluate(iss, claims); (again == nil) != (first == nil) {
				t.Fatalf("two decisions: %v, %v", first, again)
			}
		}
	})
}
