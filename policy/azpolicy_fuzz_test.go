package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseAttestationPolicy: attestation policies are untrusted input
// (PUT /policies/{type}). Parsing never panics and refuses with an
// *AttestationPolicyError; an accepted policy's Text parses back to the
// same Text, and it evaluates without panicking, permitted exactly when
// err is nil.
func FuzzParseAttestationPolicy(f *testing.F) {
	files, _ := filepath.Glob("testdata/maa-*.policy")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{
		"version=1.0;authorizationrules{=>permit();};issuancerules{};",
		`version=1.0; authorizationrules { c:[type=="$is-debuggable"] && [value==true] => deny(); => permit(); }; issuancerules { c:[type=="$is-debuggable"] => issue(type="NotDebuggable", value=c.value); };`,
		`version=1.0; authorizationrules { F1:[type=="a", issuer=="CustomClaim"] && C2:[type=="a", value==F1.value] => add(claim=C2); [type=="n", value>=-3] => permit(); }; issuancerules { => issue(type="x", value=false); };`,
		"version=1.0;\nauthorizationrules\n{\n[type==\"a\"] || [type==\"b\"] => permit();\n};",
		"version=1.1; configurationrules { => issueproperty(type=\"x\", value=1); };",
		"version=1.0; authorizationrules { // c\n => permit(); };",
	} {
		f.Add(s)
	}
	claims := map[string]any{"a": "x", "n": uint32(5), "$is-debuggable": false, "x-ms-sgx-mrsigner": "ab", "obj": map[string]any{"k": 1}}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseAttestationPolicy(text)
		if err != nil {
			var pe *AttestationPolicyError
			if p != nil || !errors.As(err, &pe) || pe.Line < 1 || pe.Column < 1 {
				t.Fatalf("refusal %v (%T) with policy %v", err, err, p)
			}
			return
		}
		canon := p.Text()
		q, err := ParseAttestationPolicy(canon)
		if err != nil {
			t.Fatalf("Text() does not parse: %v\n%s", err, canon)
		}
		if again := q.Text(); again != canon {
			t.Fatalf("Text() is not stable:\n%s\n%s", canon, again)
		}
		ok, issued, err := p.Evaluate(claims)
		if ok != (err == nil) || ok != (issued != nil) || (err != nil && !errors.Is(err, ErrDenied)) {
			t.Fatalf("permitted %v, issued %v, err %v", ok, issued, err)
		}
		if ok2, _, _ := q.Evaluate(claims); ok2 != ok {
			t.Fatalf("the canonical text decides differently")
		}
	})
}
