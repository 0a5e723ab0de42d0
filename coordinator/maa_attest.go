package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/policy"
	"github.com/trustbound/trustbound/token"
)

// POST /attest/{type}: evidence → verification → Azure's binding rules →
// the Azure attestation policy of the type → a token with Azure's claim
// names, answered as {"token": "<JWT>"}.
//
// What Azure documents and this follows (Azure's REST API models as its
// SDKs generate them, its troubleshooting guide and claim sets pages):
//   - refusals are HTTP 400 with {"error": {"code", "message"}}: code
//     InvalidParameter for evidence that does not verify or bind,
//     PolicyEvaluationError when the policy denies, PolicyParsingError for a
//     draft policy that does not parse (Azure's troubleshooting guide);
//   - with draftPolicyForAttestation the token is unsecured (alg "none"):
//     it shows what the draft would issue and verifies nowhere;
//   - JSON runtime data is
//     x-ms-runtime and JSON init-time data x-ms-inittime; for SGX enclaves
//     x-ms-sgx-ehd is BASE64URL(runtime data), whatever its type; the
//     policy's issued claims are at the top level and under x-ms-policy;
//     x-ms-policy-hash hashes the policy text that decided.
//
// Where trustbound decides:
//   - with no policy set for a type, the policy is maaDefaultPolicy (permit
//     every verified evidence, issue nothing): Azure's defaults also permit
//     all, but are version 1.1 policies whose configuration rules are
//     outside the supported subset;
//   - the request's nonce is the token's "nonce" only when the evidence
//     binds it (the bound runtimeData is a JSON object whose member
//     "nonce" is it); otherwise it is x-ms-request-nonce, bound to nothing;
//   - simulated evidence is refused unless Config.AzureAllowSimulated, and
//     is never compliant;
//   - issued claim names are plain: no ".", no x-ms- or x-tb- prefix;
//   - x-ms-compliance-status means "compliant with the owner's manifest":
//     azure-compliant-cvm when the verified claims pass the manifest's
//     appraisal for one of its confidential-vm workloads,
//     azure-compliant-uvm for one of its confidential-container workloads,
//     absent otherwise (and absent without a manifest). Azure's own meaning
//     is compliance with Azure's baseline, which only Azure can state;
//   - the token's EAR status is "affirming" when the claims passed the
//     manifest's appraisal of a workload (the compliance above), "none"
//     otherwise, whatever the Azure policy decided; tokens of this
//     surface carry no x-tb-manifest-digest and no workload, so /v1/release
//     refuses them: they are for relying parties written for Azure.

// maaDefaultPolicy is the policy of a type no owner has set a policy for.
const maaDefaultPolicy = "version=1.0;\nauthorizationrules\n{\n\t=> permit();\n};\nissuancerules\n{\n};\n"

// maaMaxNonce bounds the request's nonce, which is copied into the token.
const maaMaxNonce = 1024

// maaFailure is a refusal of the Azure surface: HTTP status, Azure error
// code, and the reason.
type maaFailure struct {
	status int
	code   string
	err    error
}

func (f *maaFailure) Error() string { return f.code + ": " + f.err.Error() }
func (f *maaFailure) Unwrap() error { return f.err }

func maaFail(status int, code string, err error) *maaFailure {
	return &maaFailure{status: status, code: code, err: err}
}

// Azure Attestation's error codes (its troubleshooting guide), and
// trustbound's for what Azure does not name.
const (
	maaInvalidParameter = "InvalidParameter"
	maaPolicyEvaluation = "PolicyEvaluationError"
	maaPolicyParsing    = "PolicyParsingError"
	maaInvalidOperation = "InvalidOperation"
	maaUnauthorized     = "Unauthorized"
	maaRequestTooLarge  = "RequestTooLarge"
	maaInternal         = "InternalError"
)

// maaRefuse writes Azure's error body. Messages are error texts, which
// never carry secret values.
func (c *Coordinator) maaRefuse(w http.ResponseWriter, r *http.Request, f *maaFailure) {
	c.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "status", f.status, "reason", f.code, "err", f.err)
	writeAzureError(w, "application/json", f.status, f.code, f.err)
}

// maaPrelude checks the path's attestation type and the query (only
// api-version, whose value is not checked) and reads the bounded body.
func (c *Coordinator) maaPrelude(w http.ResponseWriter, r *http.Request) (kind string, body []byte, f *maaFailure) {
	kind = r.PathValue("type")
	if _, ok := maaTypes[kind]; !ok {
		return "", nil, maaFail(http.StatusBadRequest, maaInvalidParameter,
			fmt.Errorf("unknown attestation type %q (SgxEnclave, OpenEnclave, SevSnpVm, TdxVm, AzureGuest)", kind))
	}
	for name := range r.URL.Query() {
		if name != "api-version" {
			return "", nil, maaFail(http.StatusBadRequest, maaInvalidParameter, fmt.Errorf("unknown query parameter %q (only api-version is accepted)", name))
		}
	}
	body, err := readLimited(w, r, api.MaxBody)
	if err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			return "", nil, maaFail(http.StatusRequestEntityTooLarge, maaRequestTooLarge, fmt.Errorf("the body may be at most %d bytes", api.MaxBody))
		}
		return "", nil, maaFail(http.StatusBadRequest, maaInvalidParameter, err)
	}
	return kind, body, nil
}

func (c *Coordinator) handleMAAAttest(w http.ResponseWriter, r *http.Request) {
	kind, body, f := c.maaPrelude(w, r)
	if f != nil {
		c.maaRefuse(w, r, f)
		return
	}
	tok, f := c.maaAttest(r, kind, body)
	if f != nil {
		c.maaRefuse(w, r, f)
		return
	}
	writeJSON(w, map[string]string{"token": tok})
}

// maaDecided is the policy an attestation is decided by.
type maaDecided struct {
	policy *policy.AttestationPolicy
	text   string
	id     string // ear.appraisal-policy-id
	draft  bool
}

// maaPolicyFor settles the policy an attestation of kind is decided by:
// the draft when the request carries one, else the owner's policy of the
// type, else maaDefaultPolicy.
func (c *Coordinator) maaPolicyFor(r *http.Request, kind, draft string) (*maaDecided, *maaFailure) {
	name := azurePolicyName(kind)
	if draft != "" {
		// Anyone may send a draft: it is parsed for this request only and
		// never enters the shared policy cache, which it could flush.
		p, err := policy.ParseAttestationPolicy(draft)
		if err != nil {
			return nil, maaFail(http.StatusBadRequest, maaPolicyParsing, fmt.Errorf("draftPolicyForAttestation: %w", err))
		}
		return &maaDecided{policy: p, text: draft, id: name + "@draft", draft: true}, nil
	}
	p, err := c.preparedPolicy(r.Context(), name)
	switch {
	case err != nil:
		return nil, maaFail(http.StatusInternalServerError, maaInternal, err)
	case errors.Is(p.err, ErrPolicyNotSet):
		def, err := c.policies.Prepare(r.Context(), name, api.PolicyAttestation, maaDefaultPolicy)
		if err != nil {
			return nil, maaFail(http.StatusInternalServerError, maaInternal, err)
		}
		return &maaDecided{policy: def.attestation, text: maaDefaultPolicy, id: name + "@default"}, nil
	case p.err != nil || p.attestation == nil:
		// Stored through /v1/policies as another kind, or no longer
		// prepared: it denies.
		why := p.err
		if why == nil {
			why = fmt.Errorf("it is a %s policy, not Azure attestation policy text", p.Kind)
		}
		return nil, maaFail(http.StatusBadRequest, maaPolicyEvaluation, fmt.Errorf("policy %s@v%d: %w", name, p.Version, why))
	}
	return &maaDecided{policy: p.attestation, text: p.Text, id: fmt.Sprintf("%s@v%d", name, p.Version)}, nil
}

// maaAttest is the trust path of one Azure attest request.
func (c *Coordinator) maaAttest(r *http.Request, kind string, body []byte) (string, *maaFailure) {
	now := c.now()
	bad := func(err error) (string, *maaFailure) {
		return "", maaFail(http.StatusBadRequest, maaInvalidParameter, err)
	}
	var req maaRequest
	if err := api.DecodeStrict(body, &req); err != nil {
		return bad(fmt.Errorf("request: %w", err))
	}
	if len(req.Nonce) > maaMaxNonce {
		return bad(fmt.Errorf("nonce is %d bytes, at most %d are accepted", len(req.Nonce), maaMaxNonce))
	}
	ev, err := maaEvidence(kind, &req)
	if err != nil {
		return bad(err)
	}
	runtime, err := req.RuntimeData.bytes("runtimeData")
	if err != nil {
		return bad(err)
	}
	initTime, err := req.InitTimeData.bytes("initTimeData")
	if err != nil {
		return bad(err)
	}
	// JSON runtime and init-time data become x-ms-runtime and
	// x-ms-inittime: JSON objects, no member name twice, keys with kid and
	// kty (token.ParseRuntime).
	var runtimeDoc, initTimeDoc []byte
	if req.RuntimeData != nil && req.RuntimeData.DataType == "JSON" {
		if _, err := token.ParseRuntime(runtime); err != nil {
			return bad(fmt.Errorf("runtimeData: %w", err))
		}
		runtimeDoc = runtime
	}
	if req.InitTimeData != nil && req.InitTimeData.DataType == "JSON" {
		it, err := token.ParseRuntime(initTime)
		if err != nil {
			return bad(fmt.Errorf("initTimeData: %w", err))
		}
		initTimeDoc = it.Doc
	}

	// The policy is settled before the evidence is looked at, so that a
	// draft that does not parse costs no verification.
	decided, f := c.maaPolicyFor(r, kind, req.DraftPolicyForAttestation)
	if f != nil {
		return "", f
	}

	// Simulated evidence is signed by public keys, and relying parties
	// written for Azure read neither x-tb-simulated nor the EAR status: it
	// is accepted here only when the operator enables it for this surface
	// (AzureAllowSimulated) and the manifest allows simulation.
	ms := c.manifestInForce()
	allowSim := c.cfg.AzureAllowSimulated && ms != nil && ms.parsed.AllowSimulated
	claims, err := c.cfg.Verifiers.Verify(r.Context(), ev, attest.Options{Now: now, AllowSimulated: allowSim})
	if err != nil {
		if errors.Is(err, attest.ErrSimulated) && !c.cfg.AzureAllowSimulated {
			err = fmt.Errorf("%w (the Azure surface refuses simulated evidence unless the coordinator runs with --azure-allow-simulated)", err)
		}
		return bad(fmt.Errorf("evidence refused: %w", err))
	}
	if claims.Simulated && !allowSim {
		return bad(fmt.Errorf("evidence refused: %w", attest.ErrSimulated))
	}
	if err := maaBinding(claims, runtime, initTime); err != nil {
		return bad(err)
	}
	// The request's nonce is "nonce" only when the evidence binds it;
	// otherwise it is echoed as x-ms-request-nonce, which attests nothing.
	nonceBound := req.Nonce != "" && maaNonceBound(runtime, req.Nonce)

	// The incoming claims: what the evidence established, under Azure's
	// names, with what this request and trustbound add.
	hash := policy.AttestationPolicyHash(decided.text)
	extra := map[string]any{"x-ms-ver": token.AzureVersion, "x-ms-policy-hash": hash}
	if claims.TEE == attest.SGX && req.RuntimeData != nil {
		extra["x-ms-sgx-ehd"] = base64.RawURLEncoding.EncodeToString(runtime)
	}
	if req.Nonce != "" && !nonceBound {
		extra["x-ms-request-nonce"] = req.Nonce
	}
	compliance, err := c.maaCompliance(r.Context(), claims, ms, now)
	if err != nil {
		return "", maaFail(http.StatusInternalServerError, maaInternal, fmt.Errorf("appraising against the manifest: %w", err))
	}
	incoming := token.AzureClaims(claims)
	if incoming == nil {
		return "", maaFail(http.StatusInternalServerError, maaInternal, fmt.Errorf("no Azure claim names for %s evidence", claims.TEE))
	}
	if err := maaAddClaims(incoming, extra, compliance); err != nil {
		return "", maaFail(http.StatusInternalServerError, maaInternal, err)
	}
	flat, err := azureFlatClaims(incoming)
	if err != nil {
		return bad(fmt.Errorf("evidence refused: %w", err))
	}
	permitted, issued, err := decided.policy.Evaluate(flat)
	if err != nil || !permitted {
		if err == nil {
			err = policy.ErrDenied
		}
		return "", maaFail(http.StatusBadRequest, maaPolicyEvaluation, fmt.Errorf("policy %s: %w", decided.id, err))
	}
	if err := maaCheckIssued(issued); err != nil {
		return "", maaFail(http.StatusBadRequest, maaPolicyEvaluation, fmt.Errorf("policy %s: %w", decided.id, err))
	}

	// The EAR status claims only the appraisal that ran: "affirming" when
	// the claims passed the manifest's appraisal of one of its workloads
	// (maaCompliance), "none" otherwise, whatever the Azure policy decided
	// (it appraises nothing against reference values).
	status := token.StatusNone
	if compliance != "" {
		status = token.StatusAffirming
	}
	nonce := ""
	if nonceBound {
		nonce = req.Nonce
	}
	res := token.AttestationResult{
		Claims:         claims,
		Status:         status,
		PolicyID:       decided.id,
		PolicyHash:     hash,
		Nonce:          nonce,
		EvidenceDigest: manifest.Digest(ev.Data),
		Issued:         issued,
		Runtime:        runtimeDoc,
	}
	tc, err := token.NewClaims(res)
	if err != nil {
		// The runtime document was checked above: what is left is an
		// issued claim that would replace one of the evidence's.
		return "", maaFail(http.StatusBadRequest, maaPolicyEvaluation, fmt.Errorf("policy %s: %w", decided.id, err))
	}
	// The token's Azure claims: extra less x-ms-ver and x-ms-policy-hash,
	// which tc carries as fields, plus the policy's issued claims and the
	// init-time document.
	delete(extra, "x-ms-ver")
	delete(extra, "x-ms-policy-hash")
	if len(issued) > 0 {
		extra["x-ms-policy"] = issued
	}
	if initTimeDoc != nil {
		extra["x-ms-inittime"] = json.RawMessage(initTimeDoc)
	}
	if err := maaAddClaims(tc.Azure, extra, compliance); err != nil {
		return "", maaFail(http.StatusBadRequest, maaPolicyEvaluation, fmt.Errorf("policy %s: %w", decided.id, err))
	}

	var tok string
	if decided.draft {
		tok, err = c.maaUnsigned(tc, now)
	} else {
		var iss *token.Issuer
		if iss, err = c.maaIssuer(); err == nil {
			tok, err = iss.Issue(tc, now)
		}
	}
	if err != nil {
		return "", maaFail(http.StatusInternalServerError, maaInternal, fmt.Errorf("token not issued: %w", err))
	}
	c.log.Info("azure attestation", "type", kind, "tee", claims.TEE, "simulated", claims.Simulated, "policy", decided.id, "compliance", compliance)
	return tok, nil
}

// maaAddClaims adds extra to claims (Azure names), refusing to replace
// one, and the compliance status, nested under x-ms-isolation-tee for
// Azure CVM guest evidence as Azure nests it.
func maaAddClaims(claims, extra map[string]any, compliance string) error {
	for name, v := range extra {
		if _, ok := claims[name]; ok {
			return fmt.Errorf("claim %q would be set twice (the policy may not issue it)", name)
		}
		claims[name] = v
	}
	if compliance == "" {
		return nil
	}
	at := claims
	if tee, ok := claims["x-ms-isolation-tee"].(map[string]any); ok {
		at = tee
	}
	if _, ok := at["x-ms-compliance-status"]; ok {
		return errors.New(`claim "x-ms-compliance-status" would be set twice`)
	}
	at["x-ms-compliance-status"] = compliance
	return nil
}

// maaCompliance is trustbound's x-ms-compliance-status: whether the
// verified claims pass the manifest's whole appraisal (EvaluateLayers: its
// reference values and the policies the workload names) for some
// confidential-vm workload (azure-compliant-cvm) or else some
// confidential-container workload (azure-compliant-uvm); "" otherwise.
//
// Simulated claims are never compliant: Azure-written release policies
// read x-ms-compliance-status alone, and simulated evidence can be forged
// by anyone (its keys are public).
func (c *Coordinator) maaCompliance(ctx context.Context, claims *attest.Claims, ms *manifestState, now time.Time) (string, error) {
	if ms == nil || claims.Simulated {
		return "", nil
	}
	for _, kind := range []struct {
		model  manifest.Model
		status string
	}{{manifest.ConfidentialVM, "azure-compliant-cvm"}, {manifest.ConfidentialContainer, "azure-compliant-uvm"}} {
		for i := range ms.parsed.Workloads {
			wl := &ms.parsed.Workloads[i]
			if wl.Model != kind.model || wl.TEE != claims.TEE {
				continue
			}
			ps, err := c.workloadPolicies(ctx, wl.Policies)
			if err != nil {
				return "", err
			}
			cc := *claims
			a, err := EvaluateLayers(ctx, AppraisalInput{Claims: &cc, Manifest: ms.parsed, ManifestDigest: ms.Digest, Workload: wl,
				Policies: ps, Issuer: c.cfg.Issuer, TTL: c.cfg.TokenTTL, Now: now})
			switch {
			case err == nil && a.Permitted():
				return kind.status, nil
			case err != nil && !errors.Is(err, policy.ErrDenied):
				return "", err
			}
		}
	}
	return "", nil
}

// maaNonceBound reports whether runtime (bound by the evidence's report
// data, maaBinding) is a JSON object whose member "nonce" is the string
// nonce.
func maaNonceBound(runtime []byte, nonce string) bool {
	if runtime == nil {
		return false
	}
	if _, err := token.ParseRuntime(runtime); err != nil { // a JSON object, no member twice
		return false
	}
	var doc struct {
		Nonce *string `json:"nonce"`
	}
	if err := json.Unmarshal(runtime, &doc); err != nil || doc.Nonce == nil {
		return false
	}
	return *doc.Nonce == nonce
}

// maaReservedIssued are the claims only trustbound sets, which a policy
// may not issue.
var maaReservedIssued = []string{"x-ms-policy", "x-ms-inittime", "x-ms-sgx-ehd", "x-ms-compliance-status", "x-ms-request-nonce"}

// maaCheckIssued refuses issued claims a relying party could mistake for
// the evidence's or trustbound's (token.CheckIssuedName: dotted names, the
// prefixes x-ms- and x-tb-), and those trustbound sets on this surface.
func maaCheckIssued(issued map[string]any) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(issued)) {
		if slices.Contains(maaReservedIssued, name) {
			errs = append(errs, fmt.Errorf("issues %s, which is trustbound's to set", name))
		} else if err := token.CheckIssuedName(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maaUnsigned serialises claims as an unsecured JWT (alg "none"), as
// Azure answers attestations under a draft policy: the claims a signed
// token would carry, verifiable by no key.
func (c *Coordinator) maaUnsigned(tc token.Claims, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	tc.Issuer = c.cfg.Issuer
	tc.IssuedAt = jwt.NewNumericDate(now)
	tc.NotBefore = jwt.NewNumericDate(now)
	tc.Expiry = jwt.NewNumericDate(now.Add(c.cfg.TokenTTL))
	tc.ID = hex.EncodeToString(jti)
	tc.EATProfile = token.EATProfile
	payload, err := json.Marshal(tc)
	if err != nil {
		return "", err
	}
	return unsignedToken(payload), nil
}

// maaIssuer is the issuer of the Azure surface: RS256, as Azure
// Attestation signs, over the coordinator's one keyring (so /certs
// publishes its keys).
func (c *Coordinator) maaIssuer() (*token.Issuer, error) {
	iss := c.issuer(token.RS256)
	if iss == nil {
		return nil, errors.New("no RS256 token issuer")
	}
	return iss, nil
}
