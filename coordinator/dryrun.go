package coordinator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/token"
)

// A dry run appraises evidence as /v1/attest would, with draft reference
// values and policies in place of the stored ones, like Azure
// Attestation's draftPolicyForAttestation: it consumes no nonce, checks
// the report data binding only when runtime data is given, evaluates every
// layer even after one denies, and returns the token unsigned (alg
// "none"), which no verifier accepts.

// DryRunInput is what a dry run appraises.
type DryRunInput struct {
	Verifiers *attest.Registry
	// Options verify the evidence (Now, AllowSimulated, SkipCollateral).
	Options        attest.Options
	Manifest       *manifest.Manifest
	ManifestDigest string
	// Workload is the workload with the (draft) reference values.
	Workload *manifest.Workload
	// Policies are the policies to evaluate, in order (ArrangePolicies).
	Policies []*Policy
	Evidence *attest.Evidence
	// Issuer and TTL are those of the tokens the coordinator would issue.
	Issuer string
	TTL    time.Duration
}

// DryRunClaim marks the claims of a dry run's unsigned token.
const DryRunClaim = "x-tb-dry-run"

// DryRun appraises in.Evidence through every layer. Only failures to make
// the appraisal at all are errors; denials are verdicts in the response.
func DryRun(ctx context.Context, in DryRunInput) (*api.DryRunResponse, error) {
	now := in.Options.Now
	out := &api.DryRunResponse{Verdict: api.VerdictDeny}
	claims, err := in.Verifiers.Verify(ctx, in.Evidence, in.Options)
	if err != nil {
		out.Layers = append(out.Layers, api.LayerVerdict{Layer: api.LayerEvidence, Verdict: api.VerdictDeny, Reason: err.Error()})
		return out, nil
	}
	out.Layers = append(out.Layers, api.LayerVerdict{Layer: api.LayerEvidence, Verdict: api.VerdictPermit})

	res := token.AttestationResult{EvidenceDigest: manifest.Digest(in.Evidence.Data)}
	if rd := in.Evidence.RuntimeData; rd != nil {
		bind := api.LayerVerdict{Layer: api.LayerBinding, Verdict: api.VerdictPermit}
		if err := attest.BindsNative(claims.ReportData, rd); err != nil {
			bind.Verdict, bind.Reason = api.VerdictDeny, err.Error()
		} else if _, err := token.ParseRuntime(rd); err != nil {
			bind.Verdict, bind.Reason = api.VerdictDeny, err.Error()
		} else {
			res.Runtime = rd
			var doc struct {
				Nonce string `json:"nonce"`
			}
			if json.Unmarshal(rd, &doc) == nil {
				res.Nonce = doc.Nonce
			}
		}
		out.Layers = append(out.Layers, bind)
	}
	if id, err := identity.SPIFFEID(in.Manifest.TrustDomain, string(in.Workload.Model), in.Workload.Name); err == nil {
		res.Subject = id.String()
	}
	a, err := EvaluateLayers(ctx, AppraisalInput{
		Claims: claims, Manifest: in.Manifest, ManifestDigest: in.ManifestDigest, Workload: in.Workload,
		Policies: in.Policies, Result: res, Issuer: in.Issuer, TTL: in.TTL, Now: now, EveryLayer: true,
	})
	if a == nil {
		return nil, err
	}
	out.Layers = append(out.Layers, a.Layers...)
	if !slices.ContainsFunc(out.Layers, func(l api.LayerVerdict) bool { return l.Verdict != api.VerdictPermit }) {
		out.Verdict = api.VerdictPermit
	}
	c := a.Claims
	c.Issuer = in.Issuer
	c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(in.TTL))
	c.EATProfile = token.EATProfile
	c.Azure = maps.Clone(c.Azure)
	if c.Azure == nil {
		c.Azure = map[string]any{}
	}
	c.Azure[DryRunClaim] = true
	body, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	out.Claims = body
	out.Token = unsignedToken(body)
	return out, nil
}

// unsignedToken is an unsecured JWT (RFC 7519 §6: alg "none", empty
// signature). Token verifiers, trustbound's included, refuse it.
func unsignedToken(claims []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + "."
}

// ArrangePolicies lists the policies a dry run evaluates: those the
// workload names, in order, each the draft of that name if there is one
// and otherwise stored(name); then the other drafts in name order.
func ArrangePolicies(named []string, drafts map[string]*Policy, stored func(name string) (*Policy, error)) ([]*Policy, error) {
	out := make([]*Policy, 0, len(named)+len(drafts))
	for _, n := range named {
		if p, ok := drafts[n]; ok {
			out = append(out, p)
			continue
		}
		p, err := stored(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	for _, n := range slices.Sorted(maps.Keys(drafts)) {
		if !slices.Contains(named, n) {
			out = append(out, drafts[n])
		}
	}
	return out, nil
}

// WithReference returns a copy of m in which workload name has reference
// values ref, validated as a whole, and that workload.
func WithReference(m *manifest.Manifest, name string, ref manifest.Reference) (*manifest.Manifest, *manifest.Workload, error) {
	i := slices.IndexFunc(m.Workloads, func(w manifest.Workload) bool { return w.Name == name })
	if i < 0 {
		return nil, nil, fmt.Errorf("workload %q is not in the manifest", name)
	}
	m2 := *m
	m2.Workloads = slices.Clone(m.Workloads)
	m2.Workloads[i].Reference = ref
	if err := m2.Validate(); err != nil {
		return nil, nil, err
	}
	return &m2, &m2.Workloads[i], nil
}

func (c *Coordinator) handleDryRun(w http.ResponseWriter, r *http.Request) {
	body, ok := c.readBody(w, r)
	if !ok {
		return
	}
	ms, _, ok := c.ownerSigned(w, r, body, http.StatusConflict)
	if !ok {
		return
	}
	var req api.DryRunRequest
	if err := api.DecodeStrict(body, &req); err != nil {
		c.problem(w, r, http.StatusBadRequest, "Malformed request", err)
		return
	}
	m, wl := ms.parsed, (*manifest.Workload)(nil)
	if wl, ok = m.Workload(req.Workload); !ok {
		c.problem(w, r, http.StatusNotFound, "Unknown workload", fmt.Errorf("workload %q is not in the manifest", req.Workload))
		return
	}
	drafts := map[string]*Policy{}
	if d := req.Draft; d != nil {
		if len(d.Reference) > 0 {
			var ref manifest.Reference
			err := api.DecodeStrict(d.Reference, &ref)
			if err == nil {
				m, wl, err = WithReference(m, wl.Name, ref)
			}
			if err != nil {
				c.problem(w, r, http.StatusBadRequest, "Invalid draft reference", err)
				return
			}
		}
		for name, text := range d.Policies {
			err := checkPolicyName(name)
			var p *Policy
			if err == nil {
				p, err = c.policies.Prepare(r.Context(), name, "", text)
			}
			if err != nil {
				c.problem(w, r, http.StatusBadRequest, "Policy refused", err)
				return
			}
			drafts[name] = p
		}
	}
	pols, err := ArrangePolicies(wl.Policies, drafts, func(n string) (*Policy, error) { return c.preparedPolicy(r.Context(), n) })
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Policies unavailable", err)
		return
	}
	resp, err := DryRun(r.Context(), DryRunInput{
		Verifiers: c.cfg.Verifiers, Options: attest.Options{Now: c.now(), AllowSimulated: m.AllowSimulated},
		Manifest: m, ManifestDigest: ms.Digest, Workload: wl, Policies: pols, Evidence: &req.Evidence,
		Issuer: c.cfg.Issuer, TTL: c.cfg.TokenTTL,
	})
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Dry run failed", err)
		return
	}
	writeJSON(w, resp)
}
