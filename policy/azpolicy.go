package policy

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is the Azure Attestation policy text language, version 1.0,
// for the subset that covers authorization over claims (issue 5, point 3).
// Sources: "How to author and sign an attestation policy", "Claim and
// claim rules", "Attestation policy version 1.0" and "Examples of an
// attestation policy" (learn.microsoft.com/azure/attestation/…).
//
//	policy    = "version" "=" "1.0" ";" authz [ issuance ]
//	authz     = "authorizationrules" "{" { rule } "}" ";"
//	issuance  = "issuancerules" "{" { rule } "}" ";"
//	rule      = [ cond { "&&" cond } ] "=>" action ";"
//	cond      = [ ident ":" ] "[" prop { "," prop } "]"
//	prop      = ("type" | "value" | "issuer") op operand
//	op        = "==" | "!=" | "<" | "<=" | ">" | ">="
//	operand   = string | integer | "true" | "false" | ident "." ("type" | "value" | "issuer")
//	action    = "permit()" | "deny()"                  (authorization rules)
//	          | "issue(" args ")"                      (issuance rules)
//	          | "add(" args ")"                        (both)
//	args      = "claim" "=" ident | "type" "=" string "," "value" "=" operand
//
// What Azure documents and this follows: incoming claims carry a type, a
// value (String, Integer or Boolean) and an issuer ("AttestationService"
// for the facts from evidence, "AttestationPolicy" for claims the policy
// adds); a condition holds when at least one claim satisfies all of its
// property tests; "&&" joins conditions and a rule fires when all hold (a
// rule without conditions always fires); == and != apply to every value
// type, <, <=, >, >= to integers only; an identifier binds the claim a
// condition matched, for later conditions and the action (value==F1.value,
// issue(claim=c), value=c.value); rules apply in the order written;
// authorization rules cannot issue claims and issuance rules cannot fail
// attestation; permit() lets the issuance rules run, deny() stops them.
//
// Where Azure documents nothing, this decides, failing closed:
//   - Authorization is first-match in document order, as Azure states
//     ("rules are applied in order"): the first permit() or deny() rule
//     whose conditions hold decides, add() rules add a claim and go on,
//     and when no rule holds the attestation is denied. Azure's own signed
//     SGX policy sample
//     "c:[type==\"$is-debuggable\"] && [value==true] => deny(); => permit();"
//     therefore denies debuggable enclaves and permits the rest, and
//     "[cond] => permit(); => deny();" permits exactly what cond holds for.
//   - A value test of a claim of another type (a string against an
//     integer, say) fails, for == and != alike.
//   - A rule fires at most once, with the first matching claims in order
//     (incoming claims sorted by type, then claims the policy added).
//   - Issuing a type twice makes the outgoing claim an array of values.
//   - Keywords are read in any case (Azure's examples write both
//     "Version= 1.0;" and "version=1.0;"); names bound to claims are
//     case-sensitive.
//   - Not in the subset and refused at parse with line and column:
//     versions 1.1 and 1.2 (configurationrules), issueproperty() (it sets
//     token properties), other functions, "||", valueType=, comments of
//     any form, string escapes, decimal numbers, typographic quotes.

// The issuers of claims in an attestation policy evaluation.
const (
	// AttestationServiceIssuer is the issuer of the incoming claims: what
	// verifying the evidence established.
	AttestationServiceIssuer = "AttestationService"
	// AttestationPolicyIssuer is the issuer of claims the policy itself
	// adds or issues.
	AttestationPolicyIssuer = "AttestationPolicy"
)

// maaBudget bounds the claim tests of one evaluation, so that a policy
// with many cross-referencing conditions cannot make evaluation explode.
const maaBudget = 1 << 20

// AttestationPolicy is a parsed Azure Attestation policy (text format,
// version 1.0). It is immutable and safe for concurrent use.
type AttestationPolicy struct {
	authz    []maaRule
	issuance []maaRule
	maxConds int
}

// AttestationPolicyError is a policy refused at parse, with the 1-based
// line and column (in characters) where the problem starts.
type AttestationPolicyError struct {
	Line, Column int
	Msg          string
}

func (e *AttestationPolicyError) Error() string {
	return fmt.Sprintf("attestation policy: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

type maaProp uint8

const (
	maaType maaProp = iota
	maaValue
	maaIssuer
)

var maaPropNames = [...]string{maaType: "type", maaValue: "value", maaIssuer: "issuer"}

type maaVerb uint8

const (
	maaPermit maaVerb = iota
	maaDeny
	maaAdd
	maaIssue
)

var maaVerbNames = [...]string{maaPermit: "permit", maaDeny: "deny", maaAdd: "add", maaIssue: "issue"}

// maaOperand is a literal (string, bool or int64) or a property of the
// claim bound by an earlier condition (ref >= 0).
type maaOperand struct {
	lit     any
	ref     int
	refProp maaProp
	refName string
}

type maaTest struct {
	prop maaProp
	op   string // == != < <= > >=
	rhs  maaOperand
}

type maaCond struct {
	ident      string
	tests      []maaTest
	referenced bool // a later condition refers to the claim this one binds
}

type maaAction struct {
	verb     maaVerb
	claimRef int // issue(claim=c)/add(claim=c): the condition; -1 otherwise
	refName  string
	typ      string
	value    maaOperand
}

type maaRule struct {
	line  int
	conds []maaCond
	act   maaAction
}

type maaClaim struct {
	typ, issuer string
	value       any
}

// ParseAttestationPolicy reads a policy in Azure Attestation's text
// format, version 1.0. Anything outside the supported subset is refused
// with an *AttestationPolicyError naming line and column, never ignored.
func ParseAttestationPolicy(text string) (*AttestationPolicy, error) {
	ps := &maaParser{toks: maaLex(text)}
	return ps.policy()
}

// AttestationPolicyHash is the x-ms-policy-hash of a policy text, as Azure
// Attestation defines it: BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy))))),
// BASE64URL being the unpadded URL-safe alphabet of JWS (RFC 7515 §2). It
// hashes the text exactly as uploaded, not its canonical form.
func AttestationPolicyHash(text string) string {
	inner := base64.RawURLEncoding.EncodeToString([]byte(text))
	sum := sha256.Sum256([]byte(inner))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Text returns the policy in canonical form: one rule per line, keywords
// in lower case, both sections present. Parsing it gives the same policy.
func (p *AttestationPolicy) Text() string {
	var b strings.Builder
	b.WriteString("version=1.0;\n")
	for _, sec := range []struct {
		name  string
		rules []maaRule
	}{{"authorizationrules", p.authz}, {"issuancerules", p.issuance}} {
		b.WriteString(sec.name + "\n{\n")
		for i := range sec.rules {
			b.WriteString("\t")
			sec.rules[i].write(&b)
			b.WriteString("\n")
		}
		b.WriteString("};\n")
	}
	return b.String()
}

func (r *maaRule) write(b *strings.Builder) {
	for i := range r.conds {
		if i > 0 {
			b.WriteString(" && ")
		}
		r.conds[i].write(b)
	}
	if len(r.conds) > 0 {
		b.WriteString(" ")
	}
	b.WriteString("=> ")
	a := &r.act
	b.WriteString(maaVerbNames[a.verb] + "(")
	switch {
	case a.verb == maaPermit || a.verb == maaDeny:
	case a.claimRef >= 0:
		b.WriteString("claim=" + a.refName)
	default:
		b.WriteString(`type="` + a.typ + `", value=` + a.value.text())
	}
	b.WriteString(");")
}

func (c *maaCond) write(b *strings.Builder) {
	if c.ident != "" {
		b.WriteString(c.ident + ":")
	}
	b.WriteString("[")
	for i, t := range c.tests {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(maaPropNames[t.prop] + t.op + t.rhs.text())
	}
	b.WriteString("]")
}

func (o maaOperand) text() string {
	if o.ref >= 0 {
		return o.refName + "." + maaPropNames[o.refProp]
	}
	switch v := o.lit.(type) {
	case string:
		return `"` + v + `"` // literals hold no quote or backslash
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return "?"
}

// Evaluate runs the policy over incoming claims, named as Azure
// Attestation names them (token.AzureClaims). The authorization rules are
// applied in document order, as Azure applies them: the first permit() or
// deny() rule whose conditions hold decides, and none holding denies.
// permitted is true when that rule permits; issued is then what the
// issuance rules issued (empty, not nil, when they issue nothing). On
// denial err wraps ErrDenied and a *Violation per reason (Field names the
// rule by line), and issued is nil.
func (p *AttestationPolicy) Evaluate(claims map[string]any) (permitted bool, issued map[string]any, err error) {
	if p == nil {
		return false, nil, fmt.Errorf("%w: no attestation policy", ErrDenied)
	}
	set := make([]maaClaim, 0, len(claims)+len(p.issuance)+2)
	for _, k := range slices.Sorted(maps.Keys(claims)) {
		set = append(set, maaClaim{typ: k, issuer: AttestationServiceIssuer, value: claims[k]})
	}
	bind := make([]int, p.maxConds)
	budget := maaBudget
	permittedBy := -1
authz:
	for i := range p.authz {
		r := &p.authz[i]
		if !r.match(set, bind, &budget) {
			if budget < 0 {
				return false, nil, fmt.Errorf("%w: the attestation policy needs more than %d claim tests to evaluate", ErrDenied, maaBudget)
			}
			continue
		}
		// Azure applies the rules in order: the first permit() or deny()
		// rule whose conditions hold decides; add() rules add a claim and
		// go on.
		switch r.act.verb {
		case maaDeny:
			return false, nil, fmt.Errorf("%w: %w", ErrDenied, &Violation{Field: fmt.Sprintf("authorizationrules line %d", r.line), Msg: "a deny() rule matched"})
		case maaPermit:
			permittedBy = i
			break authz
		case maaAdd:
			set = append(set, r.act.claim(set, bind))
		}
	}
	if permittedBy < 0 {
		return false, nil, fmt.Errorf("%w: no authorization rule permitted: %w", ErrDenied, p.explain(set))
	}
	issued = map[string]any{}
	multi := map[string]bool{}
	for i := range p.issuance {
		r := &p.issuance[i]
		if !r.match(set, bind, &budget) {
			if budget < 0 {
				return false, nil, fmt.Errorf("%w: the attestation policy needs more than %d claim tests to evaluate", ErrDenied, maaBudget)
			}
			continue
		}
		c := r.act.claim(set, bind)
		set = append(set, c)
		if r.act.verb != maaIssue {
			continue
		}
		switch old, ok := issued[c.typ]; {
		case !ok:
			issued[c.typ] = c.value
		case multi[c.typ]:
			issued[c.typ] = append(old.([]any), c.value)
		default:
			issued[c.typ] = []any{old, c.value}
			multi[c.typ] = true
		}
	}
	return true, issued, nil
}

// explain says, for each permit() rule, why it did not match.
func (p *AttestationPolicy) explain(set []maaClaim) error {
	var vs []error
	for i := range p.authz {
		r := &p.authz[i]
		if r.act.verb != maaPermit {
			continue
		}
		field := fmt.Sprintf("authorizationrules line %d", r.line)
		why := "its conditions hold only for different claims than their references require"
		for ci := range r.conds {
			c := &r.conds[ci]
			if slices.ContainsFunc(set, func(cl maaClaim) bool { return c.literalHolds(&cl) }) {
				continue
			}
			var b strings.Builder
			c.write(&b)
			why = "no claim satisfies " + b.String()
			if t, ok := c.typeLiteral(); ok {
				if i := slices.IndexFunc(set, func(cl maaClaim) bool { return cl.typ == t }); i < 0 {
					why += " (no claim " + t + ")"
				} else {
					why += " (" + t + " is " + kvShow(set[i].value) + ")"
				}
			}
			break
		}
		vs = append(vs, &Violation{Field: field, Msg: why})
	}
	if len(vs) == 0 {
		return errors.New("the policy has no permit() rule")
	}
	return errors.Join(vs...)
}

func (c *maaCond) typeLiteral() (string, bool) {
	for _, t := range c.tests {
		if t.prop == maaType && t.op == "==" && t.rhs.ref < 0 {
			return t.rhs.lit.(string), true
		}
	}
	return "", false
}

// literalHolds tests a claim against the condition's literal tests only.
func (c *maaCond) literalHolds(cl *maaClaim) bool {
	for _, t := range c.tests {
		if t.rhs.ref < 0 && !maaCompare(cl.prop(t.prop), t.op, t.rhs.lit) {
			return false
		}
	}
	return true
}

func (cl *maaClaim) prop(p maaProp) any {
	switch p {
	case maaType:
		return cl.typ
	case maaIssuer:
		return cl.issuer
	}
	return cl.value
}

func (r *maaRule) match(set []maaClaim, bind []int, budget *int) bool {
	return r.matchFrom(0, set, bind, budget)
}

func (r *maaRule) matchFrom(i int, set []maaClaim, bind []int, budget *int) bool {
	if i == len(r.conds) {
		return true
	}
	c := &r.conds[i]
	for k := range set {
		if *budget--; *budget < 0 {
			return false
		}
		if !c.holds(&set[k], set, bind) {
			continue
		}
		bind[i] = k
		if r.matchFrom(i+1, set, bind, budget) {
			return true
		}
		if !c.referenced || *budget < 0 {
			// No later condition depends on which claim this one bound.
			return false
		}
	}
	return false
}

func (c *maaCond) holds(cl *maaClaim, set []maaClaim, bind []int) bool {
	for _, t := range c.tests {
		rhs := t.rhs.lit
		if t.rhs.ref >= 0 {
			rhs = set[bind[t.rhs.ref]].prop(t.rhs.refProp)
		}
		if !maaCompare(cl.prop(t.prop), t.op, rhs) {
			return false
		}
	}
	return true
}

// maaEquality applies == or != (the only operators on strings and
// booleans).
func maaEquality[T comparable](l T, op string, r T) bool {
	switch op {
	case "==":
		return l == r
	case "!=":
		return l != r
	}
	return false
}

// maaCompare applies op to values of the same type; values of different
// types never compare.
func maaCompare(l any, op string, r any) bool {
	switch lv := l.(type) {
	case string:
		rv, ok := r.(string)
		return ok && maaEquality(lv, op, rv)
	case bool:
		rv, ok := r.(bool)
		return ok && maaEquality(lv, op, rv)
	}
	ln, ok := claimNumOf(l)
	if !ok {
		return false
	}
	rn, ok := claimNumOf(r)
	if !ok {
		return false
	}
	c := ln.cmp(rn)
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func (a *maaAction) claim(set []maaClaim, bind []int) maaClaim {
	if a.claimRef >= 0 {
		src := set[bind[a.claimRef]]
		return maaClaim{typ: src.typ, issuer: AttestationPolicyIssuer, value: src.value}
	}
	v := a.value.lit
	if a.value.ref >= 0 {
		v = set[bind[a.value.ref]].prop(a.value.refProp)
	}
	return maaClaim{typ: a.typ, issuer: AttestationPolicyIssuer, value: v}
}

// The lexer.

type maaTokKind uint8

const (
	maaEOF maaTokKind = iota
	maaIdent
	maaString
	maaNumber
	maaPunct
	maaErr // a lexical error, in text
)

type maaTok struct {
	kind      maaTokKind
	text      string
	line, col int
}

func (t maaTok) show() string {
	if t.kind == maaEOF {
		return "the end of the policy"
	}
	return strconv.Quote(t.text)
}

// maaLex splits src into tokens. A lexical error becomes the last token
// (maaErr), so that the parser reports the first problem in reading order.
func maaLex(src string) []maaTok {
	var toks []maaTok
	line, col := 1, 1
	fail := func(msg string) []maaTok {
		return append(toks, maaTok{kind: maaErr, text: msg, line: line, col: col})
	}
	i := 0
	adv := func(n int) { // n bytes on one line
		col += utf8.RuneCountInString(src[i : i+n])
		i += n
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			i++
			line, col = line+1, 1
			continue
		case c == ' ' || c == '\t' || c == '\r':
			adv(1)
			continue
		}
		start := maaTok{line: line, col: col}
		rest := src[i:]
		switch {
		case c == '"':
			j := 1
			for ; j < len(rest) && rest[j] != '"' && rest[j] != '\n'; j++ {
				switch ch := rest[j]; {
				case ch == '\\':
					col += utf8.RuneCountInString(rest[:j])
					return fail("escapes in strings are not supported")
				case ch < ' ' && ch != '\t' || ch == 0x7f:
					col += utf8.RuneCountInString(rest[:j])
					return fail("a string holds no control characters")
				}
			}
			if j == len(rest) || rest[j] == '\n' {
				return fail("unterminated string (a string ends on the line it starts)")
			}
			if !utf8.ValidString(rest[1:j]) {
				return fail("a string is not valid UTF-8")
			}
			start.kind, start.text = maaString, rest[1:j]
			adv(j + 1)
		case c >= '0' && c <= '9' || c == '-' && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9':
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if j+1 < len(rest) && rest[j] == '.' && rest[j+1] >= '0' && rest[j+1] <= '9' {
				j += 2
				for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
					j++
				}
			}
			start.kind, start.text = maaNumber, rest[:j]
			adv(j)
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := 1
			for j < len(rest) && (rest[j] == '_' || rest[j] >= 'a' && rest[j] <= 'z' || rest[j] >= 'A' && rest[j] <= 'Z' || rest[j] >= '0' && rest[j] <= '9') {
				j++
			}
			start.kind, start.text = maaIdent, rest[:j]
			adv(j)
		default:
			p := ""
			for _, op := range []string{"==", "=>", "!=", "<=", ">=", "&&", "=", "<", ">", "[", "]", "(", ")", "{", "}", ";", ",", ":", "."} {
				if strings.HasPrefix(rest, op) {
					p = op
					break
				}
			}
			if p == "" {
				switch {
				case strings.HasPrefix(rest, "//") || strings.HasPrefix(rest, "/*") || c == '#':
					return fail("comments are not part of the policy language")
				case strings.HasPrefix(rest, "||") || c == '|':
					return fail(`"||" is not part of the policy language: write one rule per alternative`)
				case c == '&':
					return fail(`conditions are joined with "&&"`)
				case c == '!':
					return fail(`"!" is only part of "!="`)
				}
				r, _ := utf8.DecodeRuneInString(rest)
				switch r {
				case '“', '”', '„', '‘', '’', '″':
					return fail(fmt.Sprintf("typographic quote %q: strings use straight double quotes", r))
				}
				return fail(fmt.Sprintf("unexpected character %q", r))
			}
			start.kind, start.text = maaPunct, p
			adv(len(p))
		}
		toks = append(toks, start)
	}
	return append(toks, maaTok{kind: maaEOF, line: line, col: col})
}

// The parser.

type maaParser struct {
	toks []maaTok
	i    int
	// per rule
	idents []string
}

var maaKeywords = []string{"version", "authorizationrules", "issuancerules", "configurationrules",
	"type", "value", "issuer", "valuetype", "claim", "true", "false",
	"permit", "deny", "add", "issue", "issueproperty"}

func (ps *maaParser) peek() maaTok { return ps.toks[ps.i] }

func (ps *maaParser) next() maaTok {
	t := ps.toks[ps.i]
	if t.kind != maaEOF && t.kind != maaErr {
		ps.i++
	}
	return t
}

// errAt reports a problem at t; when t is a lexical error, that error.
func (ps *maaParser) errAt(t maaTok, format string, args ...any) error {
	if t.kind == maaErr {
		return &AttestationPolicyError{Line: t.line, Column: t.col, Msg: t.text}
	}
	return &AttestationPolicyError{Line: t.line, Column: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (ps *maaParser) isPunct(p string) bool {
	t := ps.peek()
	return t.kind == maaPunct && t.text == p
}

func (ps *maaParser) expect(p, context string) error {
	t := ps.next()
	if t.kind != maaPunct || t.text != p {
		return ps.errAt(t, "expected %q %s, found %s", p, context, t.show())
	}
	return nil
}

func (ps *maaParser) keyword(t maaTok) string {
	if t.kind != maaIdent {
		return ""
	}
	return strings.ToLower(t.text)
}

// prop reads t as a claim property keyword (type, value, issuer).
func (ps *maaParser) prop(t maaTok) (maaProp, bool) {
	i := slices.Index(maaPropNames[:], ps.keyword(t))
	return maaProp(i), i >= 0
}

func (ps *maaParser) policy() (*AttestationPolicy, error) {
	t := ps.next()
	if ps.keyword(t) != "version" {
		return nil, ps.errAt(t, `a policy starts with "version=1.0;", found %s`, t.show())
	}
	if err := ps.expect("=", "after version"); err != nil {
		return nil, err
	}
	v := ps.next()
	switch {
	case v.kind != maaNumber:
		return nil, ps.errAt(v, "expected the version number, found %s", v.show())
	case v.text == "1.1" || v.text == "1.2":
		return nil, ps.errAt(v, "policy version %s is not supported: this is the version 1.0 language (authorizationrules and issuancerules; no configurationrules)", v.text)
	case v.text != "1.0":
		return nil, ps.errAt(v, "unknown policy version %s: the supported version is 1.0", v.text)
	}
	if err := ps.expect(";", "after the version"); err != nil {
		return nil, err
	}
	p := &AttestationPolicy{}
	var sawAuthz, sawIssuance bool
	for ps.peek().kind != maaEOF {
		t := ps.next()
		switch ps.keyword(t) {
		case "authorizationrules":
			if sawAuthz || sawIssuance {
				return nil, ps.errAt(t, "authorizationrules appears once, before issuancerules")
			}
			sawAuthz = true
			rules, err := ps.block(true)
			if err != nil {
				return nil, err
			}
			p.authz = rules
		case "issuancerules":
			if !sawAuthz {
				return nil, ps.errAt(t, "the authorizationrules section comes first")
			}
			if sawIssuance {
				return nil, ps.errAt(t, "issuancerules appears once")
			}
			sawIssuance = true
			rules, err := ps.block(false)
			if err != nil {
				return nil, err
			}
			p.issuance = rules
		case "configurationrules":
			return nil, ps.errAt(t, "configurationrules belong to policy version 1.1, which is not supported")
		default:
			return nil, ps.errAt(t, "expected authorizationrules or issuancerules, found %s", t.show())
		}
	}
	if !sawAuthz {
		return nil, ps.errAt(ps.peek(), "the policy has no authorizationrules section (without it nothing is permitted)")
	}
	for _, r := range slices.Concat(p.authz, p.issuance) {
		p.maxConds = max(p.maxConds, len(r.conds))
	}
	return p, nil
}

func (ps *maaParser) block(authz bool) ([]maaRule, error) {
	if err := ps.expect("{", "to open the section"); err != nil {
		return nil, err
	}
	rules := []maaRule{}
	for !ps.isPunct("}") {
		if ps.peek().kind == maaEOF {
			return nil, ps.errAt(ps.peek(), `the section is not closed with "};"`)
		}
		r, err := ps.rule(authz)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	ps.next()
	if err := ps.expect(";", "after the section's closing brace"); err != nil {
		return nil, err
	}
	return rules, nil
}

func (ps *maaParser) rule(authz bool) (maaRule, error) {
	r := maaRule{line: ps.peek().line}
	ps.idents = ps.idents[:0]
	if !ps.isPunct("=>") {
		for {
			c, err := ps.cond()
			if err != nil {
				return r, err
			}
			for _, t := range c.tests {
				if t.rhs.ref >= 0 {
					r.conds[t.rhs.ref].referenced = true
				}
			}
			r.conds = append(r.conds, c)
			if !ps.isPunct("&&") {
				break
			}
			ps.next()
		}
	}
	t := ps.next()
	if t.kind != maaPunct || t.text != "=>" {
		return r, ps.errAt(t, `expected "&&" or "=>", found %s`, t.show())
	}
	act, err := ps.action(authz)
	if err != nil {
		return r, err
	}
	r.act = act
	if err := ps.expect(";", "after the rule"); err != nil {
		return r, err
	}
	return r, nil
}

func (ps *maaParser) cond() (maaCond, error) {
	var c maaCond
	t := ps.peek()
	if t.kind == maaIdent && ps.toks[ps.i+1].kind == maaPunct && ps.toks[ps.i+1].text == ":" {
		if slices.Contains(maaKeywords, strings.ToLower(t.text)) {
			return c, ps.errAt(t, "%q is a keyword, not a name for a claim", t.text)
		}
		if slices.Contains(ps.idents, t.text) {
			return c, ps.errAt(t, "%q is already bound in this rule", t.text)
		}
		c.ident = t.text
		ps.next()
		ps.next()
	}
	if err := ps.expect("[", "to open a condition"); err != nil {
		return c, err
	}
	for {
		test, err := ps.test()
		if err != nil {
			return c, err
		}
		c.tests = append(c.tests, test)
		if ps.isPunct(",") {
			ps.next()
			continue
		}
		if err := ps.expect("]", `or "," in a condition`); err != nil {
			return c, err
		}
		break
	}
	ps.idents = append(ps.idents, c.ident) // "" keeps the index of anonymous ones
	return c, nil
}

func (ps *maaParser) test() (maaTest, error) {
	var t maaTest
	pt := ps.next()
	prop, ok := ps.prop(pt)
	if !ok {
		return t, ps.errAt(pt, "expected type, value or issuer in a condition, found %s", pt.show())
	}
	t.prop = prop
	ot := ps.next()
	switch {
	case ot.kind == maaPunct && ot.text == "=":
		return t, ps.errAt(ot, `a condition compares with "=="; "=" assigns in issue() and add()`)
	case ot.kind != maaPunct || !slices.Contains([]string{"==", "!=", "<", "<=", ">", ">="}, ot.text):
		return t, ps.errAt(ot, "expected a comparison (==, !=, <, <=, >, >=) after %s, found %s", maaPropNames[t.prop], ot.show())
	}
	t.op = ot.text
	rt := ps.peek()
	rhs, err := ps.operand()
	if err != nil {
		return t, err
	}
	t.rhs = rhs
	ordering := t.op != "==" && t.op != "!="
	switch {
	case t.prop != maaValue && ordering:
		return t, ps.errAt(ot, "%s is a string: it compares with == and != only", maaPropNames[t.prop])
	case t.prop != maaValue && rhs.ref < 0:
		if _, ok := rhs.lit.(string); !ok {
			return t, ps.errAt(rt, "%s is a string: compare it with a string", maaPropNames[t.prop])
		}
	case ordering && rhs.ref < 0:
		if _, ok := rhs.lit.(int64); !ok {
			return t, ps.errAt(rt, "%s compares integers only", t.op)
		}
	}
	return t, nil
}

func (ps *maaParser) operand() (maaOperand, error) {
	o := maaOperand{ref: -1}
	t := ps.next()
	switch t.kind {
	case maaString:
		o.lit = t.text
		return o, nil
	case maaNumber:
		if strings.Contains(t.text, ".") {
			return o, ps.errAt(t, "%s: decimal numbers are not supported (Integer is the numeric claim type)", t.text)
		}
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return o, ps.errAt(t, "integer %s is out of range", t.text)
		}
		o.lit = n
		return o, nil
	case maaIdent:
		switch strings.ToLower(t.text) {
		case "true":
			o.lit = true
			return o, nil
		case "false":
			o.lit = false
			return o, nil
		}
		idx := slices.Index(ps.idents, t.text)
		if idx < 0 || t.text == "" {
			if ps.isPunct(".") {
				return o, ps.errAt(t, "%q is not bound by an earlier condition of this rule", t.text)
			}
			return o, ps.errAt(t, "expected a string, an integer, true, false or a bound claim's property, found %s", t.show())
		}
		if err := ps.expect(".", "after a claim name ("+t.text+".value)"); err != nil {
			return o, err
		}
		pt := ps.next()
		prop, ok := ps.prop(pt)
		if !ok {
			return o, ps.errAt(pt, "a claim's properties are type, value and issuer, found %s", pt.show())
		}
		o.refProp = prop
		o.ref, o.refName = idx, t.text
		return o, nil
	}
	return o, ps.errAt(t, "expected a string, an integer, true, false or a bound claim's property, found %s", t.show())
}

func (ps *maaParser) action(authz bool) (maaAction, error) {
	a := maaAction{claimRef: -1, value: maaOperand{ref: -1}}
	t := ps.next()
	switch ps.keyword(t) {
	case "permit":
		a.verb = maaPermit
	case "deny":
		a.verb = maaDeny
	case "add":
		a.verb = maaAdd
	case "issue":
		a.verb = maaIssue
	case "issueproperty":
		return a, ps.errAt(t, "issueproperty() is not supported: it sets token properties, which trustbound does not take from policy")
	case "":
		return a, ps.errAt(t, "expected an action (permit(), deny(), issue(…), add(…)), found %s", t.show())
	default:
		return a, ps.errAt(t, "unknown action %q: the actions are permit(), deny(), issue(…) and add(…)", t.text)
	}
	switch {
	case authz && a.verb == maaIssue:
		return a, ps.errAt(t, "authorization rules cannot issue claims (use add() to add one for later rules)")
	case !authz && (a.verb == maaPermit || a.verb == maaDeny):
		return a, ps.errAt(t, "%s() belongs in authorizationrules: issuance rules cannot permit or deny", maaVerbNames[a.verb])
	}
	if err := ps.expect("(", "after "+maaVerbNames[a.verb]); err != nil {
		return a, err
	}
	if a.verb == maaPermit || a.verb == maaDeny {
		return a, ps.expect(")", maaVerbNames[a.verb]+"() takes no arguments:")
	}
	at := ps.next()
	switch ps.keyword(at) {
	case "claim":
		if err := ps.expect("=", "after claim"); err != nil {
			return a, err
		}
		it := ps.next()
		idx := slices.Index(ps.idents, it.text)
		if it.kind != maaIdent || idx < 0 || it.text == "" {
			return a, ps.errAt(it, "claim= names a claim bound by a condition of this rule, found %s", it.show())
		}
		a.claimRef, a.refName = idx, it.text
	case "type":
		if err := ps.expect("=", "after type"); err != nil {
			return a, err
		}
		tt := ps.next()
		if tt.kind != maaString || tt.text == "" {
			return a, ps.errAt(tt, "type= takes a non-empty string, found %s", tt.show())
		}
		a.typ = tt.text
		if err := ps.expect(",", "then value=… after type=…"); err != nil {
			return a, err
		}
		vt := ps.next()
		if ps.keyword(vt) != "value" {
			if ps.keyword(vt) == "valuetype" {
				return a, ps.errAt(vt, "valueType= is not supported: the value's type is its literal's")
			}
			return a, ps.errAt(vt, "expected value=… after type=…, found %s", vt.show())
		}
		if err := ps.expect("=", "after value"); err != nil {
			return a, err
		}
		v, err := ps.operand()
		if err != nil {
			return a, err
		}
		a.value = v
	default:
		return a, ps.errAt(at, "%s() takes claim=<name> or type=\"…\", value=…, found %s", maaVerbNames[a.verb], at.show())
	}
	if err := ps.expect(")", "to close "+maaVerbNames[a.verb]+"()"); err != nil {
		return a, err
	}
	return a, nil
}
