package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const testIssuer = "https://issuer.example"

// kvPolicy wraps conditions in a release policy with one authority.
func kvPolicy(t testing.TB, conds ...string) *ReleasePolicy {
	t.Helper()
	src := fmt.Sprintf(`{"version":"1.0.0","anyOf":[{"authority":%q,"allOf":[%s]}]}`, testIssuer, strings.Join(conds, ","))
	p, err := ParseReleasePolicy([]byte(src))
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return p
}

// kvClaims has one claim of each kind a token carries, with the Go types
// token.AzureClaims and JSON decoding produce.
func kvClaims() map[string]any {
	return map[string]any{
		"s":    "abc",
		"b":    false,
		"t":    true,
		"n":    uint32(5),
		"u16":  uint16(1),
		"f":    2.5,
		"neg":  int64(-3),
		"big":  uint64(1<<63 + 1),
		"jn":   json.Number("7"),
		"null": nil,
		"arr":  []any{"abc"},
		"obj": map[string]any{
			"x-ms-attestation-type": "sevsnpvm",
			"inner":                 map[string]any{"k": true},
		},
	}
}

func TestReleasePolicyOperators(t *testing.T) {
	for _, tc := range []struct {
		cond string
		want bool
	}{
		// equals: strings exactly, booleans and numbers by value.
		{`{"claim":"s","equals":"abc"}`, true},
		{`{"claim":"s","equals":"ABC"}`, false},
		{`{"claim":"s","equals":"ab"}`, false},
		{`{"claim":"s","equals":""}`, false},
		{`{"claim":"b","equals":false}`, true},
		{`{"claim":"b","equals":true}`, false},
		{`{"claim":"t","equals":true}`, true},
		{`{"claim":"n","equals":5}`, true},
		{`{"claim":"n","equals":5.0}`, true},
		{`{"claim":"n","equals":6}`, false},
		{`{"claim":"u16","equals":1}`, true},
		{`{"claim":"f","equals":2.5}`, true},
		{`{"claim":"f","equals":2}`, false},
		{`{"claim":"neg","equals":-3}`, true},
		{`{"claim":"jn","equals":7}`, true},
		{`{"claim":"big","equals":9223372036854775809}`, true},
		{`{"claim":"big","equals":9223372036854775808}`, false}, // exact, not float64
		// A string value matches a boolean or number claim by its JSON
		// text (how Microsoft's tooling writes "false" and "0").
		{`{"claim":"b","equals":"false"}`, true},
		{`{"claim":"b","equals":"False"}`, false},
		{`{"claim":"t","equals":"false"}`, false},
		{`{"claim":"n","equals":"5"}`, true},
		{`{"claim":"n","equals":"5.0"}`, false},
		// Other type mismatches never compare.
		{`{"claim":"s","equals":5}`, false},
		{`{"claim":"b","equals":0}`, false},
		{`{"claim":"n","equals":true}`, false},
		{`{"claim":"obj","equals":"sevsnpvm"}`, false},
		{`{"claim":"arr","equals":"abc"}`, false},
		// notEquals: only between comparable values.
		{`{"claim":"s","notEquals":"abd"}`, true},
		{`{"claim":"s","notEquals":"abc"}`, false},
		{`{"claim":"b","notEquals":true}`, true},
		{`{"claim":"b","notEquals":"false"}`, false},
		{`{"claim":"n","notEquals":4}`, true},
		{`{"claim":"n","notEquals":5}`, false},
		{`{"claim":"s","notEquals":5}`, false},
		{`{"claim":"b","notEquals":1}`, false},
		{`{"claim":"obj","notEquals":"x"}`, false},
		// Ordering: numbers only.
		{`{"claim":"n","less":6}`, true},
		{`{"claim":"n","less":5}`, false},
		{`{"claim":"n","lessOrEquals":5}`, true},
		{`{"claim":"n","lessOrEquals":4}`, false},
		{`{"claim":"n","greater":4}`, true},
		{`{"claim":"n","greater":5}`, false},
		{`{"claim":"n","greaterOrEquals":5}`, true},
		{`{"claim":"n","greaterOrEquals":6}`, false},
		{`{"claim":"n","greater":4.5}`, true},
		{`{"claim":"neg","less":0}`, true},
		{`{"claim":"neg","greater":-4}`, true},
		{`{"claim":"neg","greater":-3}`, false},
		{`{"claim":"f","greater":2}`, true},
		{`{"claim":"f","greaterOrEquals":3}`, false},
		{`{"claim":"jn","lessOrEquals":7}`, true},
		{`{"claim":"big","greater":9223372036854775807}`, true},
		{`{"claim":"big","less":18446744073709551615}`, true},
		{`{"claim":"s","less":1}`, false},
		{`{"claim":"b","greaterOrEquals":0}`, false},
		{`{"claim":"obj","greater":0}`, false},
		// exists.
		{`{"claim":"s","exists":true}`, true},
		{`{"claim":"s","exists":false}`, false},
		{`{"claim":"b","exists":true}`, true}, // a false claim is present
		{`{"claim":"missing","exists":true}`, false},
		{`{"claim":"missing","exists":false}`, true},
		{`{"claim":"null","exists":true}`, false}, // JSON null is absent
		{`{"claim":"null","exists":false}`, true},
		{`{"claim":"obj.inner.k","exists":true}`, true},
		{`{"claim":"obj.inner.nope","exists":false}`, true},
		// Dotted paths walk nested objects, nothing else.
		{`{"claim":"obj.x-ms-attestation-type","equals":"sevsnpvm"}`, true},
		{`{"claim":"obj.inner.k","equals":true}`, true},
		{`{"claim":"obj.inner","equals":true}`, false},
		{`{"claim":"obj.missing","equals":"x"}`, false},
		{`{"claim":"s.length","exists":true}`, false},
		{`{"claim":"arr.0","equals":"abc"}`, false},
		{`{"claim":"x-ms-attestation-type","equals":"sevsnpvm"}`, false}, // only nested here
		// A missing claim fails every operator but exists:false.
		{`{"claim":"missing","equals":"x"}`, false},
		{`{"claim":"missing","notEquals":"x"}`, false},
		{`{"claim":"missing","less":1}`, false},
		{`{"claim":"missing","lessOrEquals":1}`, false},
		{`{"claim":"missing","greater":1}`, false},
		{`{"claim":"missing","greaterOrEquals":1}`, false},
		{`{"claim":"null","notEquals":"x"}`, false},
	} {
		t.Run(tc.cond, func(t *testing.T) {
			err := kvPolicy(t, tc.cond).Evaluate(testIssuer, kvClaims())
			if tc.want {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrDenied) {
				t.Fatalf("got %v, want a denial", err)
			}
			vs := violations(err)
			if len(vs) != 1 || vs[0].Field != "$.anyOf[0].allOf[0]" {
				t.Fatalf("violations %v", err)
			}
			t.Log(vs[0].Msg)
		})
	}
}

func TestReleasePolicyGroups(t *testing.T) {
	yes, no := `{"claim":"s","equals":"abc"}`, `{"claim":"s","equals":"x"}`
	for _, tc := range []struct {
		name   string
		policy string
		want   bool
		fields []string // the violations of a denial
	}{
		{"allOf all", `{"version":"1.0.0","anyOf":[{"authority":"` + testIssuer + `","allOf":[` + yes + `,` + yes + `]}]}`, true, nil},
		{"allOf one fails", `{"version":"1.0.0","anyOf":[{"authority":"` + testIssuer + `","allOf":[` + yes + `,` + no + `]}]}`, false, []string{"$.anyOf[0].allOf[1]"}},
		{"allOf both fail", `{"version":"1.0.0","anyOf":[{"authority":"` + testIssuer + `","allOf":[` + no + `,` + no + `]}]}`, false, []string{"$.anyOf[0].allOf[0]", "$.anyOf[0].allOf[1]"}},
		{"anyOf one", `{"version":"1.0.0","anyOf":[{"authority":"` + testIssuer + `","anyOf":[` + no + `,` + yes + `]}]}`, true, nil},
		{"anyOf none", `{"version":"1.0.0","anyOf":[{"authority":"` + testIssuer + `","anyOf":[` + no + `,` + no + `]}]}`, false, []string{"$.anyOf[0].anyOf[0]", "$.anyOf[0].anyOf[1]"}},
		{"nested anyOf in allOf", `{"version":"1.0.0","anyOf":[{"authority":"` + testIssuer + `","allOf":[` + yes + `,{"anyOf":[` + no + `,{"allOf":[` + yes + `,` + yes + `]}]}]}]}`, true, nil},
		{"nested fails deep", `{"version":"1.0.0","anyOf":[{"authority":"` + testIssuer + `","allOf":[` + yes + `,{"anyOf":[` + no + `,{"allOf":[` + yes + `,` + no + `]}]}]}]}`, false,
			[]string{"$.anyOf[0].allOf[1].anyOf[0]", "$.anyOf[0].allOf[1].anyOf[1].allOf[1]"}},
		{"second authority", `{"version":"1.0.0","anyOf":[{"authority":"https://other.example","allOf":[` + yes + `]},{"authority":"` + testIssuer + `","allOf":[` + yes + `]}]}`, true, nil},
		{"right authority, wrong claims", `{"version":"1.0.0","anyOf":[{"authority":"https://other.example","allOf":[` + yes + `]},{"authority":"` + testIssuer + `","allOf":[` + no + `]}]}`, false,
			[]string{"$.anyOf[0].authority", "$.anyOf[1].allOf[0]"}},
		{"top-level allOf, one authority", `{"version":"1.0.0","allOf":[{"authority":"` + testIssuer + `","allOf":[` + yes + `]}]}`, true, nil},
		{"top-level allOf, two authorities", `{"version":"1.0.0","allOf":[{"authority":"` + testIssuer + `","allOf":[` + yes + `]},{"authority":"https://other.example","allOf":[` + yes + `]}]}`, false,
			[]string{"$.allOf[1].authority"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseReleasePolicy([]byte(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			err = p.Evaluate(testIssuer, kvClaims())
			if tc.want != (err == nil) {
				t.Fatalf("permitted %v, want %v (%v)", err == nil, tc.want, err)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrDenied) {
				t.Fatalf("%v does not wrap ErrDenied", err)
			}
			var got []string
			for _, v := range violations(err) {
				got = append(got, v.Field)
			}
			if strings.Join(got, " ") != strings.Join(tc.fields, " ") {
				t.Errorf("violations %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestReleasePolicyAuthority(t *testing.T) {
	for _, tc := range []struct {
		authority, issuer string
		want              bool
	}{
		{"https://sharedeus.eus.attest.azure.net/", "https://sharedeus.eus.attest.azure.net", true},
		{"https://sharedeus.eus.attest.azure.net", "https://sharedeus.eus.attest.azure.net/", true},
		{"sharedeus.eus.attest.azure.net", "https://sharedeus.eus.attest.azure.net", true},
		{"HTTPS://SharedEUS.eus.attest.azure.net", "https://sharedeus.eus.attest.azure.net", true},
		{"https://sharedeus.eus.attest.azure.net:443/", "https://sharedeus.eus.attest.azure.net", true},
		{"https://tb.example/tenant-a", "https://tb.example/tenant-a/", true},
		{"https://sharedeus.eus.attest.azure.net", "https://sharedwus.wus.attest.azure.net", false},
		{"https://sharedeus.eus.attest.azure.net", "http://sharedeus.eus.attest.azure.net", false},
		{"sharedeus.eus.attest.azure.net", "http://sharedeus.eus.attest.azure.net", false},
		{"https://sharedeus.eus.attest.azure.net", "https://sharedeus.eus.attest.azure.net:8443", false},
		{"https://tb.example/tenant-a", "https://tb.example/Tenant-A", false},
		{"https://tb.example/tenant-a", "https://tb.example", false},
		{"https://sharedeus.eus.attest.azure.net", "https://evil.example/sharedeus.eus.attest.azure.net", false},
		{"https://sharedeus.eus.attest.azure.net", "https://sharedeus.eus.attest.azure.net.evil.example", false},
		{"https://sharedeus.eus.attest.azure.net", "", false},
		{"https://sharedeus.eus.attest.azure.net", "https://sharedeus.eus.attest.azure.net?x", false},
	} {
		t.Run(tc.authority+" vs "+tc.issuer, func(t *testing.T) {
			p, err := ParseReleasePolicy(fmt.Appendf(nil, `{"version":"1.0.0","anyOf":[{"authority":%q,"allOf":[{"claim":"s","equals":"abc"}]}]}`, tc.authority))
			if err != nil {
				t.Fatal(err)
			}
			err = p.Evaluate(tc.issuer, kvClaims())
			if tc.want != (err == nil) {
				t.Fatalf("permitted %v, want %v (%v)", err == nil, tc.want, err)
			}
			if err != nil {
				vs := violations(err)
				if len(vs) != 1 || vs[0].Field != "$.anyOf[0].authority" {
					t.Errorf("violations %v", err)
				}
			}
		})
	}
}

func TestReleasePolicyMalformed(t *testing.T) {
	const auth = `"authority":"https://issuer.example"`
	wrap := func(cond string) string {
		return `{"version":"1.0.0","anyOf":[{` + auth + `,"allOf":[` + cond + `]}]}`
	}
	deep := `{"claim":"s","equals":"abc"}`
	for range 40 {
		deep = `{"anyOf":[` + deep + `]}`
	}
	for _, tc := range []struct {
		name, src, path, msg string
	}{
		{"unknown operator", wrap(`{"claim":"s","matches":"a.*"}`), "$.anyOf[0].allOf[0].matches", "unknown member"},
		{"operator in the wrong case", wrap(`{"claim":"s","Equals":"abc"}`), "$.anyOf[0].allOf[0].Equals", `spelled "equals"`},
		{"array value", wrap(`{"claim":"s","equals":["abc","def"]}`), "$.anyOf[0].allOf[0].equals", "an array is not a value"},
		{"object value", wrap(`{"claim":"s","equals":{"a":1}}`), "$.anyOf[0].allOf[0].equals", "an object is not a value"},
		{"null value", wrap(`{"claim":"s","equals":null}`), "$.anyOf[0].allOf[0].equals", "null is not a value"},
		{"two operators", wrap(`{"claim":"n","greater":1,"less":9}`), "$.anyOf[0].allOf[0].less", "two operators (greater and less)"},
		{"operator twice", wrap(`{"claim":"s","equals":"a","equals":"b"}`), "$.anyOf[0].allOf[0].equals", "appears twice"},
		{"no operator", wrap(`{"claim":"s"}`), "$.anyOf[0].allOf[0]", "no operator"},
		{"no claim", wrap(`{"equals":"abc"}`), "$.anyOf[0].allOf[0]", `"claim" is missing`},
		{"empty condition", wrap(`{}`), "$.anyOf[0].allOf[0]", `"claim" is missing`},
		{"claim not a string", wrap(`{"claim":5,"equals":5}`), "$.anyOf[0].allOf[0].claim", "is a string"},
		{"empty path segment", wrap(`{"claim":"a..b","equals":1}`), "$.anyOf[0].allOf[0].claim", "empty name segment"},
		{"trailing dot", wrap(`{"claim":"a.","equals":1}`), "$.anyOf[0].allOf[0].claim", "empty name segment"},
		{"unknown member in a condition", wrap(`{"claim":"s","equals":"abc","comment":"x"}`), "$.anyOf[0].allOf[0].comment", "unknown member"},
		{"exists not boolean", wrap(`{"claim":"s","exists":"yes"}`), "$.anyOf[0].allOf[0].exists", "true or false"},
		{"less on a string", wrap(`{"claim":"n","less":"5"}`), "$.anyOf[0].allOf[0].less", "takes a number"},
		{"number out of range", wrap(`{"claim":"n","less":1e999}`), "$.anyOf[0].allOf[0].less", "out of range"},
		{"anyOf with a claim", wrap(`{"claim":"s","anyOf":[{"claim":"s","equals":"abc"}]}`), "$.anyOf[0].allOf[0].anyOf", "a condition of its own"},
		{"empty nested anyOf", wrap(`{"anyOf":[]}`), "$.anyOf[0].allOf[0].anyOf", "empty"},
		{"nested anyOf not an array", wrap(`{"anyOf":{"claim":"s","equals":"abc"}}`), "$.anyOf[0].allOf[0].anyOf", "JSON array"},
		{"condition not an object", wrap(`"s == abc"`), "$.anyOf[0].allOf[0]", "JSON object"},
		{"too deep", wrap(deep), "$.anyOf[0].allOf[0].anyOf[0].anyOf[0]…", "nest deeper than 32 levels"},
		{"empty allOf", `{"version":"1.0.0","anyOf":[{` + auth + `,"allOf":[]}]}`, "$.anyOf[0].allOf", "empty"},
		{"allOf and anyOf on an authority", `{"version":"1.0.0","anyOf":[{` + auth + `,"allOf":[` + deep[:0] + `{"claim":"s","exists":true}],"anyOf":[{"claim":"s","exists":true}]}]}`, "$.anyOf[0].anyOf", "not both"},
		{"no conditions", `{"version":"1.0.0","anyOf":[{` + auth + `}]}`, "$.anyOf[0]", "no \"allOf\" or \"anyOf\""},
		{"no authority", `{"version":"1.0.0","anyOf":[{"allOf":[{"claim":"s","exists":true}]}]}`, "$.anyOf[0]", `"authority" is missing`},
		{"authority not a string", `{"version":"1.0.0","anyOf":[{"authority":["a"],"allOf":[{"claim":"s","exists":true}]}]}`, "$.anyOf[0].authority", "is a string"},
		{"authority with a query", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example/?x=1","allOf":[{"claim":"s","exists":true}]}]}`, "$.anyOf[0].authority", "not an issuer URL"},
		{"authority of another scheme", `{"version":"1.0.0","anyOf":[{"authority":"ftp://a.example","allOf":[{"claim":"s","exists":true}]}]}`, "$.anyOf[0].authority", "want https"},
		{"empty authority", `{"version":"1.0.0","anyOf":[{"authority":"","allOf":[{"claim":"s","exists":true}]}]}`, "$.anyOf[0].authority", "empty"},
		{"unknown member on an authority", `{"version":"1.0.0","anyOf":[{` + auth + `,"name":"eus","allOf":[{"claim":"s","exists":true}]}]}`, "$.anyOf[0].name", "unknown member"},
		{"empty anyOf", `{"version":"1.0.0","anyOf":[]}`, "$.anyOf", "empty"},
		{"anyOf not an array", `{"version":"1.0.0","anyOf":{}}`, "$.anyOf", "JSON array"},
		{"no authorities", `{"version":"1.0.0"}`, "$", `"anyOf" is missing`},
		{"anyOf and allOf", `{"version":"1.0.0","anyOf":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}],"allOf":[]}`, "$.allOf", "both anyOf and allOf"},
		{"wrong version", `{"version":"1.0","anyOf":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}]}`, "$.version", `version "1.0" is not supported`},
		{"future version", `{"version":"2.0.0","anyOf":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}]}`, "$.version", "not supported"},
		{"legacy version", `{"version":"0.2","anyOf":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}]}`, "$.version", "not supported"},
		{"numeric version", `{"version":1,"anyOf":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}]}`, "$.version", "is a string"},
		{"no version", `{"anyOf":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}]}`, "$", `"version" is missing`},
		{"unknown top-level member", `{"version":"1.0.0","description":"x","anyOf":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}]}`, "$.description", "unknown member"},
		{"lower-case anyof", `{"version":"1.0.0","anyof":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}]}`, "$.anyof", `spelled "anyOf"`},
		{"top level is an array", `[]`, "$", "JSON object"},
		{"trailing data", `{"version":"1.0.0","anyOf":[{` + auth + `,"allOf":[{"claim":"s","exists":true}]}]} {}`, "$", "trailing data"},
		{"not JSON", `{"version":"1.0.0",`, "$", "not valid JSON"},
		{"empty input", ``, "$", "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseReleasePolicy([]byte(tc.src))
			var pe *ReleasePolicyError
			if p != nil || !errors.As(err, &pe) {
				t.Fatalf("got %v, %v; want a *ReleasePolicyError", p, err)
			}
			path, prefix := strings.CutSuffix(tc.path, "…")
			if (pe.Path != path && !(prefix && strings.HasPrefix(pe.Path, path))) || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("got %q, want path %q and a message with %q", err, tc.path, tc.msg)
			}
		})
	}
}

func TestClaimNumCompare(t *testing.T) {
	n := func(v any) claimNum {
		t.Helper()
		c, ok := claimNumOf(v)
		if !ok {
			t.Fatalf("%T %v is not a number", v, v)
		}
		return c
	}
	for _, tc := range []struct {
		a, b any
		want int
	}{
		{int64(-9223372036854775808), int64(-9223372036854775807), -1},
		{int64(-1), uint64(0), -1},
		{uint64(18446744073709551615), int64(9223372036854775807), 1},
		{uint64(18446744073709551615), json.Number("18446744073709551615"), 0},
		{uint64(18446744073709551615), json.Number("18446744073709551614"), 1},
		{-0.0, 0, 0},
		{2.5, uint8(2), 1},
		{-2.5, int8(-2), -1},
		{float32(1.5), 1.5, 0},
		{3.0, uint16(3), 0},
		{json.Number("1e2"), 100, 0},
		{1e300, uint64(18446744073709551615), 1},
	} {
		if got := n(tc.a).cmp(n(tc.b)); got != tc.want {
			t.Errorf("cmp(%v, %v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := n(tc.b).cmp(n(tc.a)); got != -tc.want {
			t.Errorf("cmp(%v, %v) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
	for _, v := range []any{"1", true, nil, []any{1}} {
		if _, ok := claimNumOf(v); ok {
			t.Errorf("%#v read as a number", v)
		}
	}
}

// A nil policy releases nothing.
func TestReleasePolicyNil(t *testing.T) {
	var p *ReleasePolicy
	if err := p.Evaluate(testIssuer, kvClaims()); !errors.Is(err, ErrDenied) {
		t.Fatal(err)
	}
}
