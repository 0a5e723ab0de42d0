package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// This file is the Azure Key Vault secure key release policy, evaluated
// verbatim over a token's claims (issue 5, point 1(b)).
//
// The grammar is Key Vault's ("Azure Key Vault secure key release policy
// grammar", learn.microsoft.com/azure/key-vault/keys/policy-grammar):
//
//	policy    = {"version":"1.0.0", "anyOf":[authority, …]}
//	authority = {"authority":"<issuer>", "allOf"|"anyOf":[condition, …]}
//	condition = {"claim":"<dotted.path>", <operator>: value}
//	          | {"anyOf":[condition, …]} | {"allOf":[condition, …]}
//	operator  = equals | notEquals | less | lessOrEquals | greater
//	          | greaterOrEquals | exists
//
// What Key Vault documents and this follows: a claim that is not present
// fails its condition; claim names use dot notation to walk nested JSON
// objects, with no array indexing and no escape for a dot inside a name;
// objects are not values; an authority carries allOf or anyOf, never both;
// anyOf and allOf nest. Azure's own documentation also writes the policy
// with a top-level "allOf" of authorities (SKR policy examples, CVM
// example 2), so both are read.
//
// Where Key Vault documents nothing, this decides, failing closed:
//   - Strings compare exactly (case-sensitive).
//   - A string value equals a boolean or number claim when it is that
//     claim's JSON text: Microsoft's own tooling (confidential-sidecar-
//     containers importkey, whose claim values are Go strings) writes
//     {"claim":"x-ms-sevsnpvm-is-debuggable","equals":"false"} and
//     {"claim":"x-ms-sevsnpvm-vmpl","equals":"0"} against tokens where
//     those claims are a boolean and a number, and Key Vault releases.
//     A boolean or number value never equals a string claim.
//   - Ordering operators take a JSON number and compare only numeric
//     claims; anything else fails the condition.
//   - notEquals, like every operator, fails on a missing claim or on a
//     claim of a type it cannot be compared with.
//   - exists:true holds when the claim is present (JSON null counts as
//     absent), exists:false when it is not; without this reading
//     exists:false could never hold.
//   - The authority is compared with the token's iss after normalising
//     both: an authority without a scheme means https (Key Vault's own
//     grammar example is "my.attestation.com"), scheme and host are
//     lower-cased, the default port and one trailing slash are dropped
//     (Azure's published CVM policy names "https://sharedeus.eus.attest.azure.net/"
//     while MAA tokens carry iss "https://sharedeus.eus.attest.azure.net").

// ReleasePolicyVersion is the one version of the release policy grammar
// that Key Vault defines and ParseReleasePolicy accepts.
const ReleasePolicyVersion = "1.0.0"

// maxReleasePolicyDepth bounds the nesting of anyOf/allOf conditions.
const maxReleasePolicyDepth = 32

// ReleasePolicy is a parsed Key Vault secure key release policy. It is
// immutable and safe for concurrent use.
type ReleasePolicy struct {
	allOf       bool // the top level is allOf rather than anyOf
	authorities []kvAuthority
}

// ReleasePolicyError is a release policy refused at parse: Path is the
// JSON path of the offending member ("$.anyOf[0].allOf[2]").
type ReleasePolicyError struct {
	Path string
	Msg  string
}

func (e *ReleasePolicyError) Error() string {
	return "release policy: " + e.Path + ": " + e.Msg
}

type kvAuthority struct {
	path      string
	authority string // as written
	issuer    string // normalised
	group     kvCondition
}

type kvOp uint8

const (
	kvNone kvOp = iota
	kvEquals
	kvNotEquals
	kvLess
	kvLessOrEquals
	kvGreater
	kvGreaterOrEquals
	kvExists
)

var kvOps = map[string]kvOp{
	"equals": kvEquals, "notEquals": kvNotEquals,
	"less": kvLess, "lessOrEquals": kvLessOrEquals,
	"greater": kvGreater, "greaterOrEquals": kvGreaterOrEquals,
	"exists": kvExists,
}

func (o kvOp) String() string {
	switch o {
	case kvEquals:
		return "equals"
	case kvNotEquals:
		return "notEquals"
	case kvLess:
		return "less"
	case kvLessOrEquals:
		return "lessOrEquals"
	case kvGreater:
		return "greater"
	case kvGreaterOrEquals:
		return "greaterOrEquals"
	case kvExists:
		return "exists"
	}
	return "none"
}

// kvCondition is a claim condition (op != kvNone) or an anyOf/allOf group.
type kvCondition struct {
	path string
	// group
	anyOf   bool
	members []kvCondition
	// claim condition
	claim string
	segs  []string
	op    kvOp
	value any // string, bool or claimNum; for exists, bool
}

// ParseReleasePolicy reads a release policy strictly: unknown members,
// unknown or repeated operators, arrays, objects or null where a value is
// required, empty anyOf/allOf, a version other than 1.0.0 and trailing
// data are refused with a *ReleasePolicyError naming the JSON path.
func ParseReleasePolicy(b []byte) (*ReleasePolicy, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	root, err := kvRead(dec, "$", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ReleasePolicyError{"$", "trailing data after the policy object"}
	}
	obj, err := root.object("$", "the policy")
	if err != nil {
		return nil, err
	}
	p := &ReleasePolicy{}
	var sawVersion bool
	var list *kvNode
	var listKey string
	for _, m := range obj {
		path := "$." + m.key
		switch m.key {
		case "version":
			s, ok := m.val.v.(string)
			if !ok {
				return nil, &ReleasePolicyError{path, "the version is a string"}
			}
			if s != ReleasePolicyVersion {
				return nil, &ReleasePolicyError{path, fmt.Sprintf("version %q is not supported: the grammar is version %q", s, ReleasePolicyVersion)}
			}
			sawVersion = true
		case "anyOf", "allOf":
			if list != nil {
				return nil, &ReleasePolicyError{path, "the policy has both anyOf and allOf; it is one list of authorities"}
			}
			list, listKey = m.val, m.key
		default:
			return nil, &ReleasePolicyError{path, kvUnknown(m.key, `"version" and "anyOf" (or "allOf")`)}
		}
	}
	if !sawVersion {
		return nil, &ReleasePolicyError{"$", fmt.Sprintf(`"version" is missing (it must be %q)`, ReleasePolicyVersion)}
	}
	if list == nil {
		return nil, &ReleasePolicyError{"$", `"anyOf" is missing: a policy is a list of authorities`}
	}
	p.allOf = listKey == "allOf"
	items, err := list.array("$."+listKey, "a list of authorities")
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		a, err := kvParseAuthority(it, fmt.Sprintf("$.%s[%d]", listKey, i))
		if err != nil {
			return nil, err
		}
		p.authorities = append(p.authorities, a)
	}
	return p, nil
}

func kvParseAuthority(n *kvNode, path string) (kvAuthority, error) {
	obj, err := n.object(path, "an authority")
	if err != nil {
		return kvAuthority{}, err
	}
	a := kvAuthority{path: path}
	var sawAuthority bool
	var list *kvNode
	var listKey string
	for _, m := range obj {
		mpath := path + "." + m.key
		switch m.key {
		case "authority":
			s, ok := m.val.v.(string)
			if !ok {
				return a, &ReleasePolicyError{mpath, "the authority is a string (the issuer of the tokens it accepts)"}
			}
			norm, err := kvNormalizeIssuer(s)
			if err != nil {
				return a, &ReleasePolicyError{mpath, err.Error()}
			}
			a.authority, a.issuer, sawAuthority = s, norm, true
		case "anyOf", "allOf":
			if list != nil {
				return a, &ReleasePolicyError{mpath, "an authority carries allOf or anyOf, not both"}
			}
			list, listKey = m.val, m.key
		default:
			return a, &ReleasePolicyError{mpath, kvUnknown(m.key, `"authority" and "allOf" (or "anyOf")`)}
		}
	}
	if !sawAuthority {
		return a, &ReleasePolicyError{path, `"authority" is missing`}
	}
	if list == nil {
		return a, &ReleasePolicyError{path, `the authority has no "allOf" or "anyOf" conditions`}
	}
	g, err := kvParseGroup(list, path+"."+listKey, listKey == "anyOf", 1)
	if err != nil {
		return a, err
	}
	a.group = g
	return a, nil
}

func kvParseGroup(n *kvNode, path string, anyOf bool, depth int) (kvCondition, error) {
	if depth > maxReleasePolicyDepth {
		return kvCondition{}, &ReleasePolicyError{path, fmt.Sprintf("conditions nest deeper than %d levels", maxReleasePolicyDepth)}
	}
	items, err := n.array(path, "a list of conditions")
	if err != nil {
		return kvCondition{}, err
	}
	g := kvCondition{path: path, anyOf: anyOf}
	for i, it := range items {
		c, err := kvParseCondition(it, fmt.Sprintf("%s[%d]", path, i), depth)
		if err != nil {
			return g, err
		}
		g.members = append(g.members, c)
	}
	return g, nil
}

func kvParseCondition(n *kvNode, path string, depth int) (kvCondition, error) {
	obj, err := n.object(path, "a condition")
	if err != nil {
		return kvCondition{}, err
	}
	if len(obj) == 1 && (obj[0].key == "anyOf" || obj[0].key == "allOf") {
		return kvParseGroup(obj[0].val, path+"."+obj[0].key, obj[0].key == "anyOf", depth+1)
	}
	c := kvCondition{path: path}
	var sawClaim bool
	var opNode *kvNode
	for _, m := range obj {
		mpath := path + "." + m.key
		if op, ok := kvOps[m.key]; ok {
			if c.op != kvNone {
				return c, &ReleasePolicyError{mpath, fmt.Sprintf("two operators (%s and %s): a condition has exactly one", c.op, op)}
			}
			c.op, opNode = op, m.val
			continue
		}
		switch m.key {
		case "claim":
			s, ok := m.val.v.(string)
			if !ok {
				return c, &ReleasePolicyError{mpath, "the claim is a string (a dotted path into the token)"}
			}
			segs := strings.Split(s, ".")
			for _, seg := range segs {
				if seg == "" {
					return c, &ReleasePolicyError{mpath, fmt.Sprintf("claim %q has an empty name segment", s)}
				}
			}
			c.claim, c.segs, sawClaim = s, segs, true
		case "anyOf", "allOf":
			return c, &ReleasePolicyError{mpath, fmt.Sprintf("%s is a condition of its own: {%q:[…]} with no other member", m.key, m.key)}
		default:
			return c, &ReleasePolicyError{mpath, kvUnknown(m.key, `"claim" and one operator (equals, notEquals, less, lessOrEquals, greater, greaterOrEquals, exists)`)}
		}
	}
	if !sawClaim {
		return c, &ReleasePolicyError{path, `"claim" is missing`}
	}
	if c.op == kvNone {
		return c, &ReleasePolicyError{path, "no operator: a condition has exactly one of equals, notEquals, less, lessOrEquals, greater, greaterOrEquals, exists"}
	}
	vpath := path + "." + c.op.String()
	switch v := opNode.v.(type) {
	case []*kvNode:
		return c, &ReleasePolicyError{vpath, "an array is not a value: a condition compares one claim with one string, number or boolean"}
	case []kvMember:
		return c, &ReleasePolicyError{vpath, "an object is not a value: a condition compares one claim with one string, number or boolean"}
	case nil:
		return c, &ReleasePolicyError{vpath, "null is not a value: a condition compares one claim with one string, number or boolean"}
	case json.Number:
		n, err := claimNumFromText(string(v))
		if err != nil {
			return c, &ReleasePolicyError{vpath, err.Error()}
		}
		c.value = n
	default:
		c.value = v // string or bool
	}
	switch c.op {
	case kvExists:
		if _, ok := c.value.(bool); !ok {
			return c, &ReleasePolicyError{vpath, "exists takes true or false"}
		}
	case kvLess, kvLessOrEquals, kvGreater, kvGreaterOrEquals:
		if _, ok := c.value.(claimNum); !ok {
			return c, &ReleasePolicyError{vpath, c.op.String() + " takes a number"}
		}
	}
	return c, nil
}

func kvUnknown(key, want string) string {
	for name := range kvOps {
		if strings.EqualFold(key, name) {
			return fmt.Sprintf("unknown member %q (operators are spelled %q)", key, name)
		}
	}
	switch {
	case strings.EqualFold(key, "anyOf") || strings.EqualFold(key, "allOf"):
		return fmt.Sprintf("unknown member %q (spelled \"anyOf\" / \"allOf\")", key)
	}
	return fmt.Sprintf("unknown member %q: expected %s", key, want)
}

// kvNormalizeIssuer puts an authority or a token issuer in the form they
// are compared in: https when no scheme is given, lower-case scheme and
// host, no default port, no trailing slash.
func kvNormalizeIssuer(s string) (string, error) {
	if s == "" {
		return "", errors.New("the authority is empty")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", fmt.Errorf("authority %q contains white space or control characters", s)
	}
	raw := s
	if !strings.Contains(s, "://") {
		raw = "https://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("authority %q is not a URL: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", fmt.Errorf("authority %q: scheme %q, want https", s, u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", fmt.Errorf("authority %q is not an issuer URL (scheme://host[/path], no user, query or fragment)", s)
	}
	host := strings.ToLower(u.Host)
	if port := u.Port(); (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		host = strings.ToLower(u.Hostname())
	}
	return scheme + "://" + host + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// Evaluate decides whether a token whose issuer (iss) is issuer and whose
// claims are claims satisfies the policy. It returns nil when the key may
// be released; otherwise an error wrapping ErrDenied and, for each
// authority, a *Violation per failed condition (Field is the condition's
// JSON path).
func (p *ReleasePolicy) Evaluate(issuer string, claims map[string]any) error {
	if p == nil {
		return fmt.Errorf("%w: no release policy", ErrDenied)
	}
	iss, err := kvNormalizeIssuer(issuer)
	if err != nil {
		iss = ""
	}
	passed := 0
	for i := range p.authorities {
		a := &p.authorities[i]
		if iss != "" && a.issuer == iss && a.group.holds(claims) {
			passed++
			if !p.allOf {
				return nil
			}
		}
	}
	if p.allOf && passed == len(p.authorities) {
		return nil
	}
	// Denied: evaluate again, this time saying why.
	var vs []error
	for i := range p.authorities {
		a := &p.authorities[i]
		if iss == "" || a.issuer != iss {
			vs = append(vs, &Violation{Field: a.path + ".authority", Msg: fmt.Sprintf("the token's issuer %q is not this authority %q", issuer, a.authority)})
			continue
		}
		vs = a.group.explain(claims, vs)
	}
	return fmt.Errorf("%w: the release policy is not satisfied: %w", ErrDenied, errors.Join(vs...))
}

func (c *kvCondition) holds(claims map[string]any) bool {
	if c.op == kvNone {
		for i := range c.members {
			if c.members[i].holds(claims) == c.anyOf {
				return c.anyOf
			}
		}
		return !c.anyOf
	}
	ok, _ := c.test(claims)
	return ok
}

// explain appends a *Violation for each failed claim condition under c,
// which has failed.
func (c *kvCondition) explain(claims map[string]any, vs []error) []error {
	if c.op != kvNone {
		if ok, why := c.test(claims); !ok {
			vs = append(vs, &Violation{Field: c.path, Msg: why})
		}
		return vs
	}
	for i := range c.members {
		if !c.members[i].holds(claims) {
			vs = c.members[i].explain(claims, vs)
		}
	}
	return vs
}

// test evaluates a claim condition; when it fails, why says how.
func (c *kvCondition) test(claims map[string]any) (ok bool, why string) {
	got, present := kvLookup(claims, c.segs)
	if c.op == kvExists {
		want := c.value.(bool)
		if present == want {
			return true, ""
		}
		if want {
			return false, fmt.Sprintf("claim %s is not present (exists: true)", c.claim)
		}
		return false, fmt.Sprintf("claim %s is present (exists: false)", c.claim)
	}
	if !present {
		return false, fmt.Sprintf("claim %s is not present (%s %s)", c.claim, c.op, kvShow(c.value))
	}
	switch c.op {
	case kvEquals, kvNotEquals:
		eq, comparable := kvEqual(c.value, got)
		if comparable && eq == (c.op == kvEquals) {
			return true, ""
		}
		if !comparable {
			return false, fmt.Sprintf("claim %s is %s, of another type than %s (%s)", c.claim, kvShow(got), kvShow(c.value), c.op)
		}
		return false, fmt.Sprintf("claim %s is %s, want %s %s", c.claim, kvShow(got), c.op, kvShow(c.value))
	default:
		n, isNum := claimNumOf(got)
		if !isNum {
			return false, fmt.Sprintf("claim %s is %s, not a number (%s %s)", c.claim, kvShow(got), c.op, kvShow(c.value))
		}
		cmp := n.cmp(c.value.(claimNum))
		var holds bool
		switch c.op {
		case kvLess:
			holds = cmp < 0
		case kvLessOrEquals:
			holds = cmp <= 0
		case kvGreater:
			holds = cmp > 0
		case kvGreaterOrEquals:
			holds = cmp >= 0
		}
		if holds {
			return true, ""
		}
		return false, fmt.Sprintf("claim %s is %s, want %s %s", c.claim, kvShow(got), c.op, kvShow(c.value))
	}
}

// kvLookup walks claims along a dotted path; JSON null counts as absent.
func kvLookup(claims map[string]any, segs []string) (any, bool) {
	var cur any = claims
	for _, s := range segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[s]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// kvEqual compares a policy value with a claim: same types by value, and a
// string value with a boolean or number claim by the claim's JSON text.
func kvEqual(want, got any) (eq, comparable bool) {
	switch w := want.(type) {
	case string:
		switch g := got.(type) {
		case string:
			return w == g, true
		case bool:
			return w == strconv.FormatBool(g), true
		}
		if n, ok := claimNumOf(got); ok {
			return w == n.String(), true
		}
	case bool:
		if g, ok := got.(bool); ok {
			return w == g, true
		}
	case claimNum:
		if n, ok := claimNumOf(got); ok {
			return w.cmp(n) == 0, true
		}
	}
	return false, false
}

func kvShow(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case claimNum:
		return v.String()
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	if n, ok := claimNumOf(v); ok {
		return n.String()
	}
	return fmt.Sprint(v)
}

// kvNode is a JSON value read strictly: object members keep their order
// and repeated names are refused.
type kvNode struct {
	v any // nil, bool, string, json.Number, []*kvNode, []kvMember
}

type kvMember struct {
	key string
	val *kvNode
}

func (n *kvNode) object(path, what string) ([]kvMember, error) {
	obj, ok := n.v.([]kvMember)
	if !ok {
		return nil, &ReleasePolicyError{path, what + " is a JSON object"}
	}
	return obj, nil
}

func (n *kvNode) array(path, what string) ([]*kvNode, error) {
	arr, ok := n.v.([]*kvNode)
	if !ok {
		return nil, &ReleasePolicyError{path, what + " is a JSON array"}
	}
	if len(arr) == 0 {
		return nil, &ReleasePolicyError{path, "empty: " + what + " needs at least one entry"}
	}
	return arr, nil
}

func kvRead(dec *json.Decoder, path string, depth int) (*kvNode, error) {
	if depth > 4*maxReleasePolicyDepth {
		return nil, &ReleasePolicyError{path, "nested too deeply"}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, &ReleasePolicyError{path, "not valid JSON: " + kvJSONErr(err)}
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var obj []kvMember
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, &ReleasePolicyError{path, "not valid JSON: " + kvJSONErr(err)}
				}
				key := kt.(string)
				if seen[key] {
					return nil, &ReleasePolicyError{path + "." + key, "member appears twice"}
				}
				seen[key] = true
				v, err := kvRead(dec, path+"."+key, depth+1)
				if err != nil {
					return nil, err
				}
				obj = append(obj, kvMember{key, v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, &ReleasePolicyError{path, "not valid JSON: " + kvJSONErr(err)}
			}
			if obj == nil {
				obj = []kvMember{}
			}
			return &kvNode{obj}, nil
		case '[':
			arr := []*kvNode{}
			for i := 0; dec.More(); i++ {
				v, err := kvRead(dec, fmt.Sprintf("%s[%d]", path, i), depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, &ReleasePolicyError{path, "not valid JSON: " + kvJSONErr(err)}
			}
			return &kvNode{arr}, nil
		}
		return nil, &ReleasePolicyError{path, "not valid JSON"}
	default:
		return &kvNode{t}, nil // nil, bool, string, json.Number
	}
}

func kvJSONErr(err error) string {
	if err == io.EOF {
		return "unexpected end of input"
	}
	return err.Error()
}

// claimNum is a claim or policy number compared by value: integers
// exactly (over the whole int64 and uint64 ranges), others as float64.
type claimNum struct {
	isInt bool
	neg   bool   // integers: the value is -mag
	mag   uint64 // integers: magnitude
	f     float64
}

const twoTo64 = 18446744073709551616.0

func claimNumFromInt(v int64) claimNum {
	if v < 0 {
		return claimNum{isInt: true, neg: true, mag: uint64(-(v + 1)) + 1, f: float64(v)}
	}
	return claimNum{isInt: true, mag: uint64(v), f: float64(v)}
}

func claimNumFromFloat(f float64) (claimNum, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return claimNum{}, false
	}
	a := f
	if a < 0 {
		a = -a
	}
	if a < twoTo64 && a == float64(uint64(a)) {
		n := claimNum{isInt: true, neg: f < 0 && a != 0, mag: uint64(a), f: f}
		return n, true
	}
	return claimNum{f: f}, true
}

func claimNumFromText(s string) (claimNum, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return claimNumFromInt(i), nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return claimNum{isInt: true, mag: u, f: float64(u)}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return claimNum{}, fmt.Errorf("number %s is out of range", s)
	}
	n, _ := claimNumFromFloat(f)
	return n, nil
}

// claimNumOf reads a Go number as claims carry them (token.AzureClaims
// keeps the attest types: uint16, uint32, uint64; decoded JSON has
// float64 or json.Number).
func claimNumOf(v any) (claimNum, bool) {
	switch v := v.(type) {
	case int:
		return claimNumFromInt(int64(v)), true
	case int8:
		return claimNumFromInt(int64(v)), true
	case int16:
		return claimNumFromInt(int64(v)), true
	case int32:
		return claimNumFromInt(int64(v)), true
	case int64:
		return claimNumFromInt(v), true
	case uint:
		return claimNum{isInt: true, mag: uint64(v), f: float64(v)}, true
	case uint8:
		return claimNum{isInt: true, mag: uint64(v), f: float64(v)}, true
	case uint16:
		return claimNum{isInt: true, mag: uint64(v), f: float64(v)}, true
	case uint32:
		return claimNum{isInt: true, mag: uint64(v), f: float64(v)}, true
	case uint64:
		return claimNum{isInt: true, mag: v, f: float64(v)}, true
	case float32:
		return claimNumFromFloat(float64(v))
	case float64:
		return claimNumFromFloat(v)
	case json.Number:
		n, err := claimNumFromText(string(v))
		return n, err == nil
	}
	return claimNum{}, false
}

func (a claimNum) cmp(b claimNum) int {
	if a.isInt && b.isInt {
		switch {
		case a.neg != b.neg:
			if a.neg {
				return -1
			}
			return 1
		case a.mag == b.mag:
			return 0
		case (a.mag < b.mag) != a.neg:
			return -1
		default:
			return 1
		}
	}
	switch {
	case a.f < b.f:
		return -1
	case a.f > b.f:
		return 1
	}
	return 0
}

// String is the number's JSON text.
func (a claimNum) String() string {
	if a.isInt {
		if a.neg {
			return "-" + strconv.FormatUint(a.mag, 10)
		}
		return strconv.FormatUint(a.mag, 10)
	}
	return strconv.FormatFloat(a.f, 'g', -1, 64)
}
