package agent_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-sev-guest/abi"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// sidecarHarness is the sidecar of the sample's "web" pod (a SIMULATED
// SNP TEE), backed by an in-process coordinator whose manifest grants web
// a symmetric key and an RSA key pair, and grants another key to
// ledger-vm only. The test talks to it as an application written for
// Azure's sidecar does: plain HTTP and JSON in the documented shapes.
type sidecarHarness struct {
	t     *testing.T
	coord *testCoordinator
	url   string // the sidecar's base URL
	host  string // the coordinator's host:port (maa_endpoint, akv_endpoint)
	tee   attest.Attester
}

func newSidecarHarness(t *testing.T, bearer []byte) *sidecarHarness {
	t.Helper()
	coord, err := startCoordinator(func(m *manifest.Manifest) {
		m.Secrets = append(m.Secrets,
			manifest.Secret{Name: "app-aes", Type: manifest.Symmetric, GrantedTo: []string{manifest.SampleWebName}},
			manifest.Secret{Name: "app-rsa", Type: manifest.KeyPair, Algorithm: "rsa-2048", GrantedTo: []string{manifest.SampleWebName}},
			manifest.Secret{Name: "ledger-only", Type: manifest.Symmetric, GrantedTo: []string{manifest.SampleLedgerName}},
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.close)
	w, err := coord.simulated(manifest.SampleWebName)
	if err != nil {
		t.Fatal(err)
	}
	tee, err := agent.SimulatedFor(*w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sess, err := agent.Start(ctx, agent.Config{Coordinator: coord.srv.URL, HTTPClient: coord.srv.Client(), Workload: w.Name, TEE: tee})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	sc := &agent.Sidecar{Client: sess.Client(), TEE: tee, Workload: w.Name, Identity: sess.Identity(), Bearer: bearer}
	ln, err := agent.ListenSidecar("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sc.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
	})
	u, _ := url.Parse(coord.srv.URL)
	return &sidecarHarness{t: t, coord: coord, url: "http://" + ln.Addr().String(), host: u.Host, tee: tee}
}

// post sends body (a JSON text) and returns the status and the decoded
// JSON object answered.
func (h *sidecarHarness) post(path, body string) (int, map[string]any) {
	h.t.Helper()
	resp, err := http.Post(h.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	return h.decode(resp)
}

func (h *sidecarHarness) decode(resp *http.Response) (int, map[string]any) {
	h.t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("HTTP %d answered %q, not a JSON object", resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func jsonBody(t *testing.T, v map[string]string) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantError asserts the sidecar's error answer: status and {"error"}
// containing msg.
func wantError(t *testing.T, name string, status int, out map[string]any, wantStatus int, msg string) {
	t.Helper()
	e, _ := out["error"].(string)
	if status != wantStatus || !strings.Contains(e, msg) || len(out) != 1 {
		t.Errorf("%s: want HTTP %d {\"error\": …%q…}, got HTTP %d %v", name, wantStatus, msg, status, out)
	}
}

func TestSidecarStatusAndRawAttest(t *testing.T) {
	h := newSidecarHarness(t, nil)
	resp, err := http.Get(h.url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if status, out := h.decode(resp); status != http.StatusOK || out["message"] != "Status OK" {
		t.Errorf("/status: HTTP %d %v", status, out)
	}

	runtime := []byte("freshness nonce of the application")
	status, out := h.post("/attest/raw", jsonBody(t, map[string]string{"runtime_data": base64.StdEncoding.EncodeToString(runtime)}))
	if status != http.StatusOK {
		t.Fatalf("/attest/raw: HTTP %d %v", status, out)
	}
	raw, err := hex.DecodeString(out["report"].(string))
	if err != nil {
		t.Fatalf("report is not hex: %v", err)
	}
	report, err := abi.ReportToProto(raw)
	if err != nil {
		t.Fatalf("report is not an SNP report: %v", err)
	}
	want := make([]byte, 64)
	h256 := sha256.Sum256(runtime)
	copy(want, h256[:])
	if !bytes.Equal(report.GetReportData(), want) {
		t.Errorf("report_data %x, want SHA-256(runtime_data) || zeros %x", report.GetReportData(), want)
	}
	if !bytes.Equal(report.GetMeasurement(), manifest.SampleWebMeasurement[:]) {
		t.Errorf("measurement %x is not the web pod's", report.GetMeasurement())
	}
}

func TestSidecarMAAToken(t *testing.T) {
	h := newSidecarHarness(t, nil)
	runtime := []byte(`{"app":"orders","nonce":"n-42"}`)
	for _, endpoint := range []string{h.host, "https://" + h.host + "/"} {
		status, out := h.post("/attest/maa", jsonBody(t, map[string]string{"maa_endpoint": endpoint, "runtime_data": base64.StdEncoding.EncodeToString(runtime)}))
		if status != http.StatusOK {
			t.Fatalf("/attest/maa (%s): HTTP %d %v", endpoint, status, out)
		}
		claims := h.verifyToken(out["token"].(string))
		rd := make([]byte, 64)
		h256 := sha256.Sum256(runtime)
		copy(rd, h256[:])
		rt, _ := json.Marshal(claims["x-ms-runtime"])
		if claims["x-ms-attestation-type"] != "sevsnpvm" || claims["x-ms-sevsnpvm-reportdata"] != hex.EncodeToString(rd) || string(rt) != string(runtime) {
			t.Errorf("token claims: type %v, reportdata %v, x-ms-runtime %s", claims["x-ms-attestation-type"], claims["x-ms-sevsnpvm-reportdata"], rt)
		}
	}
	// Runtime data that is not a JSON object is bound by its hash alone.
	blob := []byte("not json")
	status, out := h.post("/attest/maa", jsonBody(t, map[string]string{"maa_endpoint": h.host, "runtime_data": base64.StdEncoding.EncodeToString(blob)}))
	if status != http.StatusOK {
		t.Fatalf("/attest/maa (binary): HTTP %d %v", status, out)
	}
	claims := h.verifyToken(out["token"].(string))
	rd := make([]byte, 64)
	h256 := sha256.Sum256(blob)
	copy(rd, h256[:])
	if claims["x-ms-sevsnpvm-reportdata"] != hex.EncodeToString(rd) || claims["x-ms-runtime"] != nil {
		t.Errorf("binary runtime data: reportdata %v, x-ms-runtime %v", claims["x-ms-sevsnpvm-reportdata"], claims["x-ms-runtime"])
	}
}

// verifyToken verifies an RS256 token with the coordinator's JWKS and
// returns its claims.
func (h *sidecarHarness) verifyToken(tok string) map[string]any {
	h.t.Helper()
	resp, err := h.coord.srv.Client().Get(h.coord.srv.URL + "/certs")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		h.t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		h.t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		h.t.Fatalf("token signed by unpublished key %q", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		h.t.Fatalf("token does not verify with the coordinator's JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		h.t.Fatal(err)
	}
	return claims
}

// releaseKey calls /key/release and returns the JWK, which the sidecar
// answers as a JSON string.
func (h *sidecarHarness) releaseKey(req map[string]string) map[string]any {
	h.t.Helper()
	status, out := h.post("/key/release", jsonBody(h.t, req))
	if status != http.StatusOK {
		h.t.Fatalf("/key/release %v: HTTP %d %v", req, status, out)
	}
	s, ok := out["key"].(string)
	if !ok {
		h.t.Fatalf("key is %T, want the JWK as a JSON string", out["key"])
	}
	var jwk map[string]any
	if err := json.Unmarshal([]byte(s), &jwk); err != nil {
		h.t.Fatalf("key is not JWK JSON: %v", err)
	}
	return jwk
}

func TestSidecarKeyRelease(t *testing.T) {
	h := newSidecarHarness(t, []byte(testKeyReleaseBearer))
	req := func(kid string) map[string]string {
		return map[string]string{"maa_endpoint": h.host, "akv_endpoint": h.host, "kid": kid}
	}

	// A symmetric key: an "oct" JWK whose k is the stored key.
	want, err := h.coord.stored("app-aes")
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"app-aes", "app-aes/1"} {
		jwk := h.releaseKey(req(kid))
		k, err := base64.RawURLEncoding.DecodeString(jwk["k"].(string))
		if jwk["kty"] != "oct" || err != nil || !bytes.Equal(k, want) {
			t.Errorf("%s: JWK kty %v, k equals the stored key: %v", kid, jwk["kty"], bytes.Equal(k, want))
		}
	}

	// An RSA key pair: the private JWK of the stored key.
	storedPEM, err := h.coord.stored("app-rsa")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(storedPEM)
	storedKey, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	jwk := h.releaseKey(req("app-rsa"))
	raw, _ := json.Marshal(jwk)
	var got jose.JSONWebKey
	if err := got.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	priv, ok := got.Key.(*rsa.PrivateKey)
	if jwk["kty"] != "RSA" || !ok || !priv.Equal(storedKey) {
		t.Errorf("app-rsa: JWK kty %v (%T) is not the stored RSA private key", jwk["kty"], got.Key)
	}

	// An access_token in the request is used in place of the configured
	// bearer, and a wrong one is refused by the coordinator.
	withToken := req("app-aes")
	withToken["access_token"] = "not-the-coordinators-token"
	status, out := h.post("/key/release", jsonBody(t, withToken))
	wantError(t, "wrong access_token", status, out, http.StatusForbidden, "Unauthorized")
}

func TestSidecarRefusals(t *testing.T) {
	h := newSidecarHarness(t, []byte(testKeyReleaseBearer))
	rd := base64.StdEncoding.EncodeToString([]byte("x"))
	for _, c := range []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"key not granted", "/key/release", jsonBody(t, map[string]string{"maa_endpoint": h.host, "akv_endpoint": h.host, "kid": "ledger-only"}), 403, "not granted"},
		{"unknown key", "/key/release", jsonBody(t, map[string]string{"maa_endpoint": h.host, "akv_endpoint": h.host, "kid": "nope"}), 403, "not in the manifest"},
		{"kid with a path", "/key/release", jsonBody(t, map[string]string{"maa_endpoint": h.host, "akv_endpoint": h.host, "kid": "../v1/status"}), 400, "not a key name"},
		{"another vault", "/key/release", jsonBody(t, map[string]string{"maa_endpoint": h.host, "akv_endpoint": "myvault.vault.azure.net", "kid": "app-aes"}), 403, "not this sidecar's coordinator"},
		{"another attestation service", "/attest/maa", jsonBody(t, map[string]string{"maa_endpoint": "sharedeus.eus.attest.azure.net", "runtime_data": rd}), 403, "not this sidecar's coordinator"},
		{"kid missing", "/key/release", jsonBody(t, map[string]string{"maa_endpoint": h.host, "akv_endpoint": h.host}), 400, "kid required"},
		{"bad JSON", "/attest/raw", `{"runtime_data": `, 400, "invalid request format"},
		{"JSON of the wrong type", "/attest/raw", `{"runtime_data": 7}`, 400, "invalid request format"},
		{"two objects", "/attest/raw", `{"runtime_data": "eA=="} {}`, 400, "invalid request format"},
		{"runtime_data missing", "/attest/raw", `{}`, 400, "runtime_data required"},
		{"runtime_data not base64", "/attest/raw", `{"runtime_data": "!!"}`, 400, "base64"},
		{"body too large", "/attest/raw", `{"runtime_data": "` + strings.Repeat("A", 2<<20) + `"}`, 400, "over"},
		{"unknown path", "/attest/json", `{}`, 404, "no POST /attest/json"},
	} {
		status, out := h.post(c.path, c.body)
		wantError(t, c.name, status, out, c.status, c.msg)
	}

	// GET on a POST method.
	resp, err := http.Get(h.url + "/key/release")
	if err != nil {
		t.Fatal(err)
	}
	status, out := h.decode(resp)
	wantError(t, "GET /key/release", status, out, http.StatusNotFound, "no GET /key/release")

	// A Host that is not loopback (DNS rebinding) is refused.
	req, _ := http.NewRequest(http.MethodGet, h.url+"/status", nil)
	req.Host = "attacker.example:80"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	status, out = h.decode(resp)
	wantError(t, "foreign Host", status, out, http.StatusForbidden, "not a loopback name")

	// Without a configured bearer, a request without access_token is refused.
	nb := newSidecarHarness(t, nil)
	status, out = nb.post("/key/release", jsonBody(t, map[string]string{"maa_endpoint": nb.host, "akv_endpoint": nb.host, "kid": "app-aes"}))
	wantError(t, "no access token", status, out, http.StatusForbidden, "no access token")
}

func TestListenSidecarRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:8080", "example.com:8080", "localhost"} {
		if ln, err := agent.ListenSidecar(addr); err == nil {
			ln.Close()
			t.Errorf("ListenSidecar(%q) listened on %v", addr, ln.Addr())
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := agent.ListenSidecar(addr)
		if err != nil {
			t.Errorf("ListenSidecar(%q): %v", addr, err)
			continue
		}
		if !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
			t.Errorf("ListenSidecar(%q) listens on %v", addr, ln.Addr())
		}
		ln.Close()
	}
}

// A local caller of /attest/raw chooses the bytes the report binds (Azure's
// rule: SHA-256 of runtime_data, then zeros). If trustbound's own attest
// bound runtime data by that same rule, any process on the machine could
// mint a native runtime data document naming the workload with keys of its
// own and a fresh coordinator nonce, have the sidecar's TEE sign it, and
// take the workload's secrets. The native binding is domain-separated
// (attest.NativeReportData), so the coordinator refuses that report; the
// same request with a report bound the native way is accepted, so the
// refusal is the binding's and nothing else's.
func TestSidecarRawReportCannotBindNativeRuntimeData(t *testing.T) {
	h := newSidecarHarness(t, []byte(testKeyReleaseBearer))
	ctx := context.Background()
	c := h.coord.client()
	// The attacker's keys and a fresh nonce, in the exact document the
	// agent would build.
	mine, err := agent.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	forged := func() []byte {
		t.Helper()
		ch, err := c.Challenge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := mine.RuntimeData(manifest.SampleWebName, ch.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	// The VCEK chain is public (AMD's KDS serves it); here it comes from
	// any report of the same TEE.
	other, err := h.tee.Attest(ctx, [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.Audit(ctx, h.coord.owner)
	if err != nil {
		t.Fatal(err)
	}

	rd := forged()
	status, out := h.post("/attest/raw", jsonBody(t, map[string]string{"runtime_data": base64.StdEncoding.EncodeToString(rd)}))
	if status != http.StatusOK {
		t.Fatalf("/attest/raw: HTTP %d %v", status, out)
	}
	report, err := hex.DecodeString(out["report"].(string))
	if err != nil {
		t.Fatal(err)
	}
	ar, err := c.Attest(ctx, &api.AttestRequest{Workload: manifest.SampleWebName,
		Evidence: attest.Evidence{Format: attest.FormatSNPReport, Data: report, Certs: other.Certs, RuntimeData: rd}})
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusForbidden || !strings.Contains(p.Detail, attest.ErrBinding.Error()) {
		t.Fatalf("attest with a /attest/raw report = %+v, %v; want 403 %q", ar, err, attest.ErrBinding)
	}
	after, err := c.Audit(ctx, h.coord.owner)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("the audit trail grew from %d to %d records: something was released", len(before), len(after))
	}

	// Control: the same document, bound the native way by the same TEE.
	rd = forged()
	ev, err := h.tee.Attest(ctx, attest.NativeReportData(rd))
	if err != nil {
		t.Fatal(err)
	}
	ev.RuntimeData = rd
	if _, err := c.Attest(ctx, &api.AttestRequest{Workload: manifest.SampleWebName, Evidence: *ev}); err != nil {
		t.Fatalf("the control (native binding) is refused, so the test above proves nothing: %v", err)
	}
}

// simulatedSidecar starts a coordinator with the sample manifest and
// returns a Sidecar (not yet serving) for its web workload, with a fresh
// identity and the workload's simulated TEE.
func simulatedSidecar(t *testing.T) *agent.Sidecar {
	t.Helper()
	coord, err := startCoordinator(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.close)
	w, err := coord.simulated(manifest.SampleWebName)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := agent.SimulatedFor(*w)
	if err != nil {
		t.Fatal(err)
	}
	id, err := agent.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return &agent.Sidecar{Client: coord.client(), TEE: sim, Workload: w.Name, Identity: id}
}

// blockingTEE is an SNP TEE whose Attest waits for release, so that
// requests stay in flight; entered hears of each call.
type blockingTEE struct {
	attest.Attester
	entered chan struct{}
	release chan struct{}
}

func (b *blockingTEE) Attest(ctx context.Context, rd [64]byte) (*attest.Evidence, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.Attester.Attest(ctx, rd)
}

// The sidecar answers at most MaxInFlight POSTs at once: the next gets
// 503 with Retry-After and never reaches the TEE; /status is not counted;
// once a request ends its slot is free again.
func TestSidecarBoundsRequestsInFlight(t *testing.T) {
	sc := simulatedSidecar(t)
	tee := &blockingTEE{Attester: sc.TEE, entered: make(chan struct{}, 8), release: make(chan struct{})}
	sc.TEE, sc.MaxInFlight = tee, 2
	srv := httptest.NewServer(sc.Handler())
	t.Cleanup(srv.Close)
	h := &sidecarHarness{t: t, url: srv.URL}
	body := jsonBody(t, map[string]string{"runtime_data": base64.StdEncoding.EncodeToString([]byte("x"))})

	type answer struct {
		status int
		out    map[string]any
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			resp, err := http.Post(srv.URL+"/attest/raw", "application/json", strings.NewReader(body))
			if err != nil {
				answers <- answer{status: -1}
				return
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			answers <- answer{resp.StatusCode, out}
		}()
	}
	<-tee.entered
	<-tee.entered // both slots are taken, inside the TEE

	resp, err := http.Post(srv.URL+"/attest/raw", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1", ra)
	}
	status, out := h.decode(resp)
	wantError(t, "a third request in flight", status, out, http.StatusServiceUnavailable, "busy")
	resp, err = http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if status, out := h.decode(resp); status != http.StatusOK || out["message"] != "Status OK" {
		t.Errorf("/status while busy: HTTP %d %v", status, out)
	}
	if n := len(tee.entered); n != 0 {
		t.Errorf("%d refused requests reached the TEE", n)
	}

	close(tee.release)
	for range 2 {
		if a := <-answers; a.status != http.StatusOK || a.out["report"] == nil {
			t.Errorf("a request in flight: HTTP %d %v", a.status, a.out)
		}
	}
	// The slots are free again.
	if status, out := h.post("/attest/raw", body); status != http.StatusOK {
		t.Errorf("after the requests ended: HTTP %d %v", status, out)
	}
}

// A request from a web page (which carries Origin: browsers send it on
// every cross-origin POST) is refused; the sidecar, like Azure's, takes
// any Content-Type, so applications that send none keep working.
func TestSidecarRefusesBrowserRequests(t *testing.T) {
	h := newSidecarHarness(t, []byte(testKeyReleaseBearer))
	body := jsonBody(t, map[string]string{"runtime_data": base64.StdEncoding.EncodeToString([]byte("x"))})
	for _, origin := range []string{"https://attacker.example", "null", "http://127.0.0.1:8080"} {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/attest/raw", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		status, out := h.decode(resp)
		wantError(t, "Origin "+origin, status, out, http.StatusForbidden, "Origin header")
	}
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/attest/raw", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if status, out := h.decode(resp); status != http.StatusOK || out["report"] == nil {
			t.Errorf("Content-Type %q without Origin: HTTP %d %v", ct, status, out)
		}
	}
}

// Serve runs requests under its context: when it is cancelled, a request
// in progress is cancelled too, and Serve returns only after that request
// has ended.
func TestSidecarServeEndsRequestsBeforeReturning(t *testing.T) {
	sc := simulatedSidecar(t)
	tee := &endingTEE{blockingTEE: blockingTEE{Attester: sc.TEE, entered: make(chan struct{}, 1), release: make(chan struct{})}, ended: make(chan struct{})}
	sc.TEE = tee
	ln, err := agent.ListenSidecar("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- sc.Serve(ctx, ln) }()
	body := jsonBody(t, map[string]string{"runtime_data": base64.StdEncoding.EncodeToString([]byte("x"))})
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/attest/raw", "application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-tee.entered // the request is inside the TEE
	cancel()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v", err)
	}
	select {
	case <-tee.ended:
	default:
		t.Fatal("Serve returned while a request was still inside the TEE")
	}
}

// endingTEE is a blockingTEE that says when its Attest has returned.
type endingTEE struct {
	blockingTEE
	ended chan struct{}
}

func (e *endingTEE) Attest(ctx context.Context, rd [64]byte) (*attest.Evidence, error) {
	defer close(e.ended)
	return e.blockingTEE.Attest(ctx, rd)
}
