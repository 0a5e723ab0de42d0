package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

var regoNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func regoRepeat(b byte, n int) attest.Hex { return attest.Hex(strings.Repeat(string([]byte{b}), n)) }

// regoSNPInput is a realistic input: an SEV-SNP confidential VM's claims,
// its Azure claim names and the manifest's reference values.
func regoSNPInput() RegoInput {
	vmpl := uint32(0)
	c := &attest.Claims{
		TEE: attest.SEVSNP, Format: attest.FormatSNPReport, Model: string(manifest.ConfidentialVM),
		Measurement: regoRepeat(0xa1, 48), Signer: regoRepeat(0xb2, 48), SVN: 3,
		HostData: regoRepeat(0xc3, 32), ReportData: regoRepeat(0xd4, 64), VMPL: &vmpl,
		RevocationChecked: true,
		TCB: attest.TCB{Evaluated: true, Status: "UpToDate", Components: map[string]uint64{
			"bootloader": 4, "tee": 0, "snp": 22, "microcode": 213}},
		Platform: map[string]string{"policy": "0x30000", "chip_id": strings.Repeat("ef", 64), "vmpl": "0"},
	}
	w := &manifest.Workload{Name: "ledger", Model: manifest.ConfidentialVM, TEE: attest.SEVSNP, Reference: manifest.Reference{
		Measurements: []attest.Hex{regoRepeat(0x01, 48), regoRepeat(0xa1, 48)},
		HostData:     regoRepeat(0xc3, 32),
	}}
	az := map[string]any{
		"x-ms-attestation-type":           "sevsnpvm",
		"x-ms-compliance-status":          "azure-compliant-cvm",
		"x-ms-sevsnpvm-guestsvn":          3,
		"x-ms-sevsnpvm-is-debuggable":     false,
		"x-ms-sevsnpvm-launchmeasurement": c.Measurement.String(),
		"x-ms-sevsnpvm-hostdata":          c.HostData.String(),
		"x-ms-sevsnpvm-vmpl":              0,
	}
	return RegoInput{Claims: c, Azure: az, Workload: w, Now: regoNow}
}

func regoFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rego", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustCompileRego compiles a policy with a budget generous enough for a
// loaded machine under -race; TestRegoTimeout tests the default.
func mustCompileRego(t testing.TB, name, module string) *RegoPolicy {
	t.Helper()
	p, err := CompileRego(context.Background(), name, module)
	if err != nil {
		t.Fatal(err)
	}
	return p.WithTimeout(10 * time.Second)
}

// regoReasons returns the deny reasons of a refusal.
func regoReasons(t *testing.T, err error) []string {
	t.Helper()
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("error %v does not wrap ErrDenied", err)
	}
	var out []string
	for _, v := range violations(err) {
		out = append(out, v.Msg)
	}
	return out
}

func TestRegoAllowDeny(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, module string
		reasons      []string // nil: permitted
	}{
		{"allow", "package trustbound\nallow := true\n", nil},
		{"allow-if", "package trustbound\nallow if input.workload.name == \"ledger\"\n", nil},
		{"allow-false", "package trustbound\nallow := false\n", []string{"allow is false"}},
		{"allow-undefined", "package trustbound\nallow if input.workload.name == \"other\"\n", []string{"allow is undefined (deny by default)"}},
		{"deny-overrides-allow", "package trustbound\nallow := true\ndeny contains \"no\" if true\n", []string{"no"}},
		{"deny-empty", "package trustbound\nallow := true\ndeny contains \"no\" if false\n", nil},
		{"deny-reasons", `package trustbound
default allow := false
deny contains "first" if true
deny contains msg if {
	some name in ["b", "a"]
	msg := sprintf("second %s", [name])
}
`, []string{"first", "second a", "second b"}},
		{"builtin-error-refuses", "package trustbound\nallow if to_number(input.workload.name) > 0\n", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompileRego(t, tc.name, tc.module)
			err := p.Evaluate(ctx, regoSNPInput())
			if tc.reasons == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("permitted")
			}
			got := regoReasons(t, err)
			if len(tc.reasons) > 0 && strings.Join(got, "|") != strings.Join(tc.reasons, "|") {
				t.Errorf("reasons %q, want %q (%v)", got, tc.reasons, err)
			}
		})
	}
}

func TestRegoMeasurementAndDebug(t *testing.T) {
	p := mustCompileRego(t, "measurement_debug.rego", regoFile(t, "measurement_debug.rego"))
	ctx := context.Background()
	if err := p.Evaluate(ctx, regoSNPInput()); err != nil {
		t.Fatalf("matching claims refused: %v", err)
	}

	in := regoSNPInput()
	in.Claims.Debug = true
	got := regoReasons(t, p.Evaluate(ctx, in))
	if len(got) != 1 || !strings.Contains(got[0], "debuggable") {
		t.Errorf("debug: reasons %q", got)
	}

	in = regoSNPInput()
	in.Claims.Measurement = regoRepeat(0xee, 48)
	got = regoReasons(t, p.Evaluate(ctx, in))
	if len(got) != 1 || got[0] != "measurement "+strings.Repeat("ee", 48)+" is not one of the 2 accepted" {
		t.Errorf("measurement: reasons %q", got)
	}

	in.Claims.Debug = true
	if got = regoReasons(t, p.Evaluate(ctx, in)); len(got) != 2 {
		t.Errorf("both: reasons %q", got)
	}

	in = regoSNPInput()
	in.Workload.Reference.Measurements = nil
	if got = regoReasons(t, p.Evaluate(ctx, in)); len(got) != 1 {
		t.Errorf("no reference measurements: reasons %q", got)
	}
}

func TestRegoAzureClaimsAndNow(t *testing.T) {
	p := mustCompileRego(t, "azure_snp.rego", regoFile(t, "azure_snp.rego"))
	ctx := context.Background()
	if err := p.Evaluate(ctx, regoSNPInput()); err != nil {
		t.Fatalf("refused: %v", err)
	}
	for name, mutate := range map[string]func(*RegoInput){
		"debuggable": func(in *RegoInput) { in.Azure["x-ms-sevsnpvm-is-debuggable"] = true },
		"svn":        func(in *RegoInput) { in.Azure["x-ms-sevsnpvm-guestsvn"] = 1 },
		"type":       func(in *RegoInput) { in.Azure["x-ms-attestation-type"] = "sgx" },
		"late":       func(in *RegoInput) { in.Now = time.Date(2031, 1, 1, 0, 0, 1, 0, time.UTC) },
	} {
		in := regoSNPInput()
		mutate(&in)
		if err := p.Evaluate(ctx, in); !errors.Is(err, ErrDenied) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}

func TestRegoTCBStatus(t *testing.T) {
	p := mustCompileRego(t, "tcb_status.rego", regoFile(t, "tcb_status.rego"))
	ctx := context.Background()
	in := regoSNPInput()
	if err := p.Evaluate(ctx, in); err != nil {
		t.Fatalf("refused: %v", err)
	}
	in.Claims.TCB.Advisories = []string{"INTEL-SA-00615", "INTEL-SA-00657"}
	in.Workload.Reference.AcceptedAdvisories = []string{"INTEL-SA-00657"}
	if got := regoReasons(t, p.Evaluate(ctx, in)); len(got) != 1 || got[0] != "advisory INTEL-SA-00615 is open" {
		t.Errorf("reasons %q", got)
	}
}

func TestRegoInputRequired(t *testing.T) {
	p := mustCompileRego(t, "allow", "package trustbound\nallow := true\n")
	ctx := context.Background()
	for name, mutate := range map[string]func(*RegoInput){
		"no claims":   func(in *RegoInput) { in.Claims = nil },
		"no workload": func(in *RegoInput) { in.Workload = nil },
		"no time":     func(in *RegoInput) { in.Now = time.Time{} },
	} {
		in := regoSNPInput()
		mutate(&in)
		if err := p.Evaluate(ctx, in); !errors.Is(err, ErrDenied) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}

func TestRegoCompileRefused(t *testing.T) {
	for _, tc := range []struct {
		name, module string
		line         int
		want         string
	}{
		{"syntax", "package trustbound\n\nallow if {\n\tinput.x ==\n}\n", 5, "unexpected"},
		{"http.send", "package trustbound\n\nallow if {\n\tr := http.send({\"method\": \"get\", \"url\": \"https://example.com\"})\n\tr.status_code == 200\n}\n", 4, "http.send is not allowed"},
		{"net", "package trustbound\nallow if net.cidr_contains(\"10.0.0.0/8\", \"10.1.2.3\")\n", 2, "net.cidr_contains is not allowed"},
		{"time.now_ns", "package trustbound\nallow if time.now_ns() > 0\n", 2, "time.now_ns is not allowed"},
		{"opa.runtime", "package trustbound\nallow if opa.runtime().env\n", 2, "opa.runtime is not allowed"},
		{"x509 verify (wall clock)", "package trustbound\nallow if {\n\t[ok, _] := crypto.x509.parse_and_verify_certificates(input.pem)\n\tok\n}\n", 3, "crypto.x509.parse_and_verify_certificates is not allowed"},
		{"x509 verify with options", "package trustbound\nallow if {\n\t[ok, _] := crypto.x509.parse_and_verify_certificates_with_options(input.pem, {})\n\tok\n}\n", 3, "crypto.x509.parse_and_verify_certificates_with_options is not allowed"},
		{"json.match_schema", "package trustbound\nallow if {\n\t[ok, _] := json.match_schema(input, {\"$ref\": \"https://example.com/s.json\"})\n\tok\n}\n", 3, "json.match_schema is not allowed"},
		{"wrong package", "package release\nallow := true\n", 1, "must be in package trustbound"},
		{"missing allow", "package trustbound\ndeny contains \"x\" if true\n", 0, "defines no allow rule"},
		{"allow not boolean", "package trustbound\nallow := \"yes\"\n", 2, "allow is of type string"},
		{"allow a set", "package trustbound\nallow contains 1 if true\n", 2, "allow must be a boolean"},
		{"allow a function", "package trustbound\nallow(x) := x\n", 2, "not a function"},
		{"deny not a set", "package trustbound\nallow := true\ndeny := \"no\"\n", 3, "deny must be a set"},
		{"deny of numbers", "package trustbound\nallow := true\ndeny contains 1 if true\n", 3, "deny is of type set[number]"},
		{"strict unused var", "package trustbound\nallow if {\n\tx := 1\n\ttrue\n}\n", 3, "assigned var x unused"},
		{"undefined function", "package trustbound\nallow if nosuch(1)\n", 2, "undefined function"},
		{"too large", "package trustbound\nallow := true\n#" + strings.Repeat("x", MaxRegoModule), 0, "more than the"},
		{"empty", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileRego(context.Background(), tc.name+".rego", tc.module)
			var ce *RegoCompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *RegoCompileError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.line > 0 && (len(ce.Problems) == 0 || ce.Problems[0].Line != tc.line) {
				t.Errorf("problems %+v, want line %d first", ce.Problems, tc.line)
			}
			if ce.Policy != tc.name+".rego" {
				t.Errorf("policy %q", ce.Policy)
			}
		})
	}
	if _, err := CompileRego(context.Background(), "", "package trustbound\nallow := true\n"); err == nil {
		t.Error("a policy without a name compiled")
	}
}

// A policy that loops far beyond its budget is stopped and refused.
func TestRegoTimeout(t *testing.T) {
	const heavy = `package trustbound
allow if {
	some i in numbers.range(1, 100000)
	some j in numbers.range(1, 100000)
	i * j == -1
}
`
	p := mustCompileRego(t, "heavy", heavy).WithTimeout(DefaultRegoTimeout)
	start := time.Now()
	err := p.Evaluate(context.Background(), regoSNPInput())
	if !errors.Is(err, ErrDenied) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a refusal for the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopped after %v, budget %v", d, DefaultRegoTimeout)
	}

	// A shorter deadline of the caller wins over the budget; a longer
	// budget is honoured when the caller gives none.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := p.WithTimeout(time.Hour).Evaluate(ctx, regoSNPInput()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the caller's deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("stopped after %v, caller's deadline 5ms", d)
	}
}

func TestRegoCache(t *testing.T) {
	ctx := context.Background()
	c := NewRegoCache(2, 0)
	a := "package trustbound\nallow := true\n"
	p1, err := c.Get(ctx, "a", a)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Get(ctx, "a", a); again != p1 {
		t.Error("the same name and text compiled twice")
	}
	// The same text under another name is another policy, which names
	// itself in its deny reasons.
	p2, err := c.Get(ctx, "a-again", a)
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 || p2.Name() != "a-again" || p2.Hash() != p1.Hash() {
		t.Errorf("the same text under another name: %q, same policy %v", p2.Name(), p1 == p2)
	}
	if sum := sha256.Sum256([]byte(a)); p1.Name() != "a" || p1.Hash() != hex.EncodeToString(sum[:]) {
		t.Errorf("name %q hash %q", p1.Name(), p1.Hash())
	}
	denied := "package trustbound\nallow := true\ndeny contains \"no\"\n"
	for _, name := range []string{"first", "second"} {
		p, err := c.Get(ctx, name, denied)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Evaluate(ctx, RegoInput{Claims: &attest.Claims{TEE: attest.SEVSNP}, Now: time.Now()}); err == nil || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("deny reason of %s: %v", name, err)
		}
	}
	c = NewRegoCache(2, 0)
	if p1, err = c.Get(ctx, "a", a); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "bad", "package trustbound\n"); err == nil || c.Len() != 1 {
		t.Errorf("bad policy: %v, cache holds %d", err, c.Len())
	}
	b := "package trustbound\nallow := false\n"
	if _, err := c.Get(ctx, "b", b); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "a", a); err != nil { // a is now the most recent
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "c", "package trustbound\nallow if input.claims.debug == false\n"); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Errorf("cache holds %d, bound 2", c.Len())
	}
	if p3, _ := c.Get(ctx, "a", a); p3 != p1 {
		t.Error("the most recently used policy was evicted")
	}

	// Concurrent first requests for one text all get one policy.
	c = NewRegoCache(0, 0)
	var wg sync.WaitGroup
	got := make([]*RegoPolicy, 8)
	for i := range got {
		wg.Go(func() {
			p, err := c.Get(ctx, "a", a)
			if err != nil {
				t.Error(err)
			}
			got[i] = p
		})
	}
	wg.Wait()
	for _, p := range got[1:] {
		if p != got[0] {
			t.Fatal("concurrent gets returned different policies")
		}
	}
}

func TestRegoConcurrentEvaluate(t *testing.T) {
	p := mustCompileRego(t, "measurement_debug.rego", regoFile(t, "measurement_debug.rego"))
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				in := regoSNPInput()
				debug := (g+i)%3 == 0
				in.Claims.Debug = debug
				err := p.Evaluate(context.Background(), in)
				if debug != (err != nil) {
					t.Errorf("goroutine %d, run %d: debug %v, error %v", g, i, debug, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzCompileRego(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "rego", "*.rego"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{
		"", "package trustbound", "package trustbound\nallow := true\n",
		"package trustbound\nallow if http.send({})\n",
		"package trustbound\ndeny contains x if x := input.claims.tee\nallow := true\n",
		"package trustbound\nallow if { some x in input.azure; x }\n",
		"package trustbound\nallow.x := true\n",
		"package trustbound\nallow if {\n",
	} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, module string) {
		if len(module) > 4096 {
			t.Skip()
		}
		p, err := CompileRego(ctx, "fuzz.rego", module)
		if err != nil {
			var ce *RegoCompileError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("refusal %v (%T) is not a *RegoCompileError with problems", err, err)
			}
			return
		}
		if len(p.Hash()) != 64 {
			t.Fatalf("hash %q", p.Hash())
		}
		err = p.WithTimeout(20*time.Millisecond).Evaluate(ctx, regoSNPInput())
		if err != nil && !errors.Is(err, ErrDenied) {
			t.Fatalf("evaluation error %v does not wrap ErrDenied", err)
		}
	})
}

func BenchmarkRegoEvaluate(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"measurement_debug.rego", "azure_snp.rego", "tcb_status.rego"} {
		b.Run(strings.TrimSuffix(name, ".rego"), func(b *testing.B) {
			p := mustCompileRego(b, name, regoFile(b, name))
			in := regoSNPInput()
			if err := p.Evaluate(ctx, in); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Evaluate(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompileRego is the cost a RegoCache saves on every evaluation
// after the first.
func BenchmarkCompileRego(b *testing.B) {
	module := regoFile(b, "measurement_debug.rego")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileRego(ctx, "measurement_debug.rego", module); err != nil {
			b.Fatal(err)
		}
	}
}
