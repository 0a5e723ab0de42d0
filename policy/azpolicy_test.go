package policy

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustAttestationPolicy(t testing.TB, text string) *AttestationPolicy {
	t.Helper()
	p, err := ParseAttestationPolicy(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return p
}

func loadAttestationPolicy(t testing.TB, name string) (*AttestationPolicy, string) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return mustAttestationPolicy(t, string(b)), string(b)
}

// The documented Azure SGX policy (policy/testdata/maa-sgx.policy) with
// the MAA SGX sample quotes: the release enclave is permitted and gets
// its signer issued; the debug enclave of the same signer is denied.
func TestAttestationPolicySGXSample(t *testing.T) {
	p, _ := loadAttestationPolicy(t, "maa-sgx.policy")
	const signer = "feb995eb86c349ac98e5afbbb5732ca7376ec9979002702ea17ad476e0853a04"

	release := sgxSampleClaims(t, "quote.release.bin")
	ok, issued, err := p.Evaluate(release)
	if !ok || err != nil {
		t.Fatalf("release enclave: %v, %v", ok, err)
	}
	if !reflect.DeepEqual(issued, map[string]any{"signer": signer}) {
		t.Errorf("issued %v", issued)
	}

	debug := sgxSampleClaims(t, "quote.debug.bin")
	if debug["x-ms-sgx-mrsigner"] != signer || debug["x-ms-sgx-is-debuggable"] != true {
		t.Fatalf("the debug sample is not the same signer's debug enclave: %v", debug)
	}
	ok, issued, err = p.Evaluate(debug)
	if ok || issued != nil || !errors.Is(err, ErrDenied) {
		t.Fatalf("debug enclave: %v, %v, %v", ok, issued, err)
	}
	vs := violations(err)
	if len(vs) != 1 || vs[0].Field != "authorizationrules line 4" ||
		vs[0].Msg != `no claim satisfies [type=="x-ms-sgx-is-debuggable", value==false] (x-ms-sgx-is-debuggable is true)` {
		t.Errorf("denial %v", err)
	}
	t.Log(err)

	// The documented policy for several enclaves, here two signers'
	// debug enclaves: now the debug sample passes and the release one not.
	multi, _ := loadAttestationPolicy(t, "maa-sgx-multi.policy")
	if ok, issued, err := multi.Evaluate(debug); !ok || err != nil || len(issued) != 0 || issued == nil {
		t.Errorf("multi, debug: %v, %v, %v", ok, issued, err)
	}
	ok, _, err = multi.Evaluate(release)
	if ok || !errors.Is(err, ErrDenied) || len(violations(err)) != 2 {
		t.Errorf("multi, release: %v, %v", ok, err)
	}
	t.Log(err)
}

func TestAttestationPolicySemantics(t *testing.T) {
	claims := map[string]any{
		"a": "x", "b": "x", "c": "y",
		"p": true, "q": true, "want": "q",
		"n": uint32(5), "neg": int64(-2), "d": false,
		"obj": map[string]any{"k": "v"},
	}
	for _, tc := range []struct {
		name   string
		rules  string // authorization rules
		permit bool
	}{
		{"unconditional permit", `=> permit();`, true},
		{"unconditional deny", `=> deny();`, false},
		{"no rules", ``, false},
		// First match in document order (Azure: "rules are applied in
		// order"): a permit before a matching deny decides.
		{"an earlier permit decides before a deny", `=> permit(); [type=="p", value==true] => deny();`, true},
		{"an earlier deny decides before a permit", `[type=="p", value==true] => deny(); => permit();`, false},
		{"a matching permit before a catch-all deny", `[type=="a", value=="x"] => permit(); => deny();`, true},
		{"a non-matching permit before a catch-all deny", `[type=="a", value=="y"] => permit(); => deny();`, false},
		{"add then permit on the added claim", `[type=="a", value=="x"] => add(type="added", value=true); [type=="added", value==true] => permit(); => deny();`, true},
		{"a deny that does not match", `[type=="d", value==true] => deny(); => permit();`, true},
		{"any permit", `[type=="a", value=="nope"] => permit(); [type=="a", value=="x"] => permit();`, true},
		{"string ==", `[type=="a", value=="x"] => permit();`, true},
		{"strings are case-sensitive", `[type=="a", value=="X"] => permit();`, false},
		{"string !=", `[type=="a", value!="y"] => permit();`, true},
		{"bool ==", `[type=="d", value==false] => permit();`, true},
		{"bool !=", `[type=="d", value!=true] => permit();`, true},
		{"int ==", `[type=="n", value==5] => permit();`, true},
		{"int !=", `[type=="n", value!=5] => permit();`, false},
		{"int <", `[type=="n", value<6] => permit();`, true},
		{"int < fails", `[type=="n", value<5] => permit();`, false},
		{"int <=", `[type=="n", value<=5] => permit();`, true},
		{"int >", `[type=="n", value>4] => permit();`, true},
		{"int > fails", `[type=="n", value>5] => permit();`, false},
		{"int >=", `[type=="n", value>=5] => permit();`, true},
		{"negative", `[type=="neg", value<-1] => permit();`, true},
		{"string against int", `[type=="n", value=="5"] => permit();`, false},
		{"!= across types fails too", `[type=="n", value!="5"] => permit();`, false},
		{"int against bool", `[type=="d", value==0] => permit();`, false},
		{"object values compare with nothing", `[type=="obj", value!="v"] => permit();`, false},
		{"type !=", `[type!="a", value=="x"] => permit();`, true}, // b
		{"missing claim", `[type=="missing"] => permit();`, false},
		{"missing claim, !=", `[type=="missing", value!="x"] => permit();`, false},
		{"&& all hold", `[type=="a"] && [type=="n", value>=5] => permit();`, true},
		{"&& one fails", `[type=="a"] && [type=="n", value>5] => permit();`, false},
		{"issuer of incoming claims", `[type=="a", issuer=="AttestationService"] => permit();`, true},
		{"another issuer", `[type=="a", issuer=="CustomClaim"] => permit();`, false},
		{"reference", `x:[type=="a"] && [type=="b", value==x.value] => permit();`, true},
		{"reference fails", `x:[type=="a"] && [type=="c", value==x.value] => permit();`, false},
		{"reference to another property", `x:[type=="a"] && [type=="want", value!=x.type] => permit();`, true},
		// x must bind q, the second claim with value true: backtracking.
		{"backtracking", `x:[value==true] && [type=="want", value==x.type] => permit();`, true},
		{"added claims count", `=> add(type="stage", value=1); [type=="stage", value==1, issuer=="AttestationPolicy"] => permit();`, true},
		{"added later does not count earlier", `[type=="stage"] => permit(); => add(type="stage", value=1);`, false},
		{"add copies a claim", `x:[type=="n"] => add(claim=x); [type=="n", issuer=="AttestationPolicy", value==5] => permit();`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustAttestationPolicy(t, "version=1.0;\nauthorizationrules\n{\n"+tc.rules+"\n};")
			ok, issued, err := p.Evaluate(claims)
			if ok != tc.permit || ok != (err == nil) || ok != (issued != nil) {
				t.Fatalf("permitted %v, issued %v, err %v; want permitted %v", ok, issued, err, tc.permit)
			}
			if err != nil && !errors.Is(err, ErrDenied) {
				t.Fatalf("%v does not wrap ErrDenied", err)
			}
		})
	}
}

// Azure's signed SGX policy sample (policy-examples, "Signed Policy for an
// SGX enclave", its AttestationPolicy payload decoded), evaluated over the
// legacy claim names it uses: a deny() before an unconditional permit().
func TestAttestationPolicySignedSample(t *testing.T) {
	const sample = `version=1.0;authorizationrules {c:[type=="$is-debuggable"] && [value==true] => deny();=> permit();};issuancerules {    c:[type=="$is-debuggable"] => issue(type="NotDebuggable", value=c.value);    c:[type=="$is-debuggable"] => issue(type="is-debuggable", value=c.value);    c:[type=="$sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);    c:[type=="$sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);    c:[type=="$product-id"] => issue(type="product-id", value=c.value);    c:[type=="$svn"] => issue(type="svn", value=c.value);    c:[type=="$tee"] => issue(type="tee", value=c.value);};`
	p := mustAttestationPolicy(t, sample)
	claims := map[string]any{"$is-debuggable": false, "$sgx-mrsigner": "ab", "$sgx-mrenclave": "cd", "$product-id": 1, "$svn": 2, "$tee": "sgx"}
	ok, issued, err := p.Evaluate(claims)
	want := map[string]any{"NotDebuggable": false, "is-debuggable": false, "sgx-mrsigner": "ab", "sgx-mrenclave": "cd", "product-id": 1, "svn": 2, "tee": "sgx"}
	if !ok || err != nil || !reflect.DeepEqual(issued, want) {
		t.Fatalf("release enclave: %v, %v, %v", ok, issued, err)
	}
	claims["$is-debuggable"] = true
	if ok, issued, err := p.Evaluate(claims); ok || issued != nil || !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "deny() rule matched") {
		t.Fatalf("debug enclave: %v, %v, %v", ok, issued, err)
	}
}

func TestAttestationPolicyIssuance(t *testing.T) {
	p := mustAttestationPolicy(t, `version=1.0;
authorizationrules { => permit(); };
issuancerules {
	c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value);
	c:[type=="x-ms-sgx-svn"] => issue(claim=c);
	=> issue(type="level", value=100);
	=> issue(type="ok", value=true);
	[type=="level", value==100, issuer=="AttestationPolicy"] => issue(type="seen", value="yes");
	=> add(type="hidden", value="x");
	[type=="hidden"] => issue(type="tag", value="a");
	[type=="hidden"] => issue(type="tag", value="b");
	[type=="hidden"] => issue(type="tag", value="c");
	[type=="x-ms-sgx-is-debuggable", value==true] => issue(type="never", value=1);
};`)
	ok, issued, err := p.Evaluate(map[string]any{"x-ms-sgx-mrsigner": "ab", "x-ms-sgx-svn": uint32(3), "x-ms-sgx-is-debuggable": false})
	if !ok || err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"signer": "ab", "x-ms-sgx-svn": uint32(3), "level": int64(100), "ok": true, "seen": "yes",
		"tag": []any{"a", "b", "c"},
	}
	if !reflect.DeepEqual(issued, want) {
		t.Errorf("issued %#v\nwant %#v", issued, want)
	}
}

// Evaluation is bounded: a policy whose conditions refer to each other so
// that no claim assignment works is refused once the budget is spent.
func TestAttestationPolicyBudget(t *testing.T) {
	var conds []string
	var refs []string
	for _, id := range strings.Split("abcdefghij", "") {
		conds = append(conds, id+`:[type!="none"]`)
		refs = append(refs, "value=="+id+".value")
	}
	text := "version=1.0; authorizationrules { " + strings.Join(conds, " && ") +
		` && [type=="none", ` + strings.Join(refs, ", ") + `] => permit(); };`
	p := mustAttestationPolicy(t, text)
	claims := map[string]any{}
	for i := range 30 {
		claims[string(rune('A'+i))] = i
	}
	start := time.Now()
	ok, _, err := p.Evaluate(claims)
	if ok || !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "claim tests") {
		t.Fatalf("%v, %v", ok, err)
	}
	t.Logf("%v after %v", err, time.Since(start))
}

func TestAttestationPolicyMalformed(t *testing.T) {
	const head = "version=1.0;\nauthorizationrules\n{\n"
	for _, tc := range []struct {
		name      string
		text      string
		line, col int
		msg       string
	}{
		{"||", head + `[type=="a"] || [type=="b"] => permit();` + "\n};", 4, 13, `"||" is not part`},
		{"single |", head + `[type=="a"] | [type=="b"] => permit();` + "\n};", 4, 13, `"||" is not part`},
		{"single &", head + `[type=="a"] & [type=="b"] => permit();` + "\n};", 4, 13, `joined with "&&"`},
		{"line comment", head + "// allow all\n=> permit();\n};", 4, 1, "comments"},
		{"block comment", head + "/* x */ => permit();\n};", 4, 1, "comments"},
		{"hash comment", head + "# x\n=> permit();\n};", 4, 1, "comments"},
		{"unknown action", head + "=> allow();\n};", 4, 4, `unknown action "allow"`},
		{"issueproperty", head + "};\nissuancerules\n{\n=> issueproperty(type=\"x\", value=1);\n};", 7, 4, "issueproperty() is not supported"},
		{"issue in authorization", head + "=> issue(type=\"x\", value=1);\n};", 4, 4, "cannot issue"},
		{"permit in issuance", head + "};\nissuancerules\n{\n=> permit();\n};", 7, 4, "belongs in authorizationrules"},
		{"permit with an argument", head + "=> permit(x);\n};", 4, 11, "takes no arguments"},
		{"valueType", head + "};\nissuancerules\n{\n=> issue(type=\"x\", valueType=\"Integer\");\n};", 7, 20, "valueType= is not supported"},
		{"version 1.1", "version=1.1;\nauthorizationrules { => permit(); };", 1, 9, "version 1.1 is not supported"},
		{"version 2.0", "version=2.0;\nauthorizationrules { => permit(); };", 1, 9, "unknown policy version 2.0"},
		{"no version", "authorizationrules { => permit(); };", 1, 1, `starts with "version=1.0;"`},
		{"version without ;", "version=1.0\nauthorizationrules { => permit(); };", 2, 1, `expected ";"`},
		{"configurationrules", "version=1.0;\nconfigurationrules { => permit(); };", 2, 1, "version 1.1"},
		{"no authorization rules", "version=1.0;\n", 2, 1, "no authorizationrules"},
		{"issuance first", "version=1.0;\nissuancerules { };\nauthorizationrules { => permit(); };", 2, 1, "comes first"},
		{"authorization twice", "version=1.0;\nauthorizationrules { };\nauthorizationrules { };", 3, 1, "appears once"},
		{"unknown section", "version=1.0;\nauthorizationrules { };\nmeasurements { };", 3, 1, "expected authorizationrules or issuancerules"},
		{"section without ;", "version=1.0;\nauthorizationrules { => permit(); }", 2, 36, `expected ";"`},
		{"section not closed", head + "=> permit();\n", 5, 1, "not closed"},
		{"rule without ;", head + "=> permit()\n};", 5, 1, `expected ";" after the rule`},
		{"= in a condition", head + `c:[type="secureBootEnables"] => permit();` + "\n};", 4, 8, `compares with "=="`},
		{"typographic quotes", head + "c:[type==”$is-debuggable”] => permit();\n};", 4, 10, "typographic quote"},
		{"placeholder", head + `[type=="x-ms-sgx-product-id", value==<product-id>] => permit();` + "\n};", 4, 38, "expected a string, an integer"},
		{"decimal", head + `[type=="a", value==1.5] => permit();` + "\n};", 4, 20, "decimal numbers"},
		{"ordering on a string", head + `[type=="a", value<"b"] => permit();` + "\n};", 4, 19, "compares integers only"},
		{"ordering on type", head + `[type<"a"] => permit();` + "\n};", 4, 6, "type is a string"},
		{"type compared with an integer", head + `[type==5] => permit();` + "\n};", 4, 8, "compare it with a string"},
		{"unbound reference", head + `[type=="a", value==d.value] => permit();` + "\n};", 4, 20, `"d" is not bound`},
		{"self reference", head + `d:[type=="a", value==d.value] => permit();` + "\n};", 4, 22, `"d" is not bound`},
		{"bad property", head + `d:[type=="a"] && [value==d.name] => permit();` + "\n};", 4, 28, "type, value and issuer"},
		{"unknown claim property", head + `[valuetype=="Integer"] => permit();` + "\n};", 4, 2, "expected type, value or issuer"},
		{"empty condition", head + `[] => permit();` + "\n};", 4, 2, "expected type, value or issuer"},
		{"keyword as a name", head + `type:[type=="a"] => permit();` + "\n};", 4, 1, "is a keyword"},
		{"name bound twice", head + `c:[type=="a"] && c:[type=="b"] => permit();` + "\n};", 4, 18, "already bound"},
		{"escape", head + `[type=="a\"b"] => permit();` + "\n};", 4, 10, "escapes"},
		{"unterminated string", head + `[type=="a] => permit();` + "\n};", 4, 8, "unterminated"},
		{"integer out of range", head + `[type=="a", value==99999999999999999999] => permit();` + "\n};", 4, 20, "out of range"},
		{"missing =>", head + `[type=="a"] permit();` + "\n};", 4, 13, `expected "&&" or "=>"`},
		{"trailing garbage", "version=1.0;\nauthorizationrules { => permit(); };\nx", 3, 1, "expected authorizationrules or issuancerules"},
		{"unexpected character", head + "=> permit(); @\n};", 4, 14, "unexpected character '@'"},
		{"issue(claim=) unbound", "version=1.0;\nauthorizationrules { => permit(); };\nissuancerules { => issue(claim=c); };", 3, 32, "claim= names a claim bound"},
		{"issue without type", "version=1.0;\nauthorizationrules { => permit(); };\nissuancerules { => issue(value=1); };", 3, 26, "takes claim=<name> or type="},
		{"issue value missing", "version=1.0;\nauthorizationrules { => permit(); };\nissuancerules { => issue(type=\"a\"); };", 3, 34, `expected ","`},
		{"issue empty type", "version=1.0;\nauthorizationrules { => permit(); };\nissuancerules { => issue(type=\"\", value=1); };", 3, 31, "non-empty string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseAttestationPolicy(tc.text)
			var pe *AttestationPolicyError
			if p != nil || !errors.As(err, &pe) {
				t.Fatalf("got %v, %v; want an *AttestationPolicyError", p, err)
			}
			if pe.Line != tc.line || pe.Column != tc.col || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("got %q, want line %d, column %d and a message with %q", err, tc.line, tc.col, tc.msg)
			}
		})
	}
}

// Text is canonical and parses back to itself; the documented forms
// (upper-case keywords, spaces, missing issuance section) all normalise.
func TestAttestationPolicyText(t *testing.T) {
	p, src := loadAttestationPolicy(t, "maa-sgx.policy")
	const want = `version=1.0;
authorizationrules
{
	[type=="x-ms-sgx-is-debuggable", value==false] && [type=="x-ms-sgx-product-id", value==1] && [type=="x-ms-sgx-svn", value>=0] && [type=="x-ms-sgx-mrsigner", value=="feb995eb86c349ac98e5afbbb5732ca7376ec9979002702ea17ad476e0853a04"] => permit();
};
issuancerules
{
	c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value);
};
`
	if got := p.Text(); got != want {
		t.Fatalf("Text():\n%s\nwant:\n%s", got, want)
	}
	if again := mustAttestationPolicy(t, p.Text()).Text(); again != want {
		t.Errorf("Text() does not parse back to itself:\n%s", again)
	}
	if src == want {
		t.Error("the testdata is already canonical; the test shows nothing")
	}
	for _, text := range []string{
		"Version= 1.0;\nAuthorizationRules{=>Permit();};",
		"version = 1.0 ; authorizationrules { => permit() ; } ; issuancerules { } ;",
	} {
		const canon = "version=1.0;\nauthorizationrules\n{\n\t=> permit();\n};\nissuancerules\n{\n};\n"
		if got := mustAttestationPolicy(t, text).Text(); got != canon {
			t.Errorf("%q: Text() = %q", text, got)
		}
	}
	other := mustAttestationPolicy(t, `version=1.0; authorizationrules { F1:[type=="OSName", issuer=="CustomClaim"] && [type=="OSName", issuer=="AttestationService", value==F1.value] => permit(); x:[type=="n", value<=-3] => deny(); }; issuancerules { F1:[type=="a"] => add(claim=F1); => issue(type="b", value=TRUE); };`)
	const otherWant = `version=1.0;
authorizationrules
{
	F1:[type=="OSName", issuer=="CustomClaim"] && [type=="OSName", issuer=="AttestationService", value==F1.value] => permit();
	x:[type=="n", value<=-3] => deny();
};
issuancerules
{
	F1:[type=="a"] => add(claim=F1);
	=> issue(type="b", value=true);
};
`
	if got := other.Text(); got != otherWant {
		t.Errorf("Text():\n%s\nwant:\n%s", got, otherWant)
	}
}

// x-ms-policy-hash = BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy))))),
// worked by hand for one policy and cross-checked step by step.
func TestAttestationPolicyHash(t *testing.T) {
	const text = "version=1.0;\nauthorizationrules\n{\n\t=> permit();\n};\nissuancerules\n{\n};\n"
	// Step 1: BASE64URL of the UTF-8 text, unpadded (the 55 bytes leave
	// one byte over: "Cg" for the final "\n", no "==").
	const step1 = "dmVyc2lvbj0xLjA7CmF1dGhvcml6YXRpb25ydWxlcwp7Cgk9PiBwZXJtaXQoKTsKfTsKaXNzdWFuY2VydWxlcwp7Cn07Cg"
	if got := base64.RawURLEncoding.EncodeToString([]byte(text)); got != step1 {
		t.Fatalf("step 1: %s", got)
	}
	// Step 2: SHA-256 of those 74 ASCII characters; step 3: BASE64URL of
	// the digest, unpadded (43 characters).
	sum := sha256.Sum256([]byte(step1))
	const want = "rK9heHCoIgaAF5mkL0LRI4zxgyp8V57p3qCLnvJ2g6k"
	if got := base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("step 3: %s", got)
	}
	if got := AttestationPolicyHash(text); got != want {
		t.Errorf("AttestationPolicyHash = %s, want %s", got, want)
	}
	// The hash is of the text as uploaded: the same policy written
	// differently hashes differently.
	if AttestationPolicyHash(strings.ReplaceAll(text, "\n", "\r\n")) == want || AttestationPolicyHash(mustAttestationPolicy(t, text).Text()) != want {
		t.Error("the hash is not of the exact text")
	}
}

func TestAttestationPolicyNil(t *testing.T) {
	var p *AttestationPolicy
	if ok, issued, err := p.Evaluate(map[string]any{}); ok || issued != nil || !errors.Is(err, ErrDenied) {
		t.Fatal(ok, issued, err)
	}
}
