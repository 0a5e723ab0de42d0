package coordinator

import (
	"crypto/ecdsa"
	"crypto/hpke"
	"crypto/subtle"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/policy"
	"github.com/trustbound/trustbound/store"
	"github.com/trustbound/trustbound/token"
)

// route is one pattern the coordinator serves and its handler.
type route struct {
	pattern string // "METHOD /path/{param}", as http.ServeMux reads it
	handler http.HandlerFunc
}

// routes is every route the coordinator serves, the Azure-compatible
// surface's included: what Handler registers and what the OpenAPI test
// checks coordinator/openapi.yaml against. A route is added here and
// nowhere else.
func (c *Coordinator) routes() []route {
	return []route{
		{"GET " + api.PathHealth, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }},
		{"POST " + api.PathChallenge, c.handleChallenge},
		{"GET " + api.PathChallenge, c.handleChallenge},
		{"POST " + api.PathAttest, c.handleAttest},
		{"POST " + api.PathRelease, c.handleRelease},
		{"POST " + api.PathAttestRelease, c.handleAttestRelease},
		{"POST " + api.PathDryRun, c.handleDryRun},
		{"GET " + api.PathManifest, c.handleGetManifest},
		{"PUT " + api.PathManifest, c.handleSetManifest},
		{"PUT " + api.PathSecrets + "{name}", c.handleSetSecret},
		{"GET " + api.PathPolicies + "{name}", c.handleGetPolicy},
		{"PUT " + api.PathPolicies + "{name}", c.handleSetPolicy},
		{"GET " + api.PathStatus, c.handleStatus},
		{"GET " + api.PathAudit, c.handleAudit},
		{"GET " + PathCoordinatorEvidence, c.handleSelfEvidence},
		{"GET " + api.PathCA, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/x-pem-file")
			_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.service.Root().Raw})
		}},
		{"GET " + api.PathTrustBundle, c.handleTrustBundle},
		{"GET " + api.PathOpenAPI, handleOpenAPI},
		{"GET " + api.PathCerts, c.handleCerts},
		{"GET " + api.PathOpenIDConfiguration, c.handleOpenIDConfiguration},
		// The Azure Attestation compatible surface (maa*.go).
		{"POST /attest/{type}", c.handleMAAAttest},
		{"GET /policies/{type}", c.handleMAAGetPolicy},
		{"PUT /policies/{type}", c.handleMAASetPolicy},
		// The Confidential Containers KBS protocol surface (kbs.go).
		{"POST /kbs/v0/auth", c.handleKBSAuth},
		{"POST /kbs/v0/attest", c.handleKBSAttest},
		{"GET /kbs/v0/resource/{repo}/{type}/{tag}", c.handleKBSResource},
		// The Azure Key Vault compatible key release surface (akv.go).
		{"POST /keys/{name}/release", c.handleAKVRelease},
		{"POST /keys/{name}/{version}/release", c.handleAKVRelease},
	}
}

// Handler returns the coordinator's HTTP API: the native API, token key
// discovery and the Azure-compatible surface.
func (c *Coordinator) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range c.routes() {
		mux.HandleFunc(rt.pattern, c.bounded(rt.pattern, rt.handler))
	}
	return mux
}

// problem writes an RFC 7807 error. Details are error texts, which never
// carry secret values.
func (c *Coordinator) problem(w http.ResponseWriter, r *http.Request, status int, title string, err error) {
	c.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "reason", title, "err", err)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	p := api.Problem{Type: "urn:trustbound:error:" + slug(title), Title: title, Status: status}
	if err != nil {
		p.Detail = err.Error()
	}
	_ = json.NewEncoder(w).Encode(p)
}

// azureError is the error body of Azure's REST services, Key Vault's
// (akvFail) and Azure Attestation's (maaRefuse) alike.
type azureError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeAzureError writes an azureError of code and err's text, with the
// Content-Type the surface answers with.
func writeAzureError(w http.ResponseWriter, contentType string, status int, code string, err error) {
	var body azureError
	body.Error.Code, body.Error.Message = code, err.Error()
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func slug(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !('a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9') {
			if 'A' <= ch && ch <= 'Z' {
				b[i] = ch + 'a' - 'A'
			} else {
				b[i] = '-'
			}
		}
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads at most api.MaxBody bytes; on failure it writes the
// refusal and returns false.
func (c *Coordinator) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	return c.readBodyUpTo(w, r, api.MaxBody)
}

// readBodyUpTo reads at most limit bytes; on failure it writes the
// refusal and returns false.
func (c *Coordinator) readBodyUpTo(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := readLimited(w, r, limit)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			c.problem(w, r, http.StatusRequestEntityTooLarge, "Request too large", fmt.Errorf("the body may be at most %d bytes", limit))
		} else {
			c.problem(w, r, http.StatusBadRequest, "Unreadable request", err)
		}
		return nil, false
	}
	return b, true
}

// readLimited reads the request body, at most limit bytes (beyond, the
// error is an *http.MaxBytesError), and writes nothing: the surfaces
// that answer in their own error format (AKV, MAA) refuse themselves.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return readAllSized(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
}

// maxPresize bounds the buffer readAllSized allocates on the word of a
// Content-Length header, before any of the body has arrived.
const maxPresize = 64 << 10

// readAllSized is io.ReadAll with the buffer sized from the request's
// Content-Length (at most maxPresize; the reader enforces the limit), so
// a body of the declared length is read without growing and copying the
// buffer from 512 bytes up. A wrong Content-Length changes only the
// first allocation: the server's body reader never yields more.
func readAllSized(r io.Reader, contentLength int64) ([]byte, error) {
	size := 512
	if contentLength > 0 {
		// One more byte than declared, so the read that finds EOF has room.
		size = int(min(contentLength, maxPresize)) + 1
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow, as io.ReadAll does
		}
	}
}

func (c *Coordinator) handleChallenge(w http.ResponseWriter, r *http.Request) {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	if !c.limiter.allow(client, c.now()) {
		w.Header().Set("Retry-After", "1")
		c.problem(w, r, http.StatusTooManyRequests, "Too many challenges", errors.New("this client takes challenges too fast; retry shortly"))
		return
	}
	nonce, exp, err := c.nonces.issue(c.now())
	if err != nil {
		c.problem(w, r, http.StatusServiceUnavailable, "Challenge unavailable", err)
		return
	}
	writeJSON(w, api.Challenge{Nonce: nonce, ExpiresAt: exp.UTC()})
}

func (c *Coordinator) handleAttest(w http.ResponseWriter, r *http.Request) {
	var req api.AttestRequest
	if !c.decodeBody(w, r, &req) {
		return
	}
	if _, _, at, ok := c.attestWorkload(w, r, &req); ok {
		writeJSON(w, at.resp)
	}
}

// decodeBody reads the request body (readBody) and decodes it strictly
// into v; on failure it writes the problem and returns false.
func (c *Coordinator) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := c.readBody(w, r)
	if !ok {
		return false
	}
	if err := api.DecodeStrict(body, v); err != nil {
		c.problem(w, r, http.StatusBadRequest, "Malformed request", err)
		return false
	}
	return true
}

// attestWorkload attests req under the manifest in force and the
// workload it names, and records the verdict in the status. On refusal
// it writes the problem and returns false.
func (c *Coordinator) attestWorkload(w http.ResponseWriter, r *http.Request, req *api.AttestRequest) (*manifestState, *manifest.Workload, *attested, bool) {
	ms := c.manifestInForce()
	if ms == nil {
		c.problem(w, r, http.StatusConflict, "No manifest", errors.New("no manifest is set; an owner must set one first"))
		return nil, nil, nil, false
	}
	wl, ok := ms.parsed.Workload(req.Workload)
	if !ok {
		// Which names the manifest holds is answered only to evidence
		// that verifies and binds a fresh nonce: a caller without a TEE
		// cannot list the workloads by trying names.
		if _, _, status, title, err := c.verifyEvidence(r, ms, req, c.now()); err != nil {
			c.problem(w, r, status, title, err)
			return nil, nil, nil, false
		}
		c.problem(w, r, http.StatusNotFound, "Unknown workload", fmt.Errorf("workload %q is not in the manifest", req.Workload))
		return nil, nil, nil, false
	}
	at, status, title, err := c.attest(r, ms, wl, req)
	if err != nil {
		c.record(wl.Name, func(rec *workloadRecord) { rec.refused++; rec.lastVerdict = "refused: " + title })
		c.problem(w, r, status, title, err)
		return nil, nil, nil, false
	}
	c.recordAttested(wl.Name, at.resp.Simulated, c.now())
	c.log.Info("attested", "workload", wl.Name, "tee", at.resp.Claims.TEE, "simulated", at.resp.Simulated)
	return ms, wl, at, true
}

// recordAttested notes in the status a successful attestation, at now,
// of workload (on /v1/attest and /kbs/v0/attest alike).
func (c *Coordinator) recordAttested(workload string, simulated bool, now time.Time) {
	c.record(workload, func(rec *workloadRecord) {
		rec.attested++
		rec.lastVerdict = "affirming"
		rec.lastAttested = now.UTC()
		rec.simulated = simulated
	})
}

// handleAttestRelease is /v1/attest and /v1/release in one request: the
// evidence is verified and appraised as for /v1/attest, and the release
// is decided on the claims of the token just issued, under the same
// manifest state, so the token is neither re-read nor re-verified. The
// secrets are sealed under one HPKE context (api.ReleaseContext).
func (c *Coordinator) handleAttestRelease(w http.ResponseWriter, r *http.Request) {
	var req api.AttestReleaseRequest
	if !c.decodeBody(w, r, &req) {
		return
	}
	// The secrets asked for are checked by release, only once the evidence
	// attested: an unattested caller learns nothing of a workload's grants.
	ms, wl, at, ok := c.attestWorkload(w, r, &api.AttestRequest{Workload: req.Workload, Evidence: req.Evidence})
	if !ok {
		return
	}
	rel, status, title, err := c.release(r, ms, wl, at.claims, at.to, req.Secrets, true)
	if err != nil {
		c.problem(w, r, status, title, err)
		return
	}
	writeJSON(w, api.AttestReleaseResponse{AttestResponse: *at.resp, Release: *rel})
}

// attested is what attest returns: the answer, the claims of the token
// issued, and the TEE's HPKE key (the token's) as RecipientKey parsed it.
type attested struct {
	resp   *api.AttestResponse
	claims *token.Claims
	to     hpke.PublicKey
}

// verifyEvidence is the part of the trust path that needs no workload
// of the manifest: runtime data read, its nonce used up, the evidence
// verified and bound to it. It returns the HTTP status and title of a
// refusal.
func (c *Coordinator) verifyEvidence(r *http.Request, ms *manifestState, req *api.AttestRequest, now time.Time) (*attest.Claims, *api.RuntimeData, int, string, error) {
	rd, err := api.ParseRuntimeData(req.Evidence.RuntimeData)
	if err != nil {
		return nil, nil, http.StatusBadRequest, "Malformed runtime data", err
	}
	if rd.Workload != req.Workload {
		return nil, nil, http.StatusBadRequest, "Malformed runtime data", fmt.Errorf("runtime data names workload %q, request names %q", rd.Workload, req.Workload)
	}
	// The nonce is used up before anything else, so a failed attempt
	// cannot be retried with it.
	if err := c.nonces.consume(rd.Nonce, now); err != nil {
		return nil, nil, http.StatusUnauthorized, "Stale or replayed nonce", err
	}
	claims, err := c.cfg.Verifiers.Verify(r.Context(), &req.Evidence, attest.Options{Now: now, AllowSimulated: ms.parsed.AllowSimulated})
	if err != nil {
		status := http.StatusForbidden
		if errors.Is(err, attest.ErrMalformed) || errors.Is(err, attest.ErrUnknownFormat) {
			status = http.StatusBadRequest
		}
		return nil, nil, status, "Evidence refused", err
	}
	if err := attest.BindsNative(claims.ReportData, req.Evidence.RuntimeData); err != nil {
		return nil, nil, http.StatusForbidden, "Evidence refused", err
	}
	return claims, rd, 0, "", nil
}

// attest is the trust path for one request: nonce, verification, binding
// (verifyEvidence), appraisal, token. It returns the HTTP status and title
// of a refusal.
func (c *Coordinator) attest(r *http.Request, ms *manifestState, wl *manifest.Workload, req *api.AttestRequest) (*attested, int, string, error) {
	now := c.now()
	claims, rd, status, title, err := c.verifyEvidence(r, ms, req, now)
	if err != nil {
		return nil, status, title, err
	}
	idKey, ok := rd.Key(api.KeyIdentity)
	if !ok {
		return nil, http.StatusBadRequest, "Malformed runtime data", fmt.Errorf("runtime data has no %q key", api.KeyIdentity)
	}
	if _, err := idKey.PublicKey(); err != nil {
		return nil, http.StatusBadRequest, "Malformed runtime data", err
	}
	to, err := keybroker.RecipientKey(rd.HPKE)
	if err != nil {
		return nil, http.StatusBadRequest, "Malformed runtime data", err
	}
	spiffe, err := identity.SPIFFEID(ms.parsed.TrustDomain, string(wl.Model), wl.Name)
	if err != nil {
		return nil, http.StatusInternalServerError, "Appraisal failed", err
	}
	pols, err := c.workloadPolicies(r.Context(), wl.Policies)
	if err != nil {
		return nil, http.StatusInternalServerError, "Appraisal failed", err
	}
	iss := c.issuer(token.ES256)
	a, err := EvaluateLayers(r.Context(), AppraisalInput{
		Claims: claims, Manifest: ms.parsed, ManifestDigest: ms.Digest, Workload: wl, Policies: pols,
		Result: token.AttestationResult{
			Subject: spiffe.String(), Nonce: rd.Nonce, Runtime: req.Evidence.RuntimeData,
			EvidenceDigest: manifest.Digest(req.Evidence.Data),
		},
		Issuer: iss.Name(), TTL: c.cfg.TokenTTL, Now: now,
	})
	switch {
	case errors.Is(err, policy.ErrDenied):
		return nil, http.StatusForbidden, "Appraisal denied", err
	case err != nil:
		return nil, http.StatusInternalServerError, "Appraisal failed", err
	}
	claims.Model = string(wl.Model)
	tok, tc, err := iss.IssueClaims(a.Claims, now)
	if err != nil {
		return nil, http.StatusInternalServerError, "Token not issued", err
	}
	return &attested{resp: &api.AttestResponse{Token: tok, Claims: *claims, Simulated: claims.Simulated}, claims: tc, to: to}, 0, "", nil
}

func (c *Coordinator) handleRelease(w http.ResponseWriter, r *http.Request) {
	var req api.ReleaseRequest
	if !c.decodeBody(w, r, &req) {
		return
	}
	tc, err := c.issuer(token.ES256).Verify(req.Token, c.now())
	if err != nil {
		c.problem(w, r, http.StatusUnauthorized, "Token refused", err)
		return
	}
	// One manifest state decides the whole release; recording it is
	// conditional on that state still being in force.
	ms := c.manifestInForce()
	if ms == nil || ms.Digest != tc.ManifestDigest {
		c.problem(w, r, http.StatusUnauthorized, "Token refused", errors.New("the token was issued under another manifest than the one in force; attest again"))
		return
	}
	wl, ok := ms.parsed.Workload(tc.Workload)
	if !ok {
		c.problem(w, r, http.StatusUnauthorized, "Token refused", fmt.Errorf("workload %q is no longer in the manifest", tc.Workload))
		return
	}
	rel, status, title, err := c.release(r, ms, wl, tc, nil, req.Secrets, false)
	if err != nil {
		c.problem(w, r, status, title, err)
		return
	}
	writeJSON(w, rel)
}

// secretsFor returns the secrets of m granted to wl that names asks for
// (every granted one when names is empty), refusing one not granted.
func secretsFor(m *manifest.Manifest, wl *manifest.Workload, names []string) ([]manifest.Secret, error) {
	granted := m.SecretsFor(wl.Name)
	if len(names) == 0 {
		return granted, nil
	}
	var secrets []manifest.Secret
	for _, name := range names {
		i := slices.IndexFunc(granted, func(s manifest.Secret) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("secret %q is not granted to workload %q", name, wl.Name)
		}
		secrets = append(secrets, granted[i])
	}
	return secrets, nil
}

// release issues the workload certificate and releases the secrets named
// (all granted ones when names is empty) to the keys of the token claims
// tc, decided under the manifest state ms: sealed one by one, or under one
// HPKE context when oneContext is set. to is tc's HPKE key already parsed,
// or nil. It returns the HTTP status and title of a refusal.
func (c *Coordinator) release(r *http.Request, ms *manifestState, wl *manifest.Workload, tc *token.Claims, to hpke.PublicKey, names []string, oneContext bool) (*api.ReleaseResponse, int, string, error) {
	now := c.now()
	secrets, err := secretsFor(ms.parsed, wl, names)
	if err != nil {
		return nil, http.StatusForbidden, "Secret not granted", err
	}
	idJWK, _ := (&api.RuntimeData{Keys: tc.Runtime.Keys}).Key(api.KeyIdentity)
	idPub, err := idJWK.PublicKey()
	if err != nil {
		return nil, http.StatusUnauthorized, "Token refused", err
	}
	ca, err := c.caFor(r.Context(), ms.parsed.TrustDomain)
	if err != nil {
		return nil, http.StatusInternalServerError, "Identity not issued", err
	}
	inter, err := c.intermediateFor(r.Context(), ca, ms.Digest)
	if err != nil {
		return nil, http.StatusInternalServerError, "Identity not issued", err
	}
	certDER, err := inter.IssueWorkload(identity.WorkloadRequest{
		PublicKey: idPub, TrustDomain: ms.parsed.TrustDomain, Model: string(wl.Model), Workload: wl.Name,
		Simulated: tc.Simulated, NotBefore: now, TTL: c.cfg.CertTTL,
	})
	if err != nil {
		return nil, http.StatusInternalServerError, "Identity not issued", err
	}
	spiffe, err := identity.SPIFFEID(ms.parsed.TrustDomain, string(wl.Model), wl.Name)
	if err != nil {
		return nil, http.StatusInternalServerError, "Identity not issued", err
	}
	breq := keybroker.ReleaseRequest{
		Record:     keybroker.Release{Workload: wl.Name, EvidenceDigest: tc.EvidenceDigest, TokenID: tc.ID, Simulated: tc.Simulated},
		Secrets:    secrets,
		To:         tc.Runtime.HPKE,
		ToKey:      to,
		Now:        now,
		Certs:      ca,
		Conditions: []store.Op{{Key: keyManifest, Expect: ms.Revision, Check: true}},
	}
	var wrapped []api.WrappedSecret
	var rc *api.ReleaseContext
	if oneContext {
		var ctxt api.ReleaseContext
		if wrapped, ctxt, err = c.broker.ReleaseAll(r.Context(), breq); err == nil {
			rc = &ctxt
		}
	} else {
		wrapped, err = c.broker.Release(r.Context(), breq)
	}
	if err != nil {
		status, title := http.StatusInternalServerError, "Release failed"
		switch {
		case errors.Is(err, keybroker.ErrNoValue), errors.Is(err, keybroker.ErrTypeChanged):
			status = http.StatusConflict
		case errors.Is(err, store.ErrConflict):
			status, title = http.StatusConflict, "Release failed: the manifest changed meanwhile; attest again"
		}
		return nil, status, title, err
	}
	c.record(wl.Name, func(rec *workloadRecord) { rec.released++ })
	c.log.Info("released", "workload", wl.Name, "secrets", len(wrapped), "simulated", tc.Simulated)
	return &api.ReleaseResponse{
		Workload: wl.Name,
		SPIFFEID: spiffe.String(),
		// The chain: the leaf, then the intermediate of this manifest.
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})) +
			string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Certificate().Raw})),
		CA:        string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root().Raw})),
		Secrets:   wrapped,
		Simulated: tc.Simulated,
		Context:   rc,
	}, 0, "", nil
}

// ownerAuthority checks a TB-Owner signature over the request by one of
// owners, using up its nonce. It returns the owner's name.
func (c *Coordinator) ownerAuthority(r *http.Request, body []byte, owners []manifest.Owner) (string, error) {
	a, err := api.ParseOwnerAuth(r.Header.Get("Authorization"))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if err := c.nonces.consume(a.Nonce, c.now()); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	i := slices.IndexFunc(owners, func(o manifest.Owner) bool { return o.Name == a.Name })
	if i < 0 {
		return "", fmt.Errorf("%w: %q is not an owner", ErrUnauthorized, a.Name)
	}
	pub, err := owners[i].Key()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if err := api.VerifyOwner(pub, api.OwnerPayload(r.Method, ownerTarget(r), a.Nonce, body), a.Sig); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return a.Name, nil
}

// ownerOnly checks that a request without a body carries the authority of
// an owner of the manifest in force, writing the refusal if not.
func (c *Coordinator) ownerOnly(w http.ResponseWriter, r *http.Request) (*manifestState, bool) {
	ms, _, ok := c.ownerSigned(w, r, nil, http.StatusNotFound)
	return ms, ok
}

// ownerSigned checks that the request, of body, carries the authority of
// an owner of the manifest in force, and returns that state and owner. If
// not it writes the refusal: noManifest when no manifest is set, 401 when
// the signature is not an owner's.
func (c *Coordinator) ownerSigned(w http.ResponseWriter, r *http.Request, body []byte, noManifest int) (*manifestState, string, bool) {
	ms := c.manifestInForce()
	if ms == nil {
		c.problem(w, r, noManifest, "No manifest", errors.New("no manifest is set"))
		return nil, "", false
	}
	owner, err := c.ownerAuthority(r, body, ms.parsed.Owners)
	if err != nil {
		c.problem(w, r, http.StatusUnauthorized, "Owner signature required", err)
		return nil, "", false
	}
	return ms, owner, true
}

func (c *Coordinator) handleGetManifest(w http.ResponseWriter, r *http.Request) {
	ms, ok := c.ownerOnly(w, r)
	if !ok {
		return
	}
	js, err := json.Marshal(ms.parsed)
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Manifest unavailable", err)
		return
	}
	writeJSON(w, api.ManifestResponse{Digest: ms.Digest, Revision: ms.Revision, Manifest: js, Raw: ms.Raw})
}

func (c *Coordinator) handleSetManifest(w http.ResponseWriter, r *http.Request) {
	body, ok := c.readBodyUpTo(w, r, manifest.MaxSize)
	if !ok {
		return
	}
	prev := c.manifestInForce()
	var owner string
	if prev != nil {
		// The owners of the manifest in force decide, before anything of
		// the new document is parsed.
		var err error
		if owner, err = c.ownerAuthority(r, body, prev.parsed.Owners); err != nil {
			c.problem(w, r, http.StatusUnauthorized, "Owner signature required", err)
			return
		}
	} else if subtle.ConstantTimeCompare([]byte(r.Header.Get(api.HeaderBootstrap)), c.cfg.BootstrapToken) != 1 {
		// The first manifest needs the operator's bootstrap token.
		c.problem(w, r, http.StatusUnauthorized, "Bootstrap token required",
			errors.New("the first manifest must carry the coordinator's bootstrap token (header "+api.HeaderBootstrap+"; see bootstrap.token in its data directory)"))
		return
	}
	m, err := manifest.Parse(body)
	if err == nil {
		err = m.Validate()
	}
	if err != nil {
		c.problem(w, r, http.StatusBadRequest, "Invalid manifest", err)
		return
	}
	if prev == nil {
		// ...and the signature of one of its own owners.
		if owner, err = c.ownerAuthority(r, body, m.Owners); err != nil {
			c.problem(w, r, http.StatusUnauthorized, "Owner signature required", err)
			return
		}
	}
	st, err := c.setManifest(r.Context(), body, m, owner, prev)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, store.ErrConflict) {
			status = http.StatusConflict
		}
		c.problem(w, r, status, "Manifest not set", err)
		return
	}
	c.log.Info("manifest set", "owner", owner, "digest", st.Digest, "revision", st.Revision)
	writeJSON(w, api.SetManifestResponse{Digest: st.Digest, Revision: st.Revision})
}

func (c *Coordinator) handleSetSecret(w http.ResponseWriter, r *http.Request) {
	body, ok := c.readBody(w, r)
	if !ok {
		return
	}
	ms, owner, ok := c.ownerSigned(w, r, body, http.StatusConflict)
	if !ok {
		return
	}
	name := r.PathValue("name")
	i := slices.IndexFunc(ms.parsed.Secrets, func(s manifest.Secret) bool { return s.Name == name })
	if i < 0 {
		c.problem(w, r, http.StatusNotFound, "Unknown secret", fmt.Errorf("secret %q is not in the manifest", name))
		return
	}
	var req api.SetSecretRequest
	if err := api.DecodeStrict(body, &req); err != nil {
		c.problem(w, r, http.StatusBadRequest, "Malformed request", errors.New("body must be {\"value\": <base64>}"))
		return
	}
	v, err := c.broker.SetUser(r.Context(), ms.parsed.Secrets[i], req.Value, c.now())
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, keybroker.ErrTypeChanged) {
			status = http.StatusConflict
		}
		c.problem(w, r, status, "Secret not set", err)
		return
	}
	c.log.Info("secret set", "owner", owner, "secret", name, "version", v)
	writeJSON(w, api.SetSecretResponse{Name: name, Version: v})
}

func (c *Coordinator) handleStatus(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.ownerOnly(w, r); !ok {
		return
	}
	writeJSON(w, c.Status())
}

// handleAudit serves the audit trail. With after or limit in the query it
// answers one page (api.AuditPage; limit 1..api.MaxAuditLimit, default
// api.DefaultAuditLimit; after the next of the previous page); without
// either, the whole trail as one array, as before pages existed.
func (c *Coordinator) handleAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	paged := q.Has("after") || q.Has("limit")
	limit := api.DefaultAuditLimit
	if paged {
		for name := range q {
			if name != "after" && name != "limit" {
				c.problem(w, r, http.StatusBadRequest, "Malformed request", fmt.Errorf("unknown query parameter %q (after, limit)", name))
				return
			}
		}
		if len(q["after"]) > 1 || len(q["limit"]) > 1 {
			c.problem(w, r, http.StatusBadRequest, "Malformed request", errors.New("after and limit may each be given once"))
			return
		}
		if after := q.Get("after"); after != "" {
			if err := keybroker.CheckCursor(after); err != nil {
				c.problem(w, r, http.StatusBadRequest, "Malformed request", err)
				return
			}
		}
		if q.Has("limit") {
			n, err := strconv.Atoi(q.Get("limit"))
			if err != nil || n < 1 || n > api.MaxAuditLimit {
				c.problem(w, r, http.StatusBadRequest, "Malformed request", fmt.Errorf("limit must be an integer from 1 to %d", api.MaxAuditLimit))
				return
			}
			limit = n
		}
	}
	if _, ok := c.ownerOnly(w, r); !ok {
		return
	}
	if !paged {
		recs, err := c.broker.Audit(r.Context())
		if err != nil {
			c.problem(w, r, http.StatusInternalServerError, "Audit unavailable", err)
			return
		}
		writeJSON(w, recs)
		return
	}
	recs, next, err := c.broker.AuditPage(r.Context(), q.Get("after"), limit)
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Audit unavailable", err)
		return
	}
	writeJSON(w, api.AuditPage{Records: recs, Next: next})
}

// handleTrustBundle serves the workload CA of the manifest in force: what
// relying parties verify workload certificates (X.509-SVIDs) against.
func (c *Coordinator) handleTrustBundle(w http.ResponseWriter, r *http.Request) {
	ms := c.manifestInForce()
	if ms == nil {
		c.problem(w, r, http.StatusNotFound, "No manifest", errors.New("no manifest is set"))
		return
	}
	ca, err := c.caFor(r.Context(), ms.parsed.TrustDomain)
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Trust bundle unavailable", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Root().Raw})
}

// Status reports the workloads of the manifest in force, their trust
// boundaries and what happened to them.
func (c *Coordinator) Status() api.Status {
	var st api.Status
	ms := c.manifestInForce()
	if ms == nil {
		return st
	}
	st.ManifestDigest, st.AllowSimulated = ms.Digest, ms.parsed.AllowSimulated
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, wl := range ms.parsed.Workloads {
		ws := api.WorkloadStatus{Name: wl.Name, Model: string(wl.Model), TEE: string(wl.TEE)}
		if b, err := deploy.BoundaryOf(wl.Model, wl.TEE); err == nil {
			ws.Inside, ws.Outside = b.Inside, b.Outside
		}
		if rec := c.status[wl.Name]; rec != nil {
			ws.Attested, ws.Refused, ws.Released = rec.attested, rec.refused, rec.released
			ws.LastVerdict, ws.LastAttested, ws.Simulated = rec.lastVerdict, rec.lastAttested, rec.simulated
		}
		st.Workloads = append(st.Workloads, ws)
	}
	return st
}

// issueServer makes the coordinator's TLS certificate for hosts (names or
// IP addresses).
func issueServer(ca *identity.CA, key *ecdsa.PrivateKey, hosts []string, now time.Time) ([]byte, error) {
	var names []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, h)
		}
	}
	return ca.IssueServer(&key.PublicKey, names, ips, now, 90*24*time.Hour)
}

// ownerTarget is what an owner signs as the request's path: the path, and
// "?" and the raw query when there is one, so a signed request's query
// (an audit page's cursor and limit) cannot be changed either.
func ownerTarget(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return r.URL.Path
	}
	return r.URL.Path + "?" + r.URL.RawQuery
}
