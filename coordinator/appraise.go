package coordinator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/policy"
	"github.com/trustbound/trustbound/token"
)

// The appraisal of verified, bound claims, in one place for /v1/attest,
// /v1/dry-run and `trustbound policy dry-run`:
//
//  1. layer (a), the manifest: policy.Appraise against the workload's
//     reference values;
//  2. the token's claims are assembled (token.NewClaims);
//  3. each policy the workload names, in its order: a Rego module over
//     the verified claims, the Azure claims, the workload and its
//     reference values and the time; a Key Vault release policy over the
//     token's claims (with iss, iat, nbf, exp as the token will have them)
//     and the coordinator as authority; Azure attestation policy text over
//     the Azure claims (nested ones flattened with dots, e.g.
//     x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable), whose issued claims
//     join the token — and the claims later policies see — and may replace
//     none.
//
// A policy that is not set, or no longer prepares, denies, and so does any
// policy that does not permit. x-ms-policy-hash is policy.AttestationPolicyHash
// over the text of the attestation policy the workload names (several: their
// texts concatenated in order), else over the concatenation of all its
// policies' texts in order; without policies the token has none.

// PolicyError refuses a policy text at upload: its kind cannot be told or
// its parser (or the Rego compiler) refused it; Err says where and why.
type PolicyError struct {
	Name, Kind string
	Err        error
}

func (e *PolicyError) Error() string {
	if e.Kind == "" {
		return fmt.Sprintf("policy %q: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("%s policy %q: %v", e.Kind, e.Name, e.Err)
}

func (e *PolicyError) Unwrap() error { return e.Err }

var regoPackage = regexp.MustCompile(`(?m)^[ \t]*package[ \t]`)

// DetectPolicyKind tells what a policy text is: a JSON object is a Key
// Vault release policy, text that starts with "version" and "=" is Azure
// attestation policy text, and a module with a package clause is Rego.
func DetectPolicyKind(text string) (string, error) {
	t := strings.TrimLeft(text, " \t\r\n\ufeff")
	switch {
	case strings.HasPrefix(t, "{"):
		return api.PolicyRelease, nil
	case len(t) >= len("version") && strings.EqualFold(t[:len("version")], "version") &&
		strings.HasPrefix(strings.TrimLeft(t[len("version"):], " \t\r\n"), "="):
		return api.PolicyAttestation, nil
	case regoPackage.MatchString(t):
		return api.PolicyRego, nil
	}
	return "", errors.New(`not a policy this coordinator reads: want a Rego module ("package trustbound"), a Key Vault release policy (a JSON object with "version" and "anyOf" or "allOf") or Azure attestation policy text ("version=1.0; authorizationrules {…};")`)
}

// Policy is one appraisal policy ready to evaluate: parsed or compiled
// once, immutable.
type Policy struct {
	Name string
	Kind string // api.PolicyRego, api.PolicyRelease or api.PolicyAttestation
	Text string
	// Version is the stored version, 0 for a draft.
	Version int

	rego        *policy.RegoPolicy
	release     *policy.ReleasePolicy
	attestation *policy.AttestationPolicy
	// err, when set, is why the policy denies whatever it is asked:
	// it is not set, or its stored text no longer prepares.
	err error
}

// ErrPolicyNotSet is why a policy a workload names but nobody set denies.
var ErrPolicyNotSet = errors.New("policy is not set")

// MissingPolicy stands for a policy a workload names that is not set; it
// denies.
func MissingPolicy(name string) *Policy {
	return &Policy{Name: name, err: fmt.Errorf("%w: %q (an owner sets it with PUT %s%s)", ErrPolicyNotSet, name, api.PathPolicies, name)}
}

// layer is the policy's appraisal layer: its kind, or "policy" when it
// denies before its kind is known.
func (p *Policy) layer() string {
	if p.Kind == "" {
		return "policy"
	}
	return p.Kind
}

// PolicyCache prepares policy texts once: compiled Rego in a
// policy.RegoCache, parsed release and attestation policies by the
// SHA-256 of their text (one version of a policy), at most size of each.
// It is safe for concurrent use.
type PolicyCache struct {
	rego *policy.RegoCache
	size int

	mu          sync.Mutex
	release     map[string]*policy.ReleasePolicy
	attestation map[string]*policy.AttestationPolicy
}

// NewPolicyCache returns a cache of at most size prepared policies of each
// kind (policy.DefaultRegoCacheSize when size is not positive), whose Rego
// policies evaluate within regoTimeout (policy.DefaultRegoTimeout when not
// positive).
func NewPolicyCache(size int, regoTimeout time.Duration) *PolicyCache {
	if size <= 0 {
		size = policy.DefaultRegoCacheSize
	}
	return &PolicyCache{rego: policy.NewRegoCache(size, regoTimeout), size: size,
		release: map[string]*policy.ReleasePolicy{}, attestation: map[string]*policy.AttestationPolicy{}}
}

// Prepare parses or compiles text as a policy of kind (detected when
// empty). Every refusal of the text is a *PolicyError.
func (pc *PolicyCache) Prepare(ctx context.Context, name, kind, text string) (*Policy, error) {
	if kind == "" {
		k, err := DetectPolicyKind(text)
		if err != nil {
			return nil, &PolicyError{Name: name, Err: err}
		}
		kind = k
	}
	p := &Policy{Name: name, Kind: kind, Text: text}
	sum := sha256.Sum256([]byte(text))
	key := hex.EncodeToString(sum[:])
	var err error
	switch kind {
	case api.PolicyRego:
		p.rego, err = pc.rego.Get(ctx, name, text)
	case api.PolicyRelease:
		p.release, err = cached(pc, pc.release, key, func() (*policy.ReleasePolicy, error) { return policy.ParseReleasePolicy([]byte(text)) })
	case api.PolicyAttestation:
		p.attestation, err = cached(pc, pc.attestation, key, func() (*policy.AttestationPolicy, error) { return policy.ParseAttestationPolicy(text) })
	default:
		err = fmt.Errorf("unknown policy kind %q (%s, %s or %s)", kind, api.PolicyRego, api.PolicyRelease, api.PolicyAttestation)
	}
	if err != nil {
		return nil, &PolicyError{Name: name, Kind: kind, Err: err}
	}
	return p, nil
}

// cached returns m[key], parsing and keeping it when absent. A full map
// is emptied rather than managed: parsing is cheap, and versions change
// rarely.
func cached[T any](pc *PolicyCache, m map[string]*T, key string, parse func() (*T, error)) (*T, error) {
	pc.mu.Lock()
	v, ok := m[key]
	pc.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := parse()
	if err != nil {
		return nil, err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if len(m) >= pc.size {
		clear(m)
	}
	m[key] = v
	return v, nil
}

// AppraisalInput is what the layers appraise.
type AppraisalInput struct {
	// Claims are verified (and, where runtime data was given, bound).
	Claims         *attest.Claims
	Manifest       *manifest.Manifest
	ManifestDigest string
	// Workload is the workload appraised, with the reference values in
	// force (or drafted).
	Workload *manifest.Workload
	// Policies are the workload's policies in order (MissingPolicy for one
	// not set), then any drafts.
	Policies []*Policy
	// Result carries what the caller knows of the token: nonce, subject,
	// runtime data, evidence digest. Claims, status, policy id and hash,
	// workload, model and manifest digest are set here.
	Result token.AttestationResult
	// Issuer is the token's iss (the authority release policies name); TTL
	// its lifetime; Now the time of the appraisal.
	Issuer string
	TTL    time.Duration
	Now    time.Time
	// EveryLayer evaluates every layer even after one denied (dry runs);
	// otherwise the first denial ends the appraisal.
	EveryLayer bool
}

// Appraisal is the outcome: each layer's verdict and the token's claims.
type Appraisal struct {
	Layers []api.LayerVerdict
	// Claims are the token's claims (without iss, iat, nbf, exp, jti,
	// which issuing sets), issued claims included. After a denial in an
	// EveryLayer appraisal they are what the token would have said.
	Claims token.Claims
}

// Permitted reports whether every layer permitted.
func (a *Appraisal) Permitted() bool {
	for _, l := range a.Layers {
		if l.Verdict != api.VerdictPermit {
			return false
		}
	}
	return len(a.Layers) > 0
}

// EvaluateLayers runs the appraisal layers over in. It returns the
// appraisal and the first denial, which wraps policy.ErrDenied and names
// the layer and policy; any other error means the appraisal could not be
// made (and the appraisal is then nil).
func EvaluateLayers(ctx context.Context, in AppraisalInput) (*Appraisal, error) {
	if in.Claims == nil || in.Manifest == nil || in.Workload == nil {
		return nil, errors.New("coordinator: nothing to appraise")
	}
	a := &Appraisal{}
	var first error
	deny := func(layer, name string, err error) {
		a.Layers = append(a.Layers, api.LayerVerdict{Layer: layer, Name: name, Verdict: api.VerdictDeny, Reason: err.Error()})
		if first == nil {
			if !errors.Is(err, policy.ErrDenied) {
				err = fmt.Errorf("%w: %w", policy.ErrDenied, err)
			}
			first = fmt.Errorf("%s layer %q: %w", layer, name, err)
		}
	}
	permit := func(layer, name string) {
		a.Layers = append(a.Layers, api.LayerVerdict{Layer: layer, Name: name, Verdict: api.VerdictPermit})
	}
	wl := in.Workload

	status := token.StatusAffirming
	if _, err := policy.Appraise(in.Claims, in.Manifest, wl); err != nil {
		deny(api.LayerManifest, wl.Name, err)
		if !in.EveryLayer {
			return a, first
		}
		status = token.StatusContraindicated
	} else {
		permit(api.LayerManifest, wl.Name)
	}

	tee := *in.Claims
	tee.Model = string(wl.Model)
	res := in.Result
	res.Claims, res.Status = &tee, status
	res.Workload, res.Model, res.ManifestDigest = wl.Name, string(wl.Model), in.ManifestDigest
	res.PolicyID, res.PolicyHash = policyID(in.ManifestDigest, in.Policies), policyHash(in.Policies)
	res.Issued = nil
	claims, err := token.NewClaims(res)
	if err != nil {
		return nil, err
	}
	// The claims as release policies read them: encoded once (it costs
	// more than evaluating), again only after a policy issued claims.
	var encoded map[string]any
	for _, p := range in.Policies {
		if first != nil && !in.EveryLayer {
			break
		}
		var err error
		switch {
		case p.err != nil:
			err = p.err
		case p.rego != nil:
			err = p.rego.Evaluate(ctx, policy.RegoInput{Claims: &tee, Azure: claims.Azure, Workload: wl, Now: in.Now})
		case p.release != nil:
			if encoded == nil {
				encoded, err = releaseClaims(claims, in.Issuer, in.Now, in.TTL)
			}
			if err == nil {
				err = p.release.Evaluate(in.Issuer, encoded)
			}
		case p.attestation != nil:
			var issued, flat map[string]any
			if flat, err = azureFlatClaims(claims.Azure); err != nil {
				break
			}
			if _, issued, err = p.attestation.Evaluate(flat); err == nil && len(issued) > 0 {
				claims, err = withIssued(&res, claims, issued)
				encoded = nil
			}
		default:
			err = errors.New("the policy was not prepared")
		}
		if err != nil {
			deny(p.layer(), p.Name, err)
			continue
		}
		permit(p.layer(), p.Name)
	}
	a.Claims = claims
	return a, first
}

// withIssued adds the claims an attestation policy issued to the token's,
// refusing to replace any (evidence, trustbound's, or an earlier policy's).
func withIssued(res *token.AttestationResult, claims token.Claims, issued map[string]any) (token.Claims, error) {
	next := *res
	next.Issued = make(map[string]any, len(res.Issued)+len(issued))
	for k, v := range res.Issued {
		next.Issued[k] = v
	}
	for k, v := range issued {
		if _, dup := next.Issued[k]; dup {
			return claims, fmt.Errorf("%w: claim %q was already issued by an earlier policy", policy.ErrDenied, k)
		}
		next.Issued[k] = v
	}
	c, err := token.NewClaims(next)
	if err != nil {
		return claims, fmt.Errorf("%w: %w", policy.ErrDenied, err)
	}
	*res = next
	return c, nil
}

// releaseClaims is the token's claims as a relying party decodes them,
// with iss, iat, nbf, exp and eat_profile as issuing will set them.
func releaseClaims(c token.Claims, issuer string, now time.Time, ttl time.Duration) (map[string]any, error) {
	c.Issuer = issuer
	c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(ttl))
	c.EATProfile = token.EATProfile
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// azureFlatClaims is the Azure claims as an attestation policy sees them:
// one claim per value, the members of nested objects named with dots
// (x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable). Two sources of one
// name (a top-level "a.b" and the member b of a) are refused: which one a
// policy saw would depend on map order.
func azureFlatClaims(azure map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(azure))
	var dups []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			if _, dup := out[prefix+k]; dup {
				dups = append(dups, prefix+k)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", azure)
	if len(dups) > 0 {
		slices.Sort(dups)
		return nil, fmt.Errorf("%w: claim %q has two sources (a dotted name and a nested member)", policy.ErrDenied, dups[0])
	}
	return out, nil
}

// policyHash is x-ms-policy-hash for a workload's policies (see the top
// of this file).
func policyHash(ps []*Policy) string {
	var att, all strings.Builder
	for _, p := range ps {
		if p.err != nil {
			continue
		}
		all.WriteString(p.Text)
		if p.Kind == api.PolicyAttestation {
			att.WriteString(p.Text)
		}
	}
	switch {
	case att.Len() > 0:
		return policy.AttestationPolicyHash(att.String())
	case all.Len() > 0:
		return policy.AttestationPolicyHash(all.String())
	}
	return ""
}

// policyID is ear.appraisal-policy-id: the manifest's digest and each
// policy's name and version ("draft" for one not stored, "unset" for one
// not set).
func policyID(manifestDigest string, ps []*Policy) string {
	var b strings.Builder
	b.WriteString("manifest:" + manifestDigest)
	for _, p := range ps {
		v := "draft"
		switch {
		case errors.Is(p.err, ErrPolicyNotSet):
			v = "unset"
		case p.Version > 0:
			v = fmt.Sprintf("v%d", p.Version)
		}
		fmt.Fprintf(&b, ",policy:%s@%s", p.Name, v)
	}
	return b.String()
}
