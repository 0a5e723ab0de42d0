package coordinator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/internal/coordtest"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/policy"
	"github.com/trustbound/trustbound/store"
)

// urlHarness is the harness of coordinator_test.go with the issuer name
// the test server's own URL, as `trustbound serve` sets it, so that OpenID
// discovery works; it keeps what a restart needs.
type urlHarness struct {
	*harness
	url    string
	sealer *keybroker.Sealer
	reg    *attest.Registry
}

func newURLHarness(t *testing.T, edit func(*manifest.Manifest)) *urlHarness {
	t.Helper()
	st, sealer, reg := coordtest.State(t)
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	clk := &clock{t: time.Now().UTC()}
	c, err := coordinator.New(context.Background(), coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg, Now: clk.now, Issuer: srv.URL, BootstrapToken: []byte(testBootstrap)})
	if err != nil {
		t.Fatal(err)
	}
	handler = c.Handler()
	h := &harness{t: t, clock: clk, coord: c, client: agent.NewClient(srv.URL, srv.Client()), st: st}
	h.owner, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h.m = sampleManifest(t, &h.owner.PublicKey)
	if edit != nil {
		edit(h.m)
	}
	if _, err := h.client.SetManifest(context.Background(), h.ownerOf(), rawManifest(t, h.m), []byte(testBootstrap)); err != nil {
		t.Fatalf("setting manifest: %v", err)
	}
	return &urlHarness{harness: h, url: srv.URL, sealer: sealer, reg: reg}
}

// attestReq makes fresh evidence for workload w from tee.
func (h *harness) attestReq(w manifest.Workload) (*agent.Identity, *api.AttestRequest) {
	h.t.Helper()
	id, err := agent.NewIdentity()
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := id.Evidence(context.Background(), h.client, tee(w), w.Name)
	if err != nil {
		h.t.Fatal(err)
	}
	return id, req
}

// token attests workload name and returns its token.
func (h *harness) token(name string) string {
	h.t.Helper()
	_, req := h.attestReq(h.workload(name))
	ar, err := h.client.Attest(context.Background(), req)
	if err != nil {
		h.t.Fatalf("attest %s: %v", name, err)
	}
	return ar.Token
}

func (h *harness) setPolicy(name, text string) *api.SetPolicyResponse {
	h.t.Helper()
	res, err := h.client.SetPolicy(context.Background(), h.ownerOf(), name, []byte(text))
	if err != nil {
		h.t.Fatalf("setting policy %s: %v", name, err)
	}
	return res
}

// jwtPart decodes part i (0 header, 1 claims) of a compact JWT.
func jwtPart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func jwksKids(t *testing.T, url string) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	getJSON(t, url+api.PathCerts, &set)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Alg+":"+k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// A token from /v1/attest is verified by go-oidc through discovery alone,
// and carries the workload's SPIFFE ID, the nonce and its runtime data.
func TestTokensVerifyThroughDiscovery(t *testing.T) {
	h := newURLHarness(t, nil)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, h.url)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: h.clock.now})
	w := h.workload("ledger-vm")
	_, req := h.attestReq(w)
	ar, err := h.client.Attest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := verifier.Verify(ctx, ar.Token)
	if err != nil {
		t.Fatalf("go-oidc refused the token: %v", err)
	}
	var got map[string]any
	if err := tok.Claims(&got); err != nil {
		t.Fatal(err)
	}
	rd, _ := api.ParseRuntimeData(req.Evidence.RuntimeData)
	var runtime map[string]any
	json.Unmarshal(req.Evidence.RuntimeData, &runtime)
	rt, _ := got["x-ms-runtime"].(map[string]any)
	if tok.Subject != "spiffe://"+h.m.TrustDomain+"/confidential-vm/ledger-vm" || tok.Nonce != rd.Nonce ||
		got["x-tb-workload"] != "ledger-vm" || got["x-ms-attestation-type"] != "sevsnpvm" || rt["nonce"] != rd.Nonce ||
		len(rt["keys"].([]any)) != len(rd.Keys) || rt["workload"] != "ledger-vm" {
		t.Errorf("claims: sub %q nonce %q %v", tok.Subject, tok.Nonce, got)
	}
	if _, ok := got["x-ms-policy-hash"]; ok {
		t.Error("x-ms-policy-hash without policies")
	}
	if h := jwtPart(t, ar.Token, 0); h["alg"] != "ES256" {
		t.Errorf("native token header %v", h)
	}
	// Discovery names both algorithms; /certs publishes both keys.
	var disc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSON(t, h.url+api.PathOpenIDConfiguration, &disc)
	if disc.Issuer != h.url || disc.JWKSURI != h.url+"/certs" || !slices.Equal(disc.Algs, []string{"ES256", "RS256"}) {
		t.Errorf("discovery %+v", disc)
	}
	if kids := jwksKids(t, h.url); len(kids) != 2 {
		t.Errorf("JWKS %v, want one ES256 and one RS256 key", kids)
	}
}

// A rotation makes new keys current and keeps the old ones published
// until the tokens they signed have expired; the keyring survives a
// restart, and a single token key of an earlier version is moved into it.
func TestTokenKeyRotation(t *testing.T) {
	h := newURLHarness(t, nil)
	ctx := context.Background()
	before := jwksKids(t, h.url)
	old := h.token("signer")
	if err := h.coord.RotateTokenKeys(ctx, h.clock.now()); err != nil {
		t.Fatal(err)
	}
	rotatedAt := h.clock.now()
	if got := h.coord.TokenKeysRotatedAt(); !got.Equal(rotatedAt) {
		t.Errorf("rotated at %v, want %v", got, rotatedAt)
	}
	all := jwksKids(t, h.url)
	if len(all) != 4 {
		t.Fatalf("after rotation JWKS %v, want the 2 new keys and the 2 old", all)
	}
	fresh := h.token("signer")
	if jwtPart(t, fresh, 0)["kid"] == jwtPart(t, old, 0)["kid"] {
		t.Fatal("the token after rotation is signed by the old key")
	}
	// The old token is still released until it expires.
	h.clock.advance(4 * time.Minute)
	for name, tok := range map[string]string{"old": old, "fresh": fresh} {
		if _, err := h.client.Release(ctx, &api.ReleaseRequest{Token: tok}); err != nil {
			t.Errorf("%s token refused: %v", name, err)
		}
	}
	// Restart on the same store, with a longer token lifetime: the same keys.
	c2, err := coordinator.New(ctx, coordinator.Config{Store: h.st, Sealer: h.sealer, Verifiers: h.reg, Now: h.clock.now, Issuer: h.url,
		BootstrapToken: []byte(testBootstrap), TokenTTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(c2.Handler())
	defer srv2.Close()
	if got := jwksKids(t, srv2.URL); !slices.Equal(got, all) {
		t.Errorf("after restart JWKS %v, want %v", got, all)
	}
	// Once every old token has expired, the old keys are retired.
	h.clock.advance(time.Minute + time.Second)
	after := jwksKids(t, h.url)
	if len(after) != 2 || slices.Equal(after, before) {
		t.Errorf("after the old tokens' expiry JWKS %v (before rotation %v)", after, before)
	}
	_, err = h.client.Release(ctx, &api.ReleaseRequest{Token: old})
	wantProblem(t, err, http.StatusUnauthorized, "is not a published token key")

	// Migration: a store holding only the single sealed ES256 token key
	// of an earlier version.
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "old.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	legacy, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(legacy)
	sealed, _ := h.sealer.Seal("coordinator/token-key", der)
	if _, err := store.Put(ctx, st, "coordinator/token-key", sealed, 0); err != nil {
		t.Fatal(err)
	}
	c3, err := coordinator.New(ctx, coordinator.Config{Store: st, Sealer: h.sealer, Verifiers: h.reg, Issuer: "https://old.test", BootstrapToken: []byte(testBootstrap)})
	if err != nil {
		t.Fatal(err)
	}
	srv3 := httptest.NewServer(c3.Handler())
	defer srv3.Close()
	jwk := map[string]any{"crv": "P-256", "kty": "EC"}
	pub, _ := api.NewJWK("", "", &legacy.PublicKey)
	jwk["x"], jwk["y"] = pub.X, pub.Y
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, srv3.URL+api.PathCerts, &set)
	if len(set.Keys) != 2 || !slices.ContainsFunc(set.Keys, func(k map[string]any) bool { return k["x"] == pub.X && k["y"] == pub.Y && k["alg"] == "ES256" }) {
		t.Errorf("the earlier token key is not the current ES256 key: %v", set.Keys)
	}
	if _, err := st.Get(ctx, "coordinator/token-key"); err == nil {
		t.Error("the earlier token key is still stored beside the keyring")
	}
}

const (
	denyLedgerRego = `package trustbound

default allow := false

allow if input.workload.name != "ledger-vm"

deny contains "no ledger today" if input.workload.name == "ledger-vm"
`
	permitRego = `package trustbound

allow if {
	input.azure["x-ms-sevsnpvm-is-debuggable"] == false
	input.claims.measurement in input.reference.measurements
}
`
)

// Policies are refused at upload with their parser's error, and by
// anyone but an owner; accepted ones are versioned.
func TestPolicyUpload(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	for name, tc := range map[string]struct{ text, want string }{
		"rego syntax":          {"package trustbound\n\nallow if {\n", "rego policy \"bad\" is refused"},
		"rego wrong package":   {"package other\n\nallow := true\n", "rego"},
		"release version":      {`{"version":"2.0.0","anyOf":[{"authority":"https://a.test","allOf":[{"claim":"x","equals":"y"}]}]}`, `version "2.0.0" is not supported`},
		"release operator":     {`{"version":"1.0.0","anyOf":[{"authority":"https://a.test","allOf":[{"claim":"x","matches":"y"}]}]}`, "$.anyOf[0].allOf[0]"},
		"release array value":  {`{"version":"1.0.0","anyOf":[{"authority":"https://a.test","allOf":[{"claim":"x","equals":["y"]}]}]}`, "release policy: $.anyOf[0].allOf[0]"},
		"attestation action":   {"version=1.0; authorizationrules { => allow(); };", "attestation policy: line 1"},
		"attestation version":  {"version=1.2; authorizationrules { => permit(); };", "attestation policy: line 1"},
		"attestation comments": {"version=1.0;\n// hi\nauthorizationrules { => permit(); };", "attestation policy: line 2"},
		"unknown kind":         {"allow everything", "not a policy this coordinator reads"},
		"empty":                {"", "not a policy this coordinator reads"},
	} {
		_, err := h.client.SetPolicy(ctx, h.ownerOf(), "bad", []byte(tc.text))
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Title != "Policy refused" || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("%s: %v, want 400 Policy refused naming %q", name, err, tc.want)
		}
	}
	_, err := h.client.SetPolicy(ctx, h.ownerOf(), "Bad", []byte(permitRego))
	wantProblem(t, err, http.StatusBadRequest, `invalid policy name "Bad"`)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = h.client.SetPolicy(ctx, agent.Owner{Name: h.m.Owners[0].Name, Key: stranger}, "gate", []byte(permitRego))
	wantProblem(t, err, http.StatusUnauthorized, "does not verify")
	_, err = h.client.SetPolicy(ctx, agent.Owner{Name: "mallory", Key: stranger}, "gate", []byte(permitRego))
	wantProblem(t, err, http.StatusUnauthorized, "not an owner")
	if _, err := h.client.Policy(ctx, h.ownerOf(), "bad"); err == nil {
		t.Fatal("a refused policy was stored")
	}

	v1 := h.setPolicy("gate", permitRego)
	v2 := h.setPolicy("gate", denyLedgerRego)
	again := h.setPolicy("gate", denyLedgerRego)
	if v1.Version != 1 || v1.Kind != "rego" || v2.Version != 2 || again.Version != 2 || again.Hash != v2.Hash {
		t.Errorf("versions %+v %+v %+v", v1, v2, again)
	}
	got, err := h.client.Policy(ctx, h.ownerOf(), "gate")
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != denyLedgerRego || got.Version != 2 || got.Kind != "rego" || got.SetBy != h.m.Owners[0].Name || len(got.Versions) != 2 ||
		got.Versions[0].Hash != v1.Hash || got.Versions[1].Hash != v2.Hash {
		t.Errorf("policy %+v", got)
	}
	_, err = h.client.Policy(ctx, agent.Owner{Name: h.m.Owners[0].Name, Key: stranger}, "gate")
	wantProblem(t, err, http.StatusUnauthorized, "does not verify")
	resp, err := http.Get(h.clientURL() + api.PathPolicies + "gate")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET: HTTP %d", resp.StatusCode)
	}
	_, err = h.client.Policy(ctx, h.ownerOf(), "never-set")
	wantProblem(t, err, http.StatusNotFound, "not set")

	// Each kind is detected.
	for name, kind := range map[string]string{
		"kv":  h.setPolicy("kv", releasePolicy("https://coordinator.test", "ledger-vm")).Kind,
		"maa": h.setPolicy("maa", "version=1.0; authorizationrules { => permit(); };").Kind,
	} {
		if want := map[string]string{"kv": "release", "maa": "attestation"}[name]; kind != want {
			t.Errorf("%s detected as %s, want %s", name, kind, want)
		}
	}
}

func releasePolicy(authority, workload string) string {
	return `{"version": "1.0.0", "anyOf": [{"authority": "` + authority + `", "allOf": [
		{"claim": "x-tb-workload", "equals": "` + workload + `"},
		{"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false},
		{"claim": "x-ms-sevsnpvm-vmpl", "lessOrEquals": 0},
		{"claim": "x-ms-runtime.workload", "exists": true}]}]}`
}

// withPolicies makes the sample's workloads name policies.
func withPolicies(byWorkload map[string][]string) func(*manifest.Manifest) {
	return func(m *manifest.Manifest) {
		for i := range m.Workloads {
			m.Workloads[i].Policies = byWorkload[m.Workloads[i].Name]
		}
	}
}

// A workload's policies decide after its reference values, in order: one
// that is not set denies, a Rego policy that denies names itself, and a
// permitting version lets the workload through.
func TestRegoAndMissingPolicies(t *testing.T) {
	h := newHarness(t, withPolicies(map[string][]string{"ledger-vm": {"gate"}, "signer": {"gate"}}))
	h.setUserSecrets()
	ctx := context.Background()
	_, req := h.attestReq(h.workload("ledger-vm"))
	_, err := h.client.Attest(ctx, req)
	wantProblem(t, err, http.StatusForbidden, `policy layer "gate": appraisal denied: policy is not set: "gate"`)

	h.setPolicy("gate", denyLedgerRego)
	_, req = h.attestReq(h.workload("ledger-vm"))
	_, err = h.client.Attest(ctx, req)
	wantProblem(t, err, http.StatusForbidden, `rego layer "gate"`)
	wantProblem(t, err, http.StatusForbidden, "no ledger today")
	// The same policy permits another workload.
	if _, _, err := agent.Run(ctx, h.client, tee(h.workload("signer")), "signer"); err != nil {
		t.Fatalf("signer: %v", err)
	}
	h.setPolicy("gate", permitRego)
	if _, _, err := agent.Run(ctx, h.client, tee(h.workload("ledger-vm")), "ledger-vm"); err != nil {
		t.Fatalf("ledger-vm under the permitting version: %v", err)
	}
	// The manifest layer still comes first.
	sim := tee(h.workload("ledger-vm")).(*simtee.SNP)
	sim.Measurement[0] ^= 1
	_, _, err = agent.Run(ctx, h.client, sim, "ledger-vm")
	wantProblem(t, err, http.StatusForbidden, `manifest layer "ledger-vm"`)
}

// A Key Vault release policy over the token's claims, with the coordinator
// as authority, permits the workload it pins and denies another.
func TestReleasePolicyOverTokenClaims(t *testing.T) {
	h := newHarness(t, withPolicies(map[string][]string{"ledger-vm": {"kv"}, "web": {"kv"}}))
	h.setUserSecrets()
	h.setPolicy("kv", releasePolicy("https://coordinator.test/", "ledger-vm"))
	ctx := context.Background()
	_, res, err := agent.Run(ctx, h.client, tee(h.workload("ledger-vm")), "ledger-vm")
	if err != nil {
		t.Fatalf("ledger-vm: %v", err)
	}
	claims := jwtPart(t, res.Token, 1)
	if claims["x-ms-policy-hash"] != policy.AttestationPolicyHash(releasePolicy("https://coordinator.test/", "ledger-vm")) {
		t.Errorf("x-ms-policy-hash %v", claims["x-ms-policy-hash"])
	}
	if id, _ := path(claims, "submods", "sev-snp", "ear.appraisal-policy-id").(string); !strings.HasSuffix(id, ",policy:kv@v1") {
		t.Errorf("appraisal policy id %q", id)
	}
	_, _, err = agent.Run(ctx, h.client, tee(h.workload("web")), "web")
	wantProblem(t, err, http.StatusForbidden, `release layer "kv"`)
	wantProblem(t, err, http.StatusForbidden, `x-tb-workload`)
	// Another authority: denied for everyone.
	h.setPolicy("kv", releasePolicy("https://elsewhere.test", "ledger-vm"))
	_, _, err = agent.Run(ctx, h.client, tee(h.workload("ledger-vm")), "ledger-vm")
	wantProblem(t, err, http.StatusForbidden, "is not this authority")
}

func path(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	return v
}

const issuingPolicy = `version=1.0;
authorizationrules {
	[type=="x-ms-sevsnpvm-is-debuggable", value==false] => permit();
};
issuancerules {
	c:[type=="x-ms-sevsnpvm-launchmeasurement"] => issue(type="x-ledger-measurement", value=c.value);
	=> issue(type="ledger-compliance", value="azure-compliant-cvm");
};`

// An Azure attestation policy's issued claims join the token, and a later
// release policy sees them; a policy may not replace a claim.
func TestAttestationPolicyIssuesClaims(t *testing.T) {
	h := newHarness(t, withPolicies(map[string][]string{"ledger-vm": {"azure-sevsnpvm", "compliant"}, "web": {"overwrite"}}))
	h.setUserSecrets()
	h.setPolicy("azure-sevsnpvm", issuingPolicy)
	h.setPolicy("compliant", `{"version":"1.0.0","anyOf":[{"authority":"https://coordinator.test","allOf":[
		{"claim":"ledger-compliance","equals":"azure-compliant-cvm"}]}]}`)
	h.setPolicy("overwrite", `version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type="x-ms-attestation-type", value="sgx"); };`)
	ctx := context.Background()
	_, res, err := agent.Run(ctx, h.client, tee(h.workload("ledger-vm")), "ledger-vm")
	if err != nil {
		t.Fatal(err)
	}
	claims := jwtPart(t, res.Token, 1)
	if claims["x-ledger-measurement"] != strings.Repeat("11", 48) || claims["ledger-compliance"] != "azure-compliant-cvm" || claims["x-ms-compliance-status"] != nil ||
		claims["x-ms-policy-hash"] != policy.AttestationPolicyHash(issuingPolicy) {
		t.Errorf("claims %v", claims)
	}
	_, _, err = agent.Run(ctx, h.client, tee(h.workload("web")), "web")
	wantProblem(t, err, http.StatusForbidden, `attestation layer "overwrite"`)
	wantProblem(t, err, http.StatusForbidden, `"x-ms-attestation-type" would replace`)
	// Reserved and dotted names are refused on every path
	// (token.CheckIssuedName, TestNewClaimsIssuedNames, TestMAAIssuedNames).
}

// A dry run evaluates drafts in place of the stored values, layer by
// layer, without using up the nonce; its token is refused by /v1/release.
func TestDryRun(t *testing.T) {
	h := newHarness(t, withPolicies(map[string][]string{"ledger-vm": {"gate"}}))
	ctx := context.Background()
	h.setPolicy("gate", permitRego)
	_, req := h.attestReq(h.workload("ledger-vm"))
	dr := &api.DryRunRequest{Workload: "ledger-vm", Evidence: req.Evidence, Draft: &api.DryRunDraft{Policies: map[string]string{
		"gate":  denyLedgerRego,
		"extra": "version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type=\"x-draft\", value=true); };",
	}}}
	res, err := h.client.DryRun(ctx, h.ownerOf(), dr)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range res.Layers {
		got = append(got, l.Layer+":"+l.Name+":"+l.Verdict)
	}
	want := []string{"evidence::permit", "binding::permit", "manifest:ledger-vm:permit", "rego:gate:deny", "attestation:extra:permit"}
	if res.Verdict != "deny" || !slices.Equal(got, want) || !strings.Contains(res.Layers[3].Reason, "no ledger today") {
		t.Errorf("dry run %s %v, want deny %v (%+v)", res.Verdict, got, want, res.Layers)
	}
	var claims map[string]any
	json.Unmarshal(res.Claims, &claims)
	if claims["x-draft"] != true || claims["x-tb-dry-run"] != true || claims["x-tb-workload"] != "ledger-vm" {
		t.Errorf("dry-run claims %v", claims)
	}
	if hdr := jwtPart(t, res.Token, 0); hdr["alg"] != "none" || !strings.HasSuffix(res.Token, ".") {
		t.Errorf("preview token header %v", hdr)
	}
	_, err = h.client.Release(ctx, &api.ReleaseRequest{Token: res.Token})
	wantProblem(t, err, http.StatusUnauthorized, "")

	// A draft reference that the evidence does not meet; no runtime data,
	// so no binding layer.
	ev := req.Evidence
	ev.RuntimeData = nil
	res, err = h.client.DryRun(ctx, h.ownerOf(), &api.DryRunRequest{Workload: "ledger-vm", Evidence: ev, Draft: &api.DryRunDraft{
		Reference: json.RawMessage(`{"measurements":["` + strings.Repeat("22", 48) + `"]}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != "deny" || len(res.Layers) != 3 || res.Layers[1].Layer != "manifest" || res.Layers[1].Verdict != "deny" ||
		!strings.Contains(res.Layers[1].Reason, "measurement") || res.Layers[2].Verdict != "deny" {
		t.Errorf("draft reference: %+v", res)
	}
	// Tampered evidence stops at the evidence layer.
	ev.Data = append([]byte(nil), ev.Data...)
	ev.Data[0x90] ^= 1
	res, err = h.client.DryRun(ctx, h.ownerOf(), &api.DryRunRequest{Workload: "ledger-vm", Evidence: ev})
	if err != nil || res.Verdict != "deny" || len(res.Layers) != 1 || res.Layers[0].Layer != "evidence" || res.Token != "" {
		t.Errorf("tampered: %+v %v", res, err)
	}

	// Refusals: malformed drafts, strangers.
	_, err = h.client.DryRun(ctx, h.ownerOf(), &api.DryRunRequest{Workload: "ledger-vm", Evidence: req.Evidence, Draft: &api.DryRunDraft{Policies: map[string]string{"x": "package trustbound\nallow if {"}}})
	wantProblem(t, err, http.StatusBadRequest, `rego policy "x"`)
	_, err = h.client.DryRun(ctx, h.ownerOf(), &api.DryRunRequest{Workload: "ledger-vm", Evidence: req.Evidence, Draft: &api.DryRunDraft{Reference: json.RawMessage(`{"measurements":["11"]}`)}})
	wantProblem(t, err, http.StatusBadRequest, "measurements")
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = h.client.DryRun(ctx, agent.Owner{Name: h.m.Owners[0].Name, Key: stranger}, dr)
	wantProblem(t, err, http.StatusUnauthorized, "does not verify")

	// No nonce was used up: the evidence still attests, under the stored policy.
	if _, err := h.client.Attest(ctx, req); err != nil {
		t.Fatalf("attest after dry runs: %v", err)
	}
}

// The OpenAPI description is served.
func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t, nil)
	resp, err := http.Get(h.clientURL() + api.PathOpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != string(coordinator.OpenAPI) || !strings.HasPrefix(string(b), "openapi: 3.1") {
		t.Errorf("GET /openapi.yaml: HTTP %d, %d bytes", resp.StatusCode, len(b))
	}
}
