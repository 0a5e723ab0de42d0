package coordinator_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/collateral"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/internal/coordtest"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/policy"
	"github.com/trustbound/trustbound/store"
)

const maaIssuer = "https://coordinator.test"

// maaHarness is a real coordinator (bbolt store, real verifiers) behind an
// HTTP test server, with the sample manifest (which allows simulation).
type maaHarness struct {
	t     *testing.T
	clock *clock
	srv   *httptest.Server
	owner *ecdsa.PrivateKey
	m     *manifest.Manifest
	st    store.Store
}

// newMAAHarness runs the coordinator at now, with intel as its Intel
// collateral source (nil: none) and the sample manifest edited by edit.
//
// The coordinator runs with AzureAllowSimulated, as most tests here attest
// simulated TEEs; newMAAHarnessWith chooses.
func newMAAHarness(t *testing.T, now time.Time, intel dcap.Source, edit ...func(*manifest.Manifest)) *maaHarness {
	t.Helper()
	return newMAAHarnessWith(t, now, func(cfg *coordinator.Config) {
		reg, err := formats.Registry(formats.Config{Intel: intel})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Verifiers, cfg.AzureAllowSimulated = reg, true
	}, edit...)
}

// newMAAHarnessWith runs the coordinator with the configuration conf
// makes (it sets at least Verifiers) and the sample manifest edited by
// edit.
func newMAAHarnessWith(t *testing.T, now time.Time, conf func(*coordinator.Config), edit ...func(*manifest.Manifest)) *maaHarness {
	t.Helper()
	clk := &clock{t: now}
	cfg := coordinator.Config{Now: clk.now, Issuer: maaIssuer, BootstrapToken: []byte(testBootstrap)}
	conf(&cfg)
	h := &maaHarness{t: t, clock: clk}
	h.owner, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h.m = sampleManifest(t, &h.owner.PublicKey)
	for _, e := range edit {
		e(h.m)
	}
	cs := coordtest.Start(t, coordtest.Options{Config: cfg, Manifest: rawManifest(t, h.m), Owner: agent.Owner{Name: h.m.Owners[0].Name, Key: h.owner}})
	h.srv, h.st = cs.Server, cs.Store
	return h
}

// maaResult is an answer of the Azure surface.
type maaResult struct {
	status int
	token  string
	code   string
	msg    string
}

func (h *maaHarness) do(method, path string, body []byte, hdr http.Header) maaResult {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Token string `json:"token"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("%s %s: HTTP %d, body not JSON: %q", method, path, resp.StatusCode, raw)
	}
	r := maaResult{status: resp.StatusCode, token: out.Token}
	if out.Error != nil {
		r.code, r.msg = out.Error.Code, out.Error.Message
	}
	if (resp.StatusCode == http.StatusOK) != (out.Token != "" && out.Error == nil) {
		h.t.Fatalf("%s %s: HTTP %d with body %q", method, path, resp.StatusCode, raw)
	}
	return r
}

// attest posts an Azure attest request, as Azure's clients do (with an
// api-version).
func (h *maaHarness) attest(kind string, req map[string]any) maaResult {
	h.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(http.MethodPost, "/attest/"+kind+"?api-version=2022-08-01", b, http.Header{"Content-Type": {"application/json"}})
}

// ownerDo sends a request signed by key as the manifest's owner.
func (h *maaHarness) ownerDo(key *ecdsa.PrivateKey, method, path string, body []byte) maaResult {
	h.t.Helper()
	ch, err := agent.NewClient(h.srv.URL, h.srv.Client()).Challenge(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	auth, err := api.SignOwner(h.m.Owners[0].Name, key, method, path, ch.Nonce, body)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(method, path, body, http.Header{"Authorization": {auth}, "Content-Type": {"text/plain"}})
}

func (h *maaHarness) setPolicy(kind string, body []byte) maaResult {
	h.t.Helper()
	return h.ownerDo(h.owner, http.MethodPut, "/policies/"+kind+"?api-version=2022-08-01", body)
}

// verify checks a token as a relying party given only the JWKS URL would,
// with go-oidc (RS256 only, issuer, expiry), and returns its claims.
func (h *maaHarness) verify(tok string) map[string]any {
	h.t.Helper()
	ctx := oidc.ClientContext(context.Background(), h.srv.Client())
	v := oidc.NewVerifier(maaIssuer, oidc.NewRemoteKeySet(ctx, h.srv.URL+"/certs"),
		&oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{oidc.RS256}, Now: h.clock.now})
	idt, err := v.Verify(ctx, tok)
	if err != nil {
		h.t.Fatalf("the token does not verify through /certs: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		h.t.Fatal(err)
	}
	return claims
}

// wantRefused asserts an Azure error answer.
func wantRefused(t *testing.T, r maaResult, status int, code, msg string) {
	t.Helper()
	if r.status != status || r.code != code || !strings.Contains(r.msg, msg) {
		t.Fatalf("want HTTP %d %s containing %q, got HTTP %d %s %q", status, code, msg, r.status, r.code, r.msg)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unsecuredJWS is a compact JWS with alg "none", as Azure's SDKs make
// unsigned policy tokens.
func unsecuredJWS(payload any) string {
	b, _ := json.Marshal(payload)
	return b64([]byte(`{"alg":"none"}`)) + "." + b64(b) + "."
}

const (
	sgxTestdata = "../attest/sgx/testdata/"
	// maaSampleSigner is MRSIGNER of the MAA SGX samples, and of the
	// documented Azure SGX policy as policy/testdata fills it in.
	maaSampleSigner = "feb995eb86c349ac98e5afbbb5732ca7376ec9979002702ea17ad476e0853a04"
	// qvlSigner is MRSIGNER of dcap-qvl's SGX sample quote (ISVPRODID 0).
	qvlSigner = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"
)

// The real dcap-qvl SGX quote, with its real Intel collateral, at a time
// inside the collateral's window: the documented Azure SGX policy
// (policy/testdata/maa-sgx.policy) denies it (another signer); the same
// policy with this quote's signer and product id permits it, and the
// token carries the claims Azure would, verified through /certs.
func TestMAASgxEnclaveRealQuote(t *testing.T) {
	at := time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)
	intel, err := collateral.New(collateral.Options{Bundles: []string{sgxTestdata + "qvl_sgx_collateral.json"}, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	h := newMAAHarness(t, at, intel)
	quote := readFile(t, sgxTestdata+"qvl_sgx_quote_v3.dat")
	documented := string(readFile(t, "../policy/testdata/maa-sgx.policy"))
	req := map[string]any{"quote": b64(quote), "nonce": "n-0001"}

	if r := h.setPolicy("SgxEnclave", []byte(documented)); r.status != http.StatusOK {
		t.Fatalf("setting the documented policy: %+v", r)
	}
	wantRefused(t, h.attest("SgxEnclave", req), http.StatusBadRequest, "PolicyEvaluationError", "x-ms-sgx-product-id")

	adjusted := strings.NewReplacer(maaSampleSigner, qvlSigner, "value==1 ]", "value==0 ]").Replace(documented)
	if adjusted == documented || strings.Count(adjusted, qvlSigner) != 1 {
		t.Fatal("the documented policy no longer has the expected layout")
	}
	if r := h.setPolicy("SgxEnclave", []byte(unsecuredJWS(map[string]string{"AttestationPolicy": b64([]byte(adjusted))}))); r.status != http.StatusOK {
		t.Fatalf("setting the adjusted policy: %+v", r)
	}
	r := h.attest("SgxEnclave", req)
	if r.status != http.StatusOK {
		t.Fatalf("the real quote under its own signer's policy: %+v", r)
	}
	c := h.verify(r.token)
	for name, want := range map[string]any{
		"x-ms-attestation-type":  "sgx",
		"x-ms-sgx-mrsigner":      qvlSigner,
		"x-ms-sgx-mrenclave":     "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
		"x-ms-sgx-is-debuggable": false,
		"x-ms-sgx-product-id":    0.0,
		"x-ms-sgx-svn":           0.0,
		"x-ms-ver":               "1.0",
		"x-ms-policy-hash":       policy.AttestationPolicyHash(adjusted),
		"signer":                 qvlSigner, // the issuance rule's claim
		"x-ms-request-nonce":     "n-0001",  // bound to nothing: not "nonce"
		"iss":                    maaIssuer,
		"x-tb-simulated":         false,
	} {
		if c[name] != want {
			t.Errorf("%s = %v, want %v", name, c[name], want)
		}
	}
	if p, _ := c["x-ms-policy"].(map[string]any); p["signer"] != qvlSigner {
		t.Errorf("x-ms-policy = %v", c["x-ms-policy"])
	}
	for _, absent := range []string{"x-ms-compliance-status", "x-ms-sgx-ehd", "x-ms-runtime", "x-tb-manifest-digest", "nonce"} {
		if _, ok := c[absent]; ok {
			t.Errorf("unexpected claim %s = %v", absent, c[absent])
		}
	}
	if s := c["submods"].(map[string]any)["sgx"].(map[string]any); s["ear.appraisal-policy-id"] != "azure-sgxenclave@v2" {
		t.Errorf("submod %v", s)
	}

	// A tampered quote, and the MAA samples (no collateral for their FMSPC
	// here), are refused as evidence.
	bad := bytes.Clone(quote)
	bad[100] ^= 1
	wantRefused(t, h.attest("SgxEnclave", map[string]any{"quote": b64(bad)}), http.StatusBadRequest, "InvalidParameter", "evidence refused")
	for _, name := range []string{"quote.release.bin", "quote.debug.bin"} {
		wantRefused(t, h.attest("SgxEnclave", map[string]any{"quote": b64(readFile(t, sgxTestdata+name))}),
			http.StatusBadRequest, "InvalidParameter", "00906ed50000")
	}
	// After the collateral's window the real quote no longer verifies.
	h.clock.advance(30 * 24 * time.Hour)
	wantRefused(t, h.attest("SgxEnclave", req), http.StatusBadRequest, "InvalidParameter", "evidence refused")
}

// simulatedSGX is the MAA samples' enclave (signer, product id 1, SVN 1)
// simulated: the real sample quotes cannot be verified here, since no
// collateral for their platform (FMSPC 00906ed50000) is available offline.
func simulatedSGX(debug bool) simtee.SGX {
	s := simtee.SGX{ProductID: 1, SVN: 1, Debug: debug}
	signer, _ := hex.DecodeString(maaSampleSigner)
	copy(s.MRSigner[:], signer)
	copy(s.MREnclave[:], bytes.Repeat([]byte{0xd3}, 32))
	return s
}

func mustAttest(t *testing.T, a attest.Attester, rd [64]byte) *attest.Evidence {
	t.Helper()
	ev, err := a.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// The documented Azure SGX policy over the MAA samples' enclave, release
// and debug, simulated: the release enclave is permitted (with the enclave
// held data the samples bind, as x-ms-sgx-ehd), the debug one denied.
func TestMAASgxEnclavePolicySamples(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	ehd, _ := hex.DecodeString("010203040506") // the samples' EnclaveHeldDataHex
	rd := attest.ReportDataFor(ehd)
	release := mustAttest(t, simulatedSGX(false), rd)
	debug := mustAttest(t, simulatedSGX(true), rd)
	runtime := map[string]string{"data": b64(ehd), "dataType": "Binary"}

	// No policy set: Azure's default permits every verified quote.
	r := h.attest("SgxEnclave", map[string]any{"quote": b64(debug.Data), "runtimeData": runtime})
	if r.status != http.StatusOK {
		t.Fatalf("default policy: %+v", r)
	}
	c := h.verify(r.token)
	if c["x-ms-sgx-is-debuggable"] != true || c["x-tb-simulated"] != true || c["x-ms-policy-hash"] != policy.AttestationPolicyHash(defaultPolicy) {
		t.Errorf("default policy claims %v", c)
	}
	if s := c["submods"].(map[string]any)["sgx"].(map[string]any); s["ear.status"] == "affirming" {
		t.Errorf("the default policy appraises nothing, yet the status is %v", s["ear.status"])
	}

	if r := h.setPolicy("SgxEnclave", readFile(t, "../policy/testdata/maa-sgx.policy")); r.status != http.StatusOK {
		t.Fatal(r)
	}
	r = h.attest("SgxEnclave", map[string]any{"quote": b64(release.Data), "runtimeData": runtime})
	if r.status != http.StatusOK {
		t.Fatalf("release enclave: %+v", r)
	}
	c = h.verify(r.token)
	if c["x-ms-sgx-ehd"] != "AQIDBAUG" || c["signer"] != maaSampleSigner || c["x-ms-sgx-is-debuggable"] != false {
		t.Errorf("release claims: ehd %v, signer %v, debuggable %v", c["x-ms-sgx-ehd"], c["signer"], c["x-ms-sgx-is-debuggable"])
	}
	wantRefused(t, h.attest("SgxEnclave", map[string]any{"quote": b64(debug.Data), "runtimeData": runtime}),
		http.StatusBadRequest, "PolicyEvaluationError", "x-ms-sgx-is-debuggable is true")

	// Azure's binding rule: SHA-256(runtimeData) is the report data.
	wantRefused(t, h.attest("SgxEnclave", map[string]any{"quote": b64(release.Data), "runtimeData": map[string]string{"data": b64([]byte{1, 2, 3}), "dataType": "Binary"}}),
		http.StatusBadRequest, "InvalidParameter", "report data does not bind")
}

// defaultPolicy is the policy of a type nobody set one for.
const defaultPolicy = "version=1.0;\nauthorizationrules\n{\n\t=> permit();\n};\nissuancerules\n{\n};\n"

// snpRequest is a SevSnpVm request: the report as Azure's clients send
// it (base64url JSON {SnpReport, VcekCertChain}), runtimeData JSON bound
// in the report data and initTimeData in HOST_DATA.
func snpRequest(t *testing.T, sim simtee.SNP, runtime, initTime []byte) map[string]any {
	t.Helper()
	sim.HostData = sha256.Sum256(initTime)
	ev := mustAttest(t, sim, attest.ReportDataFor(runtime))
	var chain []byte
	for _, der := range ev.Certs {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	report, _ := json.Marshal(map[string]string{"SnpReport": b64(ev.Data), "VcekCertChain": b64(chain)})
	return map[string]any{
		"report":       b64(report),
		"runtimeData":  map[string]string{"data": b64(runtime), "dataType": "JSON"},
		"initTimeData": map[string]string{"data": b64(initTime), "dataType": "Binary"},
		"nonce":        "snp-nonce",
	}
}

// runtimeKeys is runtime data with an RSA key, as confidential VMs bind
// it for Key Vault's secure key release.
func runtimeKeys(t *testing.T) []byte {
	t.Helper()
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: &k.PublicKey, KeyID: "TpmEphemeralEncryptionKey", Use: "enc"})
	return []byte(`{"keys":[` + string(jwk) + `],"vm":"ledger"}`)
}

func TestMAASevSnpVm(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	runtime := runtimeKeys(t)
	initTime := []byte("launch configuration of the ledger VM")
	ledger := simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}

	r := h.attest("SevSnpVm", snpRequest(t, ledger, runtime, initTime))
	if r.status != http.StatusOK {
		t.Fatalf("%+v", r)
	}
	c := h.verify(r.token)
	host := sha256.Sum256(initTime)
	rd := attest.ReportDataFor(runtime)
	for name, want := range map[string]any{
		"x-ms-attestation-type":           "sevsnpvm",
		"x-ms-compliance-status":          nil, // simulated: never compliant (TestMAASimulatedNeverCompliant)
		"x-ms-sevsnpvm-launchmeasurement": hex.EncodeToString(manifest.SampleLedgerMeasurement[:]),
		"x-ms-sevsnpvm-hostdata":          hex.EncodeToString(host[:]),
		"x-ms-sevsnpvm-reportdata":        hex.EncodeToString(rd[:]),
		"x-ms-sevsnpvm-is-debuggable":     false,
		"x-ms-sevsnpvm-vmpl":              0.0,
		"x-ms-request-nonce":              "snp-nonce", // the runtime data does not carry it
		"nonce":                           nil,
	} {
		if c[name] != want {
			t.Errorf("%s = %v, want %v", name, c[name], want)
		}
	}
	rt, _ := json.Marshal(c["x-ms-runtime"])
	var want bytes.Buffer
	json.Compact(&want, runtime)
	if !jsonEqual(t, rt, want.Bytes()) {
		t.Errorf("x-ms-runtime %s, want %s", rt, runtime)
	}
	if _, ok := c["x-ms-inittime"]; ok {
		t.Error("binary initTimeData became x-ms-inittime")
	}

	// The confidential container of the manifest, simulated: not
	// compliant either (real-shaped, it is azure-compliant-uvm:
	// TestMAAReleasePoliciesOverIssuedTokens).
	web := simtee.SNP{Measurement: manifest.SampleWebMeasurement}
	r = h.attest("SevSnpVm", snpRequest(t, web, runtime, manifest.SamplePodPolicy))
	if c := h.verify(r.token); c["x-ms-compliance-status"] != nil {
		t.Errorf("web: compliance %v", c["x-ms-compliance-status"])
	}
	// A VM the manifest does not know: verified, but not compliant.
	r = h.attest("SevSnpVm", snpRequest(t, simtee.SNP{}, runtime, initTime))
	if c := h.verify(r.token); c["x-ms-compliance-status"] != nil {
		t.Errorf("unknown VM: compliance %v", c["x-ms-compliance-status"])
	}
	// JSON init-time data is x-ms-inittime.
	initJSON := []byte(`{"policy":"allow-all","v":1}`)
	req := snpRequest(t, ledger, runtime, initJSON)
	req["initTimeData"] = map[string]string{"data": b64(initJSON), "dataType": "JSON"}
	if c := h.verify(h.attest("SevSnpVm", req).token); !jsonEqual(t, mustJSON(c["x-ms-inittime"]), initJSON) {
		t.Errorf("x-ms-inittime %v", c["x-ms-inittime"])
	}

	// Each binding broken is refused.
	req = snpRequest(t, ledger, runtime, initTime)
	req["runtimeData"] = map[string]string{"data": b64([]byte(`{"keys":[]}`)), "dataType": "JSON"}
	wantRefused(t, h.attest("SevSnpVm", req), http.StatusBadRequest, "InvalidParameter", "runtimeData: report data does not bind")
	req = snpRequest(t, ledger, runtime, initTime)
	req["initTimeData"] = map[string]string{"data": b64([]byte("another configuration")), "dataType": "Binary"}
	wantRefused(t, h.attest("SevSnpVm", req), http.StatusBadRequest, "InvalidParameter", "initTimeData")

	// Malformed requests.
	req = snpRequest(t, ledger, runtime, initTime)
	req["quote"] = req["report"]
	wantRefused(t, h.attest("SevSnpVm", req), http.StatusBadRequest, "InvalidParameter", `SevSnpVm takes its evidence in "report", not "quote"`)
	req = snpRequest(t, ledger, runtime, initTime)
	req["runtimeData"] = map[string]string{"data": b64([]byte("not json")), "dataType": "JSON"}
	wantRefused(t, h.attest("SevSnpVm", req), http.StatusBadRequest, "InvalidParameter", "not JSON")
	req = snpRequest(t, ledger, runtime, initTime)
	req["extra"] = true
	wantRefused(t, h.attest("SevSnpVm", req), http.StatusBadRequest, "InvalidParameter", "unknown field")
	wantRefused(t, h.do(http.MethodPost, "/attest/SevSnpVm?api-version=2022-08-01&debug=1", []byte(`{}`), nil), http.StatusBadRequest, "InvalidParameter", "debug")
	wantRefused(t, h.attest("Tpm", map[string]any{}), http.StatusBadRequest, "InvalidParameter", "unknown attestation type")
	wantRefused(t, h.do(http.MethodPost, "/attest/SevSnpVm", bytes.Repeat([]byte(" "), api.MaxBody+1), nil), http.StatusRequestEntityTooLarge, "RequestTooLarge", "at most")
}

func TestMAAOpenEnclave(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	runtime := []byte(`{"keys":[],"purpose":"oe"}`)
	quote := mustAttest(t, simulatedSGX(false), attest.ReportDataFor(runtime)).Data
	// The Open Enclave report header: version 1, type 2 (SGX remote),
	// the size of the quote that follows.
	report := binary.LittleEndian.AppendUint32(nil, 1)
	report = binary.LittleEndian.AppendUint32(report, 2)
	report = binary.LittleEndian.AppendUint64(report, uint64(len(quote)))
	report = append(report, quote...)

	r := h.attest("OpenEnclave", map[string]any{"report": b64(report), "runtimeData": map[string]string{"data": b64(runtime), "dataType": "JSON"}})
	if r.status != http.StatusOK {
		t.Fatalf("%+v", r)
	}
	c := h.verify(r.token)
	if c["x-ms-attestation-type"] != "sgx" || c["x-ms-sgx-mrsigner"] != maaSampleSigner || c["x-ms-sgx-ehd"] != b64(runtime) || c["x-ms-runtime"].(map[string]any)["purpose"] != "oe" {
		t.Errorf("claims %v", c)
	}
	report[4] = 1 // an SGX local report
	wantRefused(t, h.attest("OpenEnclave", map[string]any{"report": b64(report)}), http.StatusBadRequest, "InvalidParameter", "not an Open Enclave SGX remote report")
}

func TestMAATdxVm(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	runtime := []byte(`{"keys":[]}`)
	initTime := []byte("td configuration")
	td := simtee.TDX{}
	for i := range td.MRTD {
		td.MRTD[i] = 0x5a
	}
	sum := sha256.Sum256(initTime)
	copy(td.MRConfigID[:], sum[:])
	ev := mustAttest(t, td, attest.ReportDataFor(runtime))
	r := h.attest("TdxVm", map[string]any{"quote": b64(ev.Data),
		"runtimeData":  map[string]string{"data": b64(runtime), "dataType": "JSON"},
		"initTimeData": map[string]string{"data": b64(initTime), "dataType": "Binary"}})
	if r.status != http.StatusOK {
		t.Fatalf("%+v", r)
	}
	c := h.verify(r.token)
	if c["x-ms-attestation-type"] != "tdxvm" || c["tdx_mrtd"] != strings.Repeat("5a", 48) ||
		c["tdx_mrconfigid"] != hex.EncodeToString(td.MRConfigID[:]) || c["tdx_td_attributes_debug"] != false {
		t.Errorf("claims %v", c)
	}
	wantRefused(t, h.attest("TdxVm", map[string]any{"quote": b64(ev.Data), "initTimeData": map[string]string{"data": b64([]byte("x"))}}),
		http.StatusBadRequest, "InvalidParameter", "initTimeData")
}

func TestMAAAzureGuest(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	// The same guest, real-shaped, is compliant once the manifest pins its
	// PCRs: the status is nested under x-ms-isolation-tee, as Azure nests
	// it. (Simulated, it is never compliant.)
	pinned := newRealShapedHarness(t, func(m *manifest.Manifest) {
		wl, _ := m.Workload(manifest.SampleLedgerName)
		wl.Reference.PCRs = []manifest.PCR{{Index: 0, Digest: make(attest.Hex, 32)}, {Index: 7, Digest: make(attest.Hex, 32)}}
	})
	runtime := []byte(`{"keys":[],"guest":"cvm"}`)
	ev := mustAttest(t, simtee.AzureSNP{SNP: simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}, SecureBoot: true}, attest.ReportDataFor(runtime))
	r := h.attest("AzureGuest", map[string]any{"evidence": b64(ev.Data), "runtimeData": map[string]string{"data": b64(runtime), "dataType": "JSON"}})
	if r.status != http.StatusOK {
		t.Fatalf("%+v", r)
	}
	c := h.verify(r.token)
	tee, _ := c["x-ms-isolation-tee"].(map[string]any)
	if c["x-ms-attestation-type"] != "azurevm" || c["secureboot"] != true || tee["x-ms-attestation-type"] != "sevsnpvm" ||
		tee["x-ms-sevsnpvm-launchmeasurement"] != hex.EncodeToString(manifest.SampleLedgerMeasurement[:]) {
		t.Errorf("claims %v", c)
	}
	// ledger-vm pins no PCRs, and evidence from behind a paravisor is not
	// appraised without them: not compliant.
	if tee["x-ms-compliance-status"] != nil || c["x-ms-compliance-status"] != nil {
		t.Errorf("compliance %v / %v", tee["x-ms-compliance-status"], c["x-ms-compliance-status"])
	}
	c = pinned.verify(pinned.attest("AzureGuest", map[string]any{"evidence": b64(ev.Data), "runtimeData": map[string]string{"data": b64(runtime), "dataType": "JSON"}}).token)
	if tee, _ := c["x-ms-isolation-tee"].(map[string]any); tee["x-ms-compliance-status"] != "azure-compliant-cvm" || c["x-ms-compliance-status"] != nil {
		t.Errorf("pinned: compliance %v", c)
	}
	// An attestation policy sees nested claims with dotted names.
	draft := "version=1.0; authorizationrules { [type==\"x-ms-isolation-tee.x-ms-compliance-status\", value==\"azure-compliant-cvm\"] => permit(); };"
	if r := pinned.attest("AzureGuest", map[string]any{"evidence": b64(ev.Data), "runtimeData": map[string]string{"data": b64(runtime), "dataType": "JSON"}, "draftPolicyForAttestation": draft}); r.status != http.StatusOK {
		t.Errorf("nested claim in a policy: %+v", r)
	}
	wantRefused(t, h.attest("AzureGuest", map[string]any{"evidence": b64(ev.Data), "runtimeData": map[string]string{"data": b64(runtime), "dataType": "JSON"}, "draftPolicyForAttestation": draft}),
		http.StatusBadRequest, "PolicyEvaluationError", "x-ms-isolation-tee.x-ms-compliance-status")
	wantRefused(t, h.attest("AzureGuest", map[string]any{"runtimeData": map[string]string{"data": b64(runtime), "dataType": "JSON"}}),
		http.StatusBadRequest, "InvalidParameter", "AttestationInfo protocol is not supported")
	wantRefused(t, h.attest("AzureGuest", map[string]any{"evidence": b64(ev.Data), "runtimeData": map[string]string{"data": b64([]byte(`{}`)), "dataType": "JSON"}}),
		http.StatusBadRequest, "InvalidParameter", "report data does not bind")
}

// A draft policy answers what it would issue in an unsecured token, which
// neither /certs nor /v1/release accepts; signed tokens of this surface
// are not accepted by /v1/release either (no workload, no manifest).
func TestMAADraftPolicy(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	ev := mustAttest(t, simulatedSGX(false), [64]byte{})
	draft := "version=1.0; authorizationrules { [type==\"x-ms-sgx-is-debuggable\", value==false] => permit(); }; issuancerules { => issue(type=\"draft\", value=true); };"

	r := h.attest("SgxEnclave", map[string]any{"quote": b64(ev.Data), "draftPolicyForAttestation": draft, "nonce": "d"})
	if r.status != http.StatusOK {
		t.Fatalf("%+v", r)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(r.token, ".")[0])
	if string(hdr) != `{"alg":"none","typ":"JWT"}` || !strings.HasSuffix(r.token, ".") {
		t.Errorf("draft token header %s", hdr)
	}
	c := jwtPart(t, r.token, 1)
	if c["draft"] != true || c["x-ms-policy-hash"] != policy.AttestationPolicyHash(draft) || c["x-ms-request-nonce"] != "d" || c["nonce"] != nil || c["iss"] != maaIssuer {
		t.Errorf("draft claims %v", c)
	}
	ctx := context.Background()
	v := oidc.NewVerifier(maaIssuer, oidc.NewRemoteKeySet(ctx, h.srv.URL+"/certs"), &oidc.Config{SkipClientIDCheck: true, Now: h.clock.now})
	if _, err := v.Verify(ctx, r.token); err == nil {
		t.Error("go-oidc accepted the unsecured draft token")
	}
	release := func(tok string) int {
		b, _ := json.Marshal(api.ReleaseRequest{Token: tok})
		resp, err := h.srv.Client().Post(h.srv.URL+api.PathRelease, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := release(r.token); s != http.StatusUnauthorized {
		t.Errorf("/v1/release answered %d to the draft token", s)
	}
	signed := h.attest("SgxEnclave", map[string]any{"quote": b64(ev.Data)})
	h.verify(signed.token)
	if s := release(signed.token); s != http.StatusUnauthorized {
		t.Errorf("/v1/release answered %d to an Azure-surface token", s)
	}

	wantRefused(t, h.attest("SgxEnclave", map[string]any{"quote": b64(mustAttest(t, simulatedSGX(true), [64]byte{}).Data), "draftPolicyForAttestation": draft}),
		http.StatusBadRequest, "PolicyEvaluationError", "no authorization rule permitted")
	wantRefused(t, h.attest("SgxEnclave", map[string]any{"quote": b64(ev.Data), "draftPolicyForAttestation": "version=1.0; authorizationrules { => allow(); };"}),
		http.StatusBadRequest, "PolicyParsingError", "line 1, column 38: unknown action")
}

func TestMAAPolicies(t *testing.T) {
	h := newMAAHarness(t, time.Now().UTC(), nil)
	text := string(readFile(t, "../policy/testdata/maa-sgx.policy"))

	// GET before any PUT: the default policy, as Azure's GET shape.
	r := h.ownerDo(h.owner, http.MethodGet, "/policies/SgxEnclave?api-version=2022-08-01", nil)
	if r.status != http.StatusOK {
		t.Fatalf("%+v", r)
	}
	if got := policyOf(t, h.verify(r.token)); got != defaultPolicy {
		t.Errorf("default policy %q", got)
	}

	// Text, then an unsecured JWS, then a signed JWS (three texts: the
	// same text again is no new version).
	for i := range 3 {
		text := text + strings.Repeat("\n", i)
		body := []string{
			text,
			unsecuredJWS(map[string]string{"AttestationPolicy": b64([]byte(text))}),
			signedPolicyJWS(t, text),
		}[i]
		r := h.setPolicy("SgxEnclave", []byte(body))
		if r.status != http.StatusOK {
			t.Fatalf("upload %d: %+v", i, r)
		}
		res := h.verify(r.token)
		if res["x-ms-policy-result"] != "Updated" {
			t.Errorf("upload %d: result %v", i, res)
		}
		g := h.ownerDo(h.owner, http.MethodGet, "/policies/SgxEnclave", nil)
		stored := h.verify(g.token)["x-ms-policy"].(string)
		if got := policyOf(t, map[string]any{"x-ms-policy": stored}); got != text {
			t.Errorf("upload %d: GET returned %q", i, got)
		}
		// The token hash is that of the policy token uploaded (for text,
		// of the unsecured token made of it), as Azure's SDKs check it.
		uploaded := body
		if i == 0 {
			uploaded = stored
		}
		sum := sha256.Sum256([]byte(uploaded))
		if res["x-ms-policy-token-hash"] != b64(sum[:]) {
			t.Errorf("upload %d: x-ms-policy-token-hash %v", i, res["x-ms-policy-token-hash"])
		}
		if signer := res["x-ms-policy-signer"]; (i == 2) != (signer != nil) {
			t.Errorf("upload %d: x-ms-policy-signer %v", i, signer)
		}
	}
	// The same policy of the native policy store, versioned.
	hist, err := h.st.List(context.Background(), "policies/azure-sgxenclave/versions/")
	if err != nil || len(hist) != 3 {
		t.Errorf("policy versions: %d, %v", len(hist), err)
	}

	// The policy in force decides: the documented policy denies a debug
	// enclave.
	wantRefused(t, h.attest("SgxEnclave", map[string]any{"quote": b64(mustAttest(t, simulatedSGX(true), [64]byte{}).Data)}),
		http.StatusBadRequest, "PolicyEvaluationError", "azure-sgxenclave@v3")

	// Outside the subset, refused at upload with line and column.
	for _, c := range []struct{ name, policy, msg string }{
		{"unknown operator", "version=1.0;\nauthorizationrules {\n  [type=~\"x\"] => permit();\n};", "line 3, column 8"},
		{"or", "version=1.0;\nauthorizationrules {\n  [type==\"a\"] || [type==\"b\"] => permit();\n};", `line 3, column 15: "||"`},
		{"version 1.1", "version=1.1;\nauthorizationrules { => permit(); };", "line 1, column 9: policy version 1.1 is not supported"},
		{"version 2.0", "version=2.0;\nauthorizationrules { => permit(); };", "unknown policy version 2.0"},
		{"unknown action", "version=1.0;\nauthorizationrules { => allow(); };", `line 2, column 25: unknown action "allow"`},
	} {
		wantRefused(t, h.setPolicy("SgxEnclave", []byte(c.policy)), http.StatusBadRequest, "PolicyParsingError", c.msg)
		wantRefused(t, h.setPolicy("SgxEnclave", []byte(unsecuredJWS(map[string]string{"AttestationPolicy": b64([]byte(c.policy))}))), http.StatusBadRequest, "PolicyParsingError", c.msg)
	}
	// Policy tokens of another shape.
	for _, c := range []struct{ name, body, msg string }{
		{"other member", unsecuredJWS(map[string]string{"Policy": b64([]byte(text))}), "unknown field"},
		{"no member", unsecuredJWS(map[string]string{}), `no "AttestationPolicy"`},
		{"not base64url", unsecuredJWS(map[string]string{"AttestationPolicy": "v e r"}), "not base64url"},
		{"none with signature", unsecuredJWS(map[string]string{"AttestationPolicy": b64([]byte(text))}) + "c2ln", `alg "none" with a signature`},
		{"bad signature", tamperSignature(signedPolicyJWS(t, text)), "policy token"},
	} {
		wantRefused(t, h.setPolicy("SgxEnclave", []byte(c.body)), http.StatusBadRequest, "InvalidOperation", c.msg)
	}

	// Only an owner sets and reads policies.
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wantRefused(t, h.ownerDo(stranger, http.MethodPut, "/policies/SgxEnclave", []byte(text)), http.StatusUnauthorized, "Unauthorized", "not authorized")
	wantRefused(t, h.ownerDo(stranger, http.MethodGet, "/policies/SgxEnclave", nil), http.StatusUnauthorized, "Unauthorized", "not authorized")
	wantRefused(t, h.do(http.MethodPut, "/policies/SgxEnclave", []byte(text), nil), http.StatusUnauthorized, "Unauthorized", "not authorized")
	wantRefused(t, h.setPolicy("Tpm", []byte(text)), http.StatusBadRequest, "InvalidParameter", "unknown attestation type")
}

// policyOf decodes the policy text of a GET /policies answer's body.
func policyOf(t *testing.T, body map[string]any) string {
	t.Helper()
	jws, _ := body["x-ms-policy"].(string)
	p, _ := jwtPart(t, jws, 1)["AttestationPolicy"].(string)
	text, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

// signedPolicyJWS signs a policy token as Azure's SDKs do for isolated
// providers: RS256 with the signer's self-signed certificate in x5c.
func signedPolicyJWS(t *testing.T, text string) string {
	t.Helper()
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "policy signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	opts := (&jose.SignerOptions{}).WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(der)})
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]string{"AttestationPolicy": b64([]byte(text))})
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tamperSignature(jws string) string {
	i := strings.LastIndex(jws, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(jws[i+1:])
	sig[0] ^= 1
	return jws[:i+1] + b64(sig)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return string(mustJSON(x)) == string(mustJSON(y))
}
