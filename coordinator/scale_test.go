package coordinator_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
)

// attestRelease presents fresh evidence of w to POST /v1/attest-release
// with an identity id, asking for secrets (nil: all granted).
func (h *harness) attestRelease(id *agent.Identity, w manifest.Workload, secrets []string) (*api.AttestReleaseResponse, error) {
	h.t.Helper()
	ctx := context.Background()
	req, err := id.Evidence(ctx, h.client, tee(w), w.Name)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.postAttestRelease(&api.AttestReleaseRequest{Workload: w.Name, Evidence: req.Evidence, Secrets: secrets})
}

func (h *harness) postAttestRelease(req *api.AttestReleaseRequest) (*api.AttestReleaseResponse, error) {
	var out api.AttestReleaseResponse
	if err := h.do(http.MethodPost, api.PathAttestRelease, req, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// do sends in as JSON (nil: no body) with an Authorization header (""
// for none) and decodes a 200 answer into out; a refusal comes back as an
// *api.Problem.
func (h *harness) do(method, pathQuery string, in any, auth string, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			h.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.clientURL()+pathQuery, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		p := &api.Problem{}
		if err := json.Unmarshal(b, p); err != nil {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		}
		return p
	}
	return json.Unmarshal(b, out)
}

func TestAttestReleaseInOneRequest(t *testing.T) {
	h := newHarness(t, nil)
	user := h.setUserSecrets()
	w := h.workload(manifest.SampleLedgerName)
	id, err := agent.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.attestRelease(id, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	rel := &out.Release
	if out.Token == "" || !out.Simulated || rel.Context == nil || len(rel.Context.Enc) == 0 {
		t.Fatalf("response: token %q, simulated %v, context %+v", out.Token, out.Simulated, rel.Context)
	}
	// The token is a real one: /v1/release takes it, as it would one from /v1/attest.
	if _, err := h.client.Release(context.Background(), &api.ReleaseRequest{Token: out.Token, Secrets: []string{"db-password"}}); err != nil {
		t.Fatalf("releasing with the combined route's token: %v", err)
	}
	granted := h.m.SecretsFor(w.Name)
	if len(rel.Secrets) != len(granted) {
		t.Fatalf("%d secrets, want the %d granted", len(rel.Secrets), len(granted))
	}
	vals, err := keybroker.UnwrapAll(id.HPKE, *rel.Context, rel.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range rel.Secrets {
		if s.Info != api.SecretInfo(w.Name, s.Name, s.Version) {
			t.Errorf("secret %q: info %q", s.Name, s.Info)
		}
		if s.Name == "db-password" && string(vals[i]) != string(user["db-password"]) {
			t.Errorf("db-password: got another value")
		}
	}
	if rel.Context.Info != api.ReleaseInfo(w.Name, tokenID(t, out.Token), rel.Secrets) {
		t.Errorf("context info %q does not name the token", rel.Context.Info)
	}
	// Each secret is sealed in the shared context only: alone it does not open.
	if _, err := keybroker.Unwrap(id.HPKE, rel.Secrets[0]); err == nil {
		t.Error("a secret of a shared context opened on its own")
	}
	// Opened out of order, the context refuses.
	swapped := []api.WrappedSecret{rel.Secrets[1], rel.Secrets[0]}
	if _, err := keybroker.UnwrapAll(id.HPKE, *rel.Context, swapped); err == nil {
		t.Error("secrets opened out of order")
	}
	// Another TEE's key opens nothing.
	other, _ := agent.NewIdentity()
	if _, err := keybroker.UnwrapAll(other.HPKE, *rel.Context, rel.Secrets); err == nil {
		t.Error("another TEE's key opened the release")
	}
	// One secret asked for: only it.
	one, err := h.attestRelease(id, w, []string{"disk-key"})
	if err != nil || len(one.Release.Secrets) != 1 || one.Release.Secrets[0].Name != "disk-key" {
		t.Fatalf("one secret: %+v %v", one, err)
	}
	st := h.coord.Status()
	for _, ws := range st.Workloads {
		if ws.Name == w.Name && (ws.Attested != 2 || ws.Released != 3) {
			t.Errorf("status: attested %d released %d, want 2 and 3", ws.Attested, ws.Released)
		}
	}
}

func TestAttestReleaseRefusals(t *testing.T) {
	h := newHarness(t, nil)
	h.setUserSecrets()
	w := h.workload(manifest.SampleLedgerName)
	id, _ := agent.NewIdentity()
	// A secret not granted is refused once the evidence attested.
	_, err := h.attestRelease(id, w, []string{"signing-key"})
	wantProblem(t, err, http.StatusForbidden, `secret "signing-key" is not granted`)
	// The nonce is single use, as for /v1/attest.
	req, err := id.Evidence(context.Background(), h.client, tee(w), w.Name)
	if err != nil {
		t.Fatal(err)
	}
	areq := &api.AttestReleaseRequest{Workload: w.Name, Evidence: req.Evidence}
	if _, err := h.postAttestRelease(areq); err != nil {
		t.Fatal(err)
	}
	_, err = h.postAttestRelease(areq)
	wantProblem(t, err, http.StatusUnauthorized, "nonce")
	// Evidence of another workload's measurement is refused, and nothing is released.
	before := len(h.auditAll(""))
	wrong := h.workload("web")
	req, err = id.Evidence(context.Background(), h.client, tee(wrong), w.Name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.postAttestRelease(&api.AttestReleaseRequest{Workload: w.Name, Evidence: req.Evidence})
	wantProblem(t, err, http.StatusForbidden, "measurement")
	if after := len(h.auditAll("")); after != before {
		t.Errorf("a refused attestation recorded %d releases", after-before)
	}
	// Unknown fields are refused, as everywhere in the native API.
	var p api.AttestReleaseResponse
	err = h.do(http.MethodPost, api.PathAttestRelease, map[string]any{"workload": w.Name, "evidence": req.Evidence, "token": "x"}, "", &p)
	wantProblem(t, err, http.StatusBadRequest, "unknown field")
}

// An unattested caller cannot tell a granted secret from one not granted:
// both requests are refused alike, on their evidence.
func TestAttestReleaseHidesGrantsFromUnattested(t *testing.T) {
	h := newHarness(t, nil)
	h.setUserSecrets()
	w := h.workload(manifest.SampleLedgerName)
	if !slices.ContainsFunc(h.m.SecretsFor(w.Name), func(s manifest.Secret) bool { return s.Name == "db-password" }) ||
		slices.ContainsFunc(h.m.SecretsFor(w.Name), func(s manifest.Secret) bool { return s.Name == "signing-key" }) {
		t.Fatal("the sample manifest no longer grants db-password and not signing-key to the ledger")
	}
	answer := func(secret string) api.Problem {
		t.Helper()
		body := map[string]any{"workload": w.Name, "secrets": []string{secret}, "evidence": map[string]any{}}
		err := h.do(http.MethodPost, api.PathAttestRelease, body, "", new(api.AttestReleaseResponse))
		var p *api.Problem
		if !errors.As(err, &p) {
			t.Fatalf("secret %q: want a refusal, got %v", secret, err)
		}
		return *p
	}
	granted, notGranted := answer("db-password"), answer("signing-key")
	if granted.Status != http.StatusBadRequest || granted.Status != notGranted.Status || granted.Type != notGranted.Type || granted.Title != notGranted.Title {
		t.Errorf("granted: %d %q %q; not granted: %d %q %q; want the same 400", granted.Status, granted.Type, granted.Title, notGranted.Status, notGranted.Type, notGranted.Title)
	}
	if strings.Contains(notGranted.Detail, "signing-key") {
		t.Errorf("the refusal names the secret: %q", notGranted.Detail)
	}
}

// ownerAuth signs an owner request for path (with its query, if any).
func (h *harness) ownerAuth(method, path string) string {
	h.t.Helper()
	ch, err := h.client.Challenge(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	auth, err := api.SignOwner(h.m.Owners[0].Name, h.owner, method, path, ch.Nonce, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return auth
}

// auditPage reads one page of the audit trail as the owner.
func (h *harness) auditPage(query url.Values) (*api.AuditPage, error) {
	var page api.AuditPage
	target := api.PathAudit + "?" + query.Encode()
	if err := h.do(http.MethodGet, target, nil, h.ownerAuth(http.MethodGet, target), &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// auditAll reads the audit trail in pages of limit ("": the default).
func (h *harness) auditAll(limit string) []api.AuditRecord {
	h.t.Helper()
	var all []api.AuditRecord
	cursor := ""
	for range 1000 {
		q := url.Values{"after": {cursor}}
		if limit != "" {
			q.Set("limit", limit)
		}
		page, err := h.auditPage(q)
		if err != nil {
			h.t.Fatal(err)
		}
		all = append(all, page.Records...)
		if page.Next == "" {
			return all
		}
		cursor = page.Next
	}
	h.t.Fatal("the audit trail does not end")
	return nil
}

func TestAuditPages(t *testing.T) {
	h := newHarness(t, nil)
	h.setUserSecrets()
	w := h.workload(manifest.SampleLedgerName)
	id, _ := agent.NewIdentity()
	release := func(n int) {
		for range n {
			if _, err := h.attestRelease(id, w, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	release(5) // 10 records: two secrets a release
	ctx := context.Background()
	whole, err := h.client.Audit(ctx, h.ownerOf()) // read page by page by the client
	if err != nil || len(whole) != 10 {
		t.Fatalf("whole trail: %d records, %v", len(whole), err)
	}
	// Pages of 3 are the whole trail in order: none repeated, none skipped.
	if got := h.auditAll("3"); !slices.Equal(got, whole) {
		t.Fatalf("pages of 3: %d records, not the %d of the trail in order", len(got), len(whole))
	}
	// The default page holds everything here; a page is exactly limit long when more follow.
	first, err := h.auditPage(url.Values{"limit": {"4"}})
	if err != nil || len(first.Records) != 4 || first.Next == "" {
		t.Fatalf("first page: %+v %v", first, err)
	}
	if def, err := h.auditPage(url.Values{"after": {""}}); err != nil || len(def.Records) != 10 || def.Next != "" {
		t.Fatalf("default page: %d records, next %q, %v", len(def.Records), def.Next, err)
	}
	// Releases recorded while an owner pages through appear, once, after the rest.
	release(2)
	rest := []api.AuditRecord{}
	cursor := first.Next
	for cursor != "" {
		page, err := h.auditPage(url.Values{"after": {cursor}, "limit": {"4"}})
		if err != nil {
			t.Fatal(err)
		}
		rest, cursor = append(rest, page.Records...), page.Next
	}
	now, _ := h.client.Audit(ctx, h.ownerOf())
	if got := append(slices.Clone(first.Records), rest...); len(now) != 14 || !slices.Equal(got, now) {
		t.Fatalf("paging across new releases: %d records, want the %d of the trail in order", len(got), len(now))
	}
	// A well-formed cursor past the end answers an empty last page.
	if page, err := h.auditPage(url.Values{"after": {"99999999999999999999-ffffffffffffffff-ffffffffffffffff"}}); err != nil || len(page.Records) != 0 || page.Next != "" {
		t.Fatalf("after the end: %+v %v", page, err)
	}
	// Bounds and malformed cursors are refused with 400.
	for _, q := range []url.Values{
		{"limit": {"0"}}, {"limit": {"1001"}}, {"limit": {"-1"}}, {"limit": {"ten"}},
		{"after": {"not-a-cursor"}}, {"after": {"00000000000000000001-zzzzzzzzzzzzzzzz-0000000000000000"}},
		{"after": {"", ""}}, {"limit": {"1"}, "page": {"2"}},
	} {
		_, err := h.auditPage(q)
		wantProblem(t, err, http.StatusBadRequest, "")
	}
	// Pages are for owners only.
	var page api.AuditPage
	err = h.do(http.MethodGet, api.PathAudit+"?limit=1", nil, "", &page)
	wantProblem(t, err, http.StatusUnauthorized, "")
	// The signature covers the query: a signed page request whose cursor
	// or limit is changed, or that is signed without its query, is refused.
	for _, c := range []struct{ signed, sent string }{
		{api.PathAudit + "?limit=1", api.PathAudit + "?limit=2"},
		{api.PathAudit + "?after=&limit=1", api.PathAudit + "?after=" + first.Next + "&limit=1"},
		{api.PathAudit, api.PathAudit + "?limit=1"},
	} {
		err = h.do(http.MethodGet, c.sent, nil, h.ownerAuth(http.MethodGet, c.signed), &page)
		wantProblem(t, err, http.StatusUnauthorized, "")
	}
	if err := h.do(http.MethodGet, api.PathAudit+"?limit=1", nil, h.ownerAuth(http.MethodGet, api.PathAudit+"?limit=1"), &page); err != nil || len(page.Records) != 1 {
		t.Fatalf("a page signed with its query: %d records, %v", len(page.Records), err)
	}
}

func TestLargeManifestAccepted(t *testing.T) {
	h := newHarness(t, nil)
	// 6,000 workloads: over the 1 MiB limit of before, within manifest.MaxSize.
	m := *h.m
	w := h.workload(manifest.SampleLedgerName)
	for i := range 6000 {
		c := w
		c.Name = fmt.Sprintf("vm-%05d", i)
		m.Workloads = append(m.Workloads, c)
	}
	raw := rawManifest(t, &m)
	if len(raw) <= 1<<20 || len(raw) > manifest.MaxSize {
		t.Fatalf("test manifest is %d bytes", len(raw))
	}
	if _, err := h.client.SetManifest(context.Background(), h.ownerOf(), raw, nil); err != nil {
		t.Fatalf("a %d-byte manifest: %v", len(raw), err)
	}
	if api.MaxManifestBody != manifest.MaxSize {
		t.Errorf("api.MaxManifestBody %d, manifest.MaxSize %d", api.MaxManifestBody, manifest.MaxSize)
	}
}

// tokenID reads the jti of a token without verifying it.
func tokenID(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		t.Fatalf("token payload: %v", err)
	}
	return c.ID
}
