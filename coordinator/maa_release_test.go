package coordinator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/policy"
)

// realShaped is a fake vendor verifier: it verifies simtee evidence
// against the simulated roots, as the real verifier of its format does
// against the vendor's, and answers claims shaped as real evidence's
// (Simulated false). It stands in for genuine hardware, which tests do
// not have, on the formats the Azure release policies are about.
type realShaped struct {
	format attest.Format
	sim    *attest.Registry
}

var _ attest.Verifier = realShaped{}

func (v realShaped) Format() attest.Format { return v.format }

func (v realShaped) Verify(ctx context.Context, ev *attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	opts.AllowSimulated = true
	c, err := v.sim.Verify(ctx, ev, opts)
	if err != nil {
		return nil, err
	}
	c.Simulated = false
	return c, nil
}

// realShapedRegistry verifies SNP reports and Azure SNP guests as
// realShaped.
func realShapedRegistry(t *testing.T) *attest.Registry {
	t.Helper()
	sim, err := formats.Registry(formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := attest.NewRegistry(realShaped{attest.FormatSNPReport, sim}, realShaped{attest.FormatAzureSNPVTPM, sim})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// newRealShapedHarness is a coordinator whose SNP evidence is real-shaped
// and which refuses simulated evidence on the Azure surface (the default).
func newRealShapedHarness(t *testing.T, edit ...func(*manifest.Manifest)) *maaHarness {
	t.Helper()
	return newMAAHarnessWith(t, time.Now().UTC(), func(cfg *coordinator.Config) { cfg.Verifiers = realShapedRegistry(t) }, edit...)
}

var authorityRE = regexp.MustCompile(`"authority":\s*"[^"]*"`)

// skrPolicy is one of Azure's release policies (policy/testdata) with
// every authority replaced by the test coordinator, and the further
// replacements given as old, new pairs.
func skrPolicy(t *testing.T, file string, replace ...string) *policy.ReleasePolicy {
	t.Helper()
	text := authorityRE.ReplaceAllString(string(readFile(t, "../policy/testdata/"+file)), `"authority": "`+maaIssuer+`"`)
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(text, replace[i]) {
			t.Fatalf("%s no longer contains %q", file, replace[i])
		}
		text = strings.ReplaceAll(text, replace[i], replace[i+1])
	}
	p, err := policy.ParseReleasePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenFor attests at the Azure surface and returns the payload of the
// issued token as a relying party decodes it from the JWT (verified
// through /certs).
func (h *maaHarness) tokenFor(kind string, req map[string]any) map[string]any {
	h.t.Helper()
	r := h.attest(kind, req)
	if r.status != http.StatusOK {
		h.t.Fatalf("attest %s: %+v", kind, r)
	}
	return h.verify(r.token)
}

func wantRelease(t *testing.T, name string, p *policy.ReleasePolicy, claims map[string]any, permit bool) {
	t.Helper()
	err := p.Evaluate(maaIssuer, claims)
	switch {
	case permit && err != nil:
		t.Errorf("%s: refused: %v", name, err)
	case !permit && !errors.Is(err, policy.ErrDenied):
		t.Errorf("%s: want refused, got %v", name, err)
	}
}

// Simulated evidence (its keys are public, so anyone can forge it) never
// passes an Azure-written release policy: the Azure surface refuses it by
// default, and when an operator allows it the token claims no
// x-ms-compliance-status, so Azure's default CVM release policy refuses
// the token. Real-shaped evidence of the same VM is permitted.
func TestMAASimulatedNeverCompliant(t *testing.T) {
	runtime := runtimeKeys(t)
	initTime := []byte("launch configuration of the ledger VM")
	ledger := simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}
	cvmDefault := skrPolicy(t, "skr-cvm-default.json")

	// The default: simulated evidence is refused at /attest/*, even
	// though the manifest allows simulation.
	off := newMAAHarnessWith(t, time.Now().UTC(), func(cfg *coordinator.Config) {
		reg, err := formats.Registry(formats.Config{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Verifiers = reg
	})
	wantRefused(t, off.attest("SevSnpVm", snpRequest(t, ledger, runtime, initTime)), http.StatusBadRequest, "InvalidParameter", "--azure-allow-simulated")

	// Allowed by the operator: a token, but not a compliant one.
	on := newMAAHarness(t, time.Now().UTC(), nil)
	c := on.tokenFor("SevSnpVm", snpRequest(t, ledger, runtime, initTime))
	if c["x-tb-simulated"] != true || c["x-ms-compliance-status"] != nil {
		t.Errorf("simulated: x-tb-simulated %v, x-ms-compliance-status %v", c["x-tb-simulated"], c["x-ms-compliance-status"])
	}
	wantRelease(t, "simulated ledger VM, skr-cvm-default", cvmDefault, c, false)

	// Real-shaped claims of the manifest's ledger VM are compliant.
	real := newRealShapedHarness(t)
	c = real.tokenFor("SevSnpVm", snpRequest(t, ledger, runtime, initTime))
	if c["x-tb-simulated"] != false || c["x-ms-compliance-status"] != "azure-compliant-cvm" {
		t.Errorf("real-shaped: x-tb-simulated %v, x-ms-compliance-status %v", c["x-tb-simulated"], c["x-ms-compliance-status"])
	}
	wantRelease(t, "real-shaped ledger VM, skr-cvm-default", cvmDefault, c, true)
}

// Azure's release policies (policy/testdata/skr-*.json) over the payloads
// of tokens the Azure surface issued, decoded from the JWTs: each permits
// the matching VM and refuses one that differs in one respect.
func TestMAAReleasePoliciesOverIssuedTokens(t *testing.T) {
	h := newRealShapedHarness(t)
	runtime := runtimeKeys(t)
	initTime := []byte("launch configuration of the ledger VM")
	ledger := h.tokenFor("SevSnpVm", snpRequest(t, simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}, runtime, initTime))
	unknown := h.tokenFor("SevSnpVm", snpRequest(t, simtee.SNP{}, runtime, initTime))
	web := h.tokenFor("SevSnpVm", snpRequest(t, simtee.SNP{Measurement: manifest.SampleWebMeasurement}, runtime, manifest.SamplePodPolicy))

	cvm := skrPolicy(t, "skr-cvm-default.json")
	wantRelease(t, "skr-cvm-default, ledger VM", cvm, ledger, true)
	wantRelease(t, "skr-cvm-default, a VM the manifest does not know", cvm, unknown, false)

	// The container policy pins the pod's host data: the sample pod's.
	pod := sha256.Sum256(manifest.SamplePodPolicy)
	cc := skrPolicy(t, "skr-confidential-container.json", "c34429ab2dc6b06c1eabac4b9792224b8227301415c8fc8a798155f1d219a64a", hex.EncodeToString(pod[:]))
	wantRelease(t, "skr-confidential-container, web pod", cc, web, true)
	wantRelease(t, "skr-confidential-container, ledger VM (a CVM, not a container)", cc, ledger, false)

	// The guest policies read Azure's nesting under x-ms-isolation-tee;
	// the guest is compliant once the manifest pins its PCRs.
	pinned := newRealShapedHarness(t, func(m *manifest.Manifest) {
		wl, _ := m.Workload(manifest.SampleLedgerName)
		wl.Reference.PCRs = []manifest.PCR{{Index: 0, Digest: make(attest.Hex, 32)}, {Index: 7, Digest: make(attest.Hex, 32)}}
	})
	guestRuntime := []byte(`{"keys":[],"guest":"cvm"}`)
	ev := mustAttest(t, simtee.AzureSNP{SNP: simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}, SecureBoot: true}, attest.ReportDataFor(guestRuntime))
	guestReq := map[string]any{"evidence": b64(ev.Data), "runtimeData": map[string]string{"data": b64(guestRuntime), "dataType": "JSON"}}
	guest := pinned.tokenFor("AzureGuest", guestReq)
	unpinned := h.tokenFor("AzureGuest", guestReq)
	vmid, _ := guest["x-ms-azurevm-vmid"].(string)
	if vmid == "" {
		t.Fatalf("no x-ms-azurevm-vmid in %v", guest)
	}

	g := skrPolicy(t, "skr-cvm-guest.json")
	wantRelease(t, "skr-cvm-guest, pinned guest", g, guest, true)
	wantRelease(t, "skr-cvm-guest, guest whose PCRs the manifest does not pin", g, unpinned, false)

	wantRelease(t, "skr-cvm-guest-vmid, this VM", skrPolicy(t, "skr-cvm-guest-vmid.json", "26F8BC30-774E-4290-8E7A-535F3B672AEE", vmid), guest, true)
	wantRelease(t, "skr-cvm-guest-vmid, another VM", skrPolicy(t, "skr-cvm-guest-vmid.json"), guest, false)
}

// The request's nonce is the token's "nonce" only when the evidence binds
// it (runtimeData, bound in the report data, has it as its member
// "nonce"); otherwise it is x-ms-request-nonce.
func TestMAANonceBinding(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	initTime := []byte("cfg")
	vm := simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}
	for _, tc := range []struct {
		name, runtime, nonce string
		bound                bool
	}{
		{"bound", `{"keys":[],"nonce":"n-42"}`, "n-42", true},
		{"another nonce in the runtime data", `{"keys":[],"nonce":"n-41"}`, "n-42", false},
		{"no nonce in the runtime data", `{"keys":[]}`, "n-42", false},
		{"nonce nested, not a member", `{"keys":[],"x":{"nonce":"n-42"}}`, "n-42", false},
		{"nonce not a string", `{"keys":[],"nonce":42}`, "42", false},
	} {
		c := h.tokenFor("SevSnpVm", func() map[string]any {
			req := snpRequest(t, vm, []byte(tc.runtime), initTime)
			req["nonce"] = tc.nonce
			return req
		}())
		if tc.bound && (c["nonce"] != tc.nonce || c["x-ms-request-nonce"] != nil) {
			t.Errorf("%s: nonce %v, x-ms-request-nonce %v", tc.name, c["nonce"], c["x-ms-request-nonce"])
		}
		if !tc.bound && (c["nonce"] != nil || c["x-ms-request-nonce"] != tc.nonce) {
			t.Errorf("%s: nonce %v, x-ms-request-nonce %v", tc.name, c["nonce"], c["x-ms-request-nonce"])
		}
	}
	// Without runtimeData nothing binds it.
	req := snpRequest(t, vm, []byte(`{"keys":[],"nonce":"n-42"}`), initTime)
	delete(req, "runtimeData")
	req["nonce"] = "n-42"
	if c := h.tokenFor("SevSnpVm", req); c["nonce"] != nil || c["x-ms-request-nonce"] != "n-42" {
		t.Errorf("no runtimeData: nonce %v, x-ms-request-nonce %v", c["nonce"], c["x-ms-request-nonce"])
	}
}

// The EAR status claims only an appraisal that ran: affirming (with
// configuration and executables claimed) when the claims passed the
// manifest's appraisal of a workload, "none" (neither claimed) when only
// an Azure policy permitted.
func TestMAAStatusFromManifestAppraisal(t *testing.T) {
	h := newRealShapedHarness(t)
	if r := h.setPolicy("SevSnpVm", []byte("version=1.0; authorizationrules { => permit(); };")); r.status != http.StatusOK {
		t.Fatal(r)
	}
	runtime := runtimeKeys(t)
	sub := func(c map[string]any) (string, map[string]any) {
		s := c["submods"].(map[string]any)["sev-snp"].(map[string]any)
		return s["ear.status"].(string), s["ear.trustworthiness-vector"].(map[string]any)
	}
	status, vec := sub(h.tokenFor("SevSnpVm", snpRequest(t, simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}, runtime, []byte("x"))))
	if status != "affirming" || vec["configuration"] == 0.0 || vec["executables"] == 0.0 {
		t.Errorf("ledger VM: status %s, vector %v", status, vec)
	}
	status, vec = sub(h.tokenFor("SevSnpVm", snpRequest(t, simtee.SNP{}, runtime, []byte("x"))))
	if status != "none" || vec["configuration"] != 0.0 || vec["executables"] != 0.0 {
		t.Errorf("unknown VM under an owner's permit-all policy: status %s, vector %v", status, vec)
	}
}

// Issued claims may not take a dotted name (which would shadow a nested
// claim: x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable) or a reserved
// prefix.
func TestMAAIssuedNames(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	runtime := []byte(`{"keys":[],"guest":"cvm"}`)
	ev := mustAttest(t, simtee.AzureSNP{SNP: simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}, SecureBoot: true}, attest.ReportDataFor(runtime))
	req := func(issue string) map[string]any {
		return map[string]any{"evidence": b64(ev.Data), "runtimeData": map[string]string{"data": b64(runtime), "dataType": "JSON"},
			"draftPolicyForAttestation": "version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type=\"" + issue + "\", value=true); };"}
	}
	for issue, msg := range map[string]string{
		"x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable": `may not contain "."`,
		"a.b":                  `may not contain "."`,
		"x-ms-anything":        "reserved",
		"x-tb-workload":        "reserved",
		"x-ms-request-nonce":   "trustbound's to set",
		"x-ms-attestation-typ": "reserved",
	} {
		wantRefused(t, h.attest("AzureGuest", req(issue)), http.StatusBadRequest, "PolicyEvaluationError", msg)
	}
	if r := h.attest("AzureGuest", req("plain")); r.status != http.StatusOK {
		t.Errorf("a plain issued name: %+v", r)
	}
}

// Policy-management tokens (GET and PUT /policies/{type}) are signed by
// the coordinator's keys but marked typ policy+jwt and aud
// attestation-policy, with no attestation claims: /v1/release refuses
// them.
func TestMAAPolicyTokensRefusedByRelease(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	r := h.ownerDo(h.owner, http.MethodGet, "/policies/SevSnpVm?api-version=2022-08-01", nil)
	if r.status != http.StatusOK {
		t.Fatalf("%+v", r)
	}
	hdr, _ := b64Decode(strings.Split(r.token, ".")[0])
	if !strings.Contains(string(hdr), `"typ":"policy+jwt"`) {
		t.Errorf("policy token header %s", hdr)
	}
	c := h.verify(r.token) // a valid JWT of this issuer, through /certs
	if c["aud"] != "attestation-policy" {
		t.Errorf("aud %v", c["aud"])
	}
	for _, absent := range []string{"eat_profile", "submods", "x-tb-workload", "x-tb-simulated"} {
		if _, ok := c[absent]; ok {
			t.Errorf("policy token carries %s", absent)
		}
	}
	b, _ := json.Marshal(api.ReleaseRequest{Token: r.token})
	resp, err := h.srv.Client().Post(h.srv.URL+api.PathRelease, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "typ") {
		t.Errorf("/v1/release answered %d %s to a policy token", resp.StatusCode, body)
	}
}

func b64Decode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
