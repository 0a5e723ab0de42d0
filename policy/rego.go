package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// A Rego policy is an optional third appraisal layer, after the manifest's
// reference values and the Azure release policy. It is one module of Rego
// v1 syntax in package RegoPackage that defines
//
//	allow                       a boolean; the policy permits only when it is true
//	deny contains reason if {…} optional: a set of strings, each a reason to refuse
//
// and sees the RegoInput document as `input`. Evaluation permits when allow
// is true and deny is empty; anything else — allow false or undefined, a
// deny reason, an error in a builtin, a timeout — is a refusal.
//
// Policies are pure functions of their input: every builtin OPA marks
// nondeterministic (http.send, net.lookup_ip_addr, opa.runtime, time.now_ns,
// rand.intn, uuid.rfc4122, io.jwt.decode_verify, io.jwt.encode_sign*,
// json.match_schema and json.verify_schema, which may fetch remote schema
// references), crypto.x509.parse_and_verify_certificates* (which check
// validity against the wall clock) and the whole net.* namespace are
// removed from the compiler's
// capabilities, no network host is allowed, and print statements are erased.
// The current time is input.now (RFC 3339), and the time builtins that need
// a clock see the same instant.

// RegoPackage is the package every Rego policy must declare.
const RegoPackage = "trustbound"

// MaxRegoModule bounds the size of a Rego policy's text in bytes.
const MaxRegoModule = 64 << 10

// DefaultRegoTimeout bounds one evaluation of a Rego policy unless the
// policy was given another budget (RegoPolicy.WithTimeout, NewRegoCache) or
// the caller's context expires sooner.
const DefaultRegoTimeout = 100 * time.Millisecond

// The query evaluated for every input. Collecting into comprehensions keeps
// the result defined when allow is undefined or deny absent, so that deny
// reasons are reported even when allow does not hold.
const regoQuery = "allow := [x | x := data." + RegoPackage + ".allow]; deny := [r | r := data." + RegoPackage + ".deny[_]]"

// RegoPolicy is a compiled Rego policy, ready to evaluate. It is immutable
// and safe for concurrent use.
type RegoPolicy struct {
	name    string
	hash    string
	query   rego.PreparedEvalQuery
	timeout time.Duration
}

// RegoInput is what a Rego policy sees as `input`:
//
//	input.claims     the verified claims, as attest.Claims encodes them in JSON
//	input.azure      the claims under their Azure Attestation names
//	input.workload   {"name", "model", "tee"} of the workload appraised
//	input.reference  the manifest's reference values for that workload
//	input.now        the time of the appraisal, RFC 3339 in UTC
type RegoInput struct {
	Claims   *attest.Claims
	Azure    map[string]any
	Workload *manifest.Workload
	// Now is the time of the appraisal. Required.
	Now time.Time
}

// regoDocument is RegoInput as the policy sees it.
type regoDocument struct {
	Claims    *attest.Claims     `json:"claims"`
	Azure     map[string]any     `json:"azure"`
	Workload  regoWorkload       `json:"workload"`
	Reference manifest.Reference `json:"reference"`
	Now       string             `json:"now"`
}

type regoWorkload struct {
	Name  string         `json:"name"`
	Model manifest.Model `json:"model"`
	TEE   attest.TEE     `json:"tee"`
}

// RegoProblem is one thing wrong with a policy's text, at a position in it
// (Line 0 when it concerns the whole module).
type RegoProblem struct {
	Line, Col int
	Msg       string
}

// RegoCompileError refuses a Rego policy that does not compile or does not
// have the shape trustbound requires; Problems say where and why.
type RegoCompileError struct {
	Policy   string
	Problems []RegoProblem
}

func (e *RegoCompileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rego policy %q is refused:", e.Policy)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d", p.Line)
			if p.Col > 0 {
				fmt.Fprintf(&b, ", column %d", p.Col)
			}
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// CompileRego parses, checks and compiles a Rego policy once; the result
// evaluates many inputs. name identifies the policy in errors and positions.
// Every refusal of the text is a *RegoCompileError.
func CompileRego(ctx context.Context, name string, module string) (*RegoPolicy, error) {
	if name == "" {
		return nil, errors.New("rego policy: a name is required")
	}
	refuse := func(line int, format string, args ...any) error {
		return &RegoCompileError{Policy: name, Problems: []RegoProblem{{Line: line, Msg: fmt.Sprintf(format, args...)}}}
	}
	if len(module) > MaxRegoModule {
		return nil, refuse(0, "the policy is %d bytes, more than the %d allowed", len(module), MaxRegoModule)
	}
	caps := regoCapabilities()
	mod, err := ast.ParseModuleWithOpts(name, module, ast.ParserOptions{RegoVersion: ast.RegoV1, Capabilities: caps})
	if err != nil {
		return nil, compileError(name, err)
	}
	if problems := checkRegoShape(mod); len(problems) > 0 {
		return nil, &RegoCompileError{Policy: name, Problems: problems}
	}

	compiler := ast.NewCompiler().
		WithCapabilities(caps).
		WithStrict(true).
		WithEnablePrintStatements(false).
		WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(map[string]*ast.Module{name: mod}); compiler.Failed() {
		return nil, compileError(name, compiler.Errors)
	}
	if problems := checkRegoTypes(compiler, mod); len(problems) > 0 {
		return nil, &RegoCompileError{Policy: name, Problems: problems}
	}

	query, err := rego.New(
		rego.Compiler(compiler),
		rego.Query(regoQuery),
		rego.Capabilities(caps),
		rego.Strict(true),
		rego.StrictBuiltinErrors(true),
		rego.EnablePrintStatements(false),
		rego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, compileError(name, err)
	}
	sum := sha256.Sum256([]byte(module))
	return &RegoPolicy{name: name, hash: hex.EncodeToString(sum[:]), query: query, timeout: DefaultRegoTimeout}, nil
}

// Name is the name the policy was compiled under.
func (p *RegoPolicy) Name() string { return p.name }

// Hash is the lower-case hex SHA-256 of the policy's text: the identity of
// one version of a policy, and its key in a RegoCache.
func (p *RegoPolicy) Hash() string { return p.hash }

// WithTimeout returns the same compiled policy with another evaluation
// budget (DefaultRegoTimeout when d is not positive). p is unchanged.
func (p *RegoPolicy) WithTimeout(d time.Duration) *RegoPolicy {
	if d <= 0 {
		d = DefaultRegoTimeout
	}
	q := *p
	q.timeout = d
	return &q
}

// Evaluate runs the policy over in. It returns nil only when allow is true
// and deny is empty; every other outcome is an error wrapping ErrDenied, with
// one *Violation per deny reason. Evaluation stops at the policy's time
// budget or ctx's deadline, whichever is sooner, and is then a refusal
// wrapping the context's error as well.
func (p *RegoPolicy) Evaluate(ctx context.Context, in RegoInput) error {
	doc, err := regoInputValue(in)
	if err != nil {
		return fmt.Errorf("%w: rego policy %q: %w", ErrDenied, p.name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(doc), rego.EvalTime(in.Now))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%w: rego policy %q was stopped before it finished (budget %v): %w", ErrDenied, p.name, p.timeout, ctxErr)
		}
		return fmt.Errorf("%w: rego policy %q failed: %w", ErrDenied, p.name, err)
	}
	if len(rs) != 1 {
		return fmt.Errorf("%w: rego policy %q returned %d results, want 1", ErrDenied, p.name, len(rs))
	}
	allow, _ := rs[0].Bindings["allow"].([]any)
	deny, _ := rs[0].Bindings["deny"].([]any)

	field := "rego:" + p.name
	var vs []error
	reasons := make([]string, 0, len(deny))
	for _, r := range deny {
		reasons = append(reasons, regoReason(r))
	}
	slices.Sort(reasons)
	for _, r := range slices.Compact(reasons) {
		vs = append(vs, &Violation{Field: field, Msg: r})
	}
	switch {
	case len(allow) == 0:
		if len(vs) == 0 {
			vs = append(vs, &Violation{Field: field, Msg: "allow is undefined (deny by default)"})
		}
	case len(allow) > 1:
		vs = append(vs, &Violation{Field: field, Msg: "allow has more than one value"})
	case allow[0] == true:
	case allow[0] == false:
		if len(vs) == 0 {
			vs = append(vs, &Violation{Field: field, Msg: "allow is false"})
		}
	default:
		vs = append(vs, &Violation{Field: field, Msg: fmt.Sprintf("allow is %s, not a boolean", regoReason(allow[0]))})
	}
	if len(vs) > 0 {
		return fmt.Errorf("%w by rego policy %q: %w", ErrDenied, p.name, errors.Join(vs...))
	}
	return nil
}

// regoInputValue encodes in as the policy's input document.
func regoInputValue(in RegoInput) (ast.Value, error) {
	switch {
	case in.Claims == nil:
		return nil, errors.New("no claims to evaluate")
	case in.Workload == nil:
		return nil, errors.New("no workload to evaluate for")
	case in.Now.IsZero():
		return nil, errors.New("the time of the appraisal is required")
	}
	doc := regoDocument{
		Claims:    in.Claims,
		Azure:     in.Azure,
		Workload:  regoWorkload{Name: in.Workload.Name, Model: in.Workload.Model, TEE: in.Workload.TEE},
		Reference: in.Workload.Reference,
		Now:       in.Now.UTC().Format(time.RFC3339Nano),
	}
	if doc.Azure == nil {
		doc.Azure = map[string]any{}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encoding the input: %w", err)
	}
	v, err := ast.ValueFromReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("encoding the input: %w", err)
	}
	return v, nil
}

// regoReason renders one deny reason: strings as they are, anything else
// as JSON.
func regoReason(r any) string {
	if s, ok := r.(string); ok {
		return s
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Sprint(r)
	}
	return string(b)
}

// checkRegoShape checks what the compiler does not: the package, the rules
// trustbound reads, and that no forbidden builtin is called (which the
// compiler would report only as an undefined function).
func checkRegoShape(mod *ast.Module) []RegoProblem {
	var problems []RegoProblem
	add := func(loc *ast.Location, format string, args ...any) {
		p := RegoProblem{Msg: fmt.Sprintf(format, args...)}
		if loc != nil {
			p.Line, p.Col = loc.Row, loc.Col
		}
		problems = append(problems, p)
	}
	want := ast.Ref{ast.DefaultRootDocument, ast.InternedTerm(RegoPackage)}
	if !mod.Package.Path.Equal(want) {
		add(mod.Package.Location, "the package is %s; a trustbound policy must be in package %s", strings.TrimPrefix(mod.Package.Path.String(), "data."), RegoPackage)
	}
	var hasAllow bool
	for _, rule := range mod.Rules {
		ref := rule.Head.Ref()
		switch name := ref[0].Value.String(); {
		case name != "allow" && name != "deny":
			continue
		case len(ref) > 1:
			add(rule.Location, "%s must be a rule of its own, not %s", name, ref)
		case len(rule.Head.Args) > 0:
			add(rule.Location, "%s must be a rule, not a function", name)
		case name == "allow" && rule.Head.RuleKind() != ast.SingleValue:
			add(rule.Location, "allow must be a boolean (allow if { … }), not a set")
		case name == "deny" && rule.Head.RuleKind() != ast.MultiValue:
			add(rule.Location, "deny must be a set of reasons (deny contains reason if { … })")
		case name == "allow":
			hasAllow = true
		}
	}
	if !hasAllow && !slices.ContainsFunc(problems, func(p RegoProblem) bool { return strings.HasPrefix(p.Msg, "allow") }) {
		add(nil, "the policy defines no allow rule; it must define allow (a boolean), and may define deny (a set of reasons)")
	}
	forbidden := regoForbidden()
	check := func(op ast.Ref, loc *ast.Location) {
		if name := op.String(); forbidden(name) {
			add(loc, "%s is not allowed in a trustbound policy: policies may not reach the network, the host or a clock, or behave nondeterministically (use input.now for the time)", name)
		}
	}
	ast.WalkExprs(mod, func(e *ast.Expr) bool {
		if e.IsCall() {
			check(e.Operator(), e.Location)
		}
		return false
	})
	ast.WalkTerms(mod, func(t *ast.Term) bool {
		if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
			if op, ok := call[0].Value.(ast.Ref); ok {
				check(op, t.Location)
			}
		}
		return false
	})
	return problems
}

// checkRegoTypes checks the types the compiler inferred for allow and deny.
func checkRegoTypes(c *ast.Compiler, mod *ast.Module) []RegoProblem {
	var problems []RegoProblem
	for _, name := range []string{"allow", "deny"} {
		i := slices.IndexFunc(mod.Rules, func(r *ast.Rule) bool {
			ref := r.Head.Ref()
			return len(ref) == 1 && ref[0].Value.String() == name
		})
		if i < 0 {
			continue
		}
		t := c.TypeEnv.GetByRef(mod.Package.Path.Append(ast.InternedTerm(name)))
		ok := t == nil
		if !ok && name == "allow" {
			ok = types.Contains(t, types.B)
		}
		if !ok && name == "deny" {
			s, isSet := t.(*types.Set)
			ok = !isSet || types.Contains(s.Of(), types.S)
		}
		if !ok {
			p := RegoProblem{Msg: fmt.Sprintf("%s is of type %s; allow must be a boolean and deny a set of strings", name, t)}
			if loc := mod.Rules[i].Location; loc != nil {
				p.Line, p.Col = loc.Row, loc.Col
			}
			problems = append(problems, p)
		}
	}
	return problems
}

// compileError turns OPA's errors into a *RegoCompileError.
func compileError(name string, err error) error {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		var one *ast.Error
		if !errors.As(err, &one) {
			return &RegoCompileError{Policy: name, Problems: []RegoProblem{{Msg: err.Error()}}}
		}
		errs = ast.Errors{one}
	}
	out := &RegoCompileError{Policy: name}
	for _, e := range errs {
		p := RegoProblem{Msg: e.Message}
		if e.Location != nil {
			p.Line, p.Col = e.Location.Row, e.Location.Col
		}
		out.Problems = append(out.Problems, p)
	}
	if len(out.Problems) == 0 {
		out.Problems = []RegoProblem{{Msg: err.Error()}}
	}
	return out
}

// regoForbidden reports whether a builtin may not be called by a policy.
func regoForbidden() func(string) bool {
	_, forbidden := regoBuiltins()
	return func(name string) bool {
		_, ok := forbidden[name]
		return ok || strings.HasPrefix(name, "net.")
	}
}

// regoCapabilities are OPA's capabilities without the forbidden builtins
// and with no network host allowed.
func regoCapabilities() *ast.Capabilities {
	caps, _ := regoBuiltins()
	return caps
}

var regoBuiltins = sync.OnceValues(func() (*ast.Capabilities, map[string]struct{}) {
	caps := ast.CapabilitiesForThisVersion()
	forbidden := map[string]struct{}{}
	kept := make([]*ast.Builtin, 0, len(caps.Builtins))
	for _, b := range caps.Builtins {
		if b.Nondeterministic || strings.HasPrefix(b.Name, "net.") || b.Name == "opa.runtime" || b.Name == "time.now_ns" ||
			strings.HasPrefix(b.Name, "crypto.x509.parse_and_verify_certificates") { // verify against the wall clock
			forbidden[b.Name] = struct{}{}
			continue
		}
		kept = append(kept, b)
	}
	caps.Builtins = kept
	caps.AllowNet = []string{}
	return caps, forbidden
})
