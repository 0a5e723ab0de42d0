package coordinator

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gowebpki/jcs"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/policy"
	"github.com/trustbound/trustbound/store"
	"github.com/trustbound/trustbound/token"
)

// The Confidential Containers KBS protocol surface (/kbs/v0), so that CoCo
// guest components can use trustbound as their key broker. As Trustee's
// KBS (kbs/src/attestation/backend.rs) and guest-components' client
// (attestation-agent/kbs_protocol/src/client/rcar_client.rs) speak it:
//
//   - POST /kbs/v0/auth {"version", "tee", "extra-params"} answers
//     {"nonce", "extra-params"} and sets the cookie kbs-session-id;
//   - POST /kbs/v0/attest {"init-data"?, "runtime-data": {"nonce",
//     "tee-pubkey"}, "tee-evidence"} with the cookie answers {"token"};
//     tee-evidence is either the composite evidence of protocol 0.4
//     ({"primary_evidence", "additional_evidence"}) or, for older
//     clients, the TEE's evidence itself;
//   - GET /kbs/v0/resource/<repo>/<type>/<tag> with the attested cookie
//     (or Authorization: Bearer <token this coordinator issued>) answers
//     the resource as a flattened JWE to the tee-pubkey.
//
// Binding: the evidence's report data is SHA-384 (the client's default
// when the challenge selects no algorithm, which this one never does) of
// the canonical JSON (RFC 8785: members sorted, no whitespace) of
// {"nonce", "tee-pubkey"} and, with composite evidence,
// "additional-evidence"; either exactly (the az-*-vtpm attesters' TPM
// quote nonce) or zero-padded to 64 bytes.
//
// Where trustbound decides:
//   - KBS requests name no workload: the claims must pass the whole
//     appraisal (EvaluateLayers) of exactly one workload of the manifest
//     with the evidence's TEE, else 403;
//   - TEEs: az-snp-vtpm and az-tdx-vtpm, whose evidence is trustbound's
//     own formats, and bare tdx and snp, whose guest-components JSON is
//     mapped to attest.FormatTDXQuote and attest.FormatSNPReport
//     (kbs_tee.go). sgx and the rest are refused; additional (device)
//     evidence is refused;
//   - init-data, when sent, must be what the evidence bound: its digest
//     is HOST_DATA (snp), MRCONFIGID (tdx), or extended into vTPM PCR 8
//     (az-*-vtpm), as Trustee checks it (kbs_initdata.go); when absent,
//     nothing is compared, and a hostData or PCR 8 pinned in the manifest
//     still applies through appraisal;
//   - the bare tdx evidence's CC event log, when sent, must replay to the
//     quote's RTMRs (kbs_tee.go);
//   - resource paths: <repo>/<type>/<tag> = default/<secret name>/<version>
//     where version is a version number or "latest"; any other repo is
//     not found;
//   - tokens are the coordinator's native ES256 EAR tokens, carrying the
//     runtime data (with the tee-pubkey) as x-ms-runtime;
//   - sessions live in memory, at most kbsMaxSessions, for the token TTL.

// kbsCookie is the session cookie of the protocol.
const kbsCookie = "kbs-session-id"

// kbsMaxSessions bounds the sessions kept; past it the oldest is dropped.
const kbsMaxSessions = 4096

// kbsVersions are the protocol versions accepted: 0.4.0 (composite
// evidence, Trustee since 2025) and the 0.1 line of older clients.
var kbsVersions = []string{"0.1.0", "0.1.1", "0.4.0"}

// kbsTEEs maps the KBS tee names trustbound verifies to evidence formats.
var kbsTEEs = map[string]attest.Format{
	"az-snp-vtpm": attest.FormatAzureSNPVTPM,
	"az-tdx-vtpm": attest.FormatAzureTDXVTPM,
	"snp":         attest.FormatSNPReport,
	"tdx":         attest.FormatTDXQuote,
}

// kbsSession is one session: a challenge, then perhaps an attestation.
type kbsSession struct {
	id      string
	tee     string
	nonce   string
	expires time.Time

	attested       bool
	token          string
	tokenID        string
	workload       string
	manifestDigest string
	evidenceDigest string
	simulated      bool
	teeKey         *jose.JSONWebKey
}

// kbsSessions is the bounded session map.
type kbsSessions struct {
	mu    sync.Mutex
	live  map[string]*kbsSession
	order []string
}

func newKBSSessions() *kbsSessions { return &kbsSessions{live: map[string]*kbsSession{}} }

func (s *kbsSessions) add(sess *kbsSession, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) > 0 {
		head := s.order[0]
		e, ok := s.live[head]
		if ok && now.Before(e.expires) && len(s.live) < kbsMaxSessions {
			break
		}
		delete(s.live, head)
		s.order = s.order[1:]
	}
	s.live[sess.id] = sess
	s.order = append(s.order, sess.id)
}

// get returns a copy of the live session id.
func (s *kbsSessions) get(id string, now time.Time) (kbsSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.live[id]
	if !ok || !now.Before(sess.expires) {
		return kbsSession{}, false
	}
	return *sess, true
}

// takeNonce uses up the session's challenge: it succeeds once.
func (s *kbsSessions) takeNonce(id, nonce string, now time.Time) (kbsSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.live[id]
	if !ok || !now.Before(sess.expires) {
		return kbsSession{}, errors.New("no live session: POST /kbs/v0/auth first and send its kbs-session-id cookie")
	}
	used := sess.nonce == ""
	match := subtle.ConstantTimeCompare([]byte(sess.nonce), []byte(nonce)) == 1
	sess.nonce = "" // a failed attempt uses the challenge up too
	if used || !match {
		return kbsSession{}, fmt.Errorf("%w: runtime-data.nonce is not this session's challenge, or it was used", ErrNonce)
	}
	return *sess, nil
}

func (s *kbsSessions) attested(id string, done kbsSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.live[id]; ok {
		done.nonce = ""
		*sess = done
	}
}

type kbsRequest struct {
	Version     string          `json:"version"`
	TEE         string          `json:"tee"`
	ExtraParams json.RawMessage `json:"extra-params"`
}

type kbsInitData struct {
	Format string `json:"format"`
	Body   string `json:"body"`
}

type kbsRuntimeData struct {
	Nonce     string          `json:"nonce"`
	TEEPubKey json.RawMessage `json:"tee-pubkey"`
}

type kbsAttestation struct {
	InitData    *kbsInitData    `json:"init-data,omitempty"`
	RuntimeData kbsRuntimeData  `json:"runtime-data"`
	TEEEvidence json.RawMessage `json:"tee-evidence"`
}

type kbsComposite struct {
	Primary    json.RawMessage `json:"primary_evidence"`
	Additional *string         `json:"additional_evidence"`
}

func (c *Coordinator) handleKBSAuth(w http.ResponseWriter, r *http.Request) {
	body, ok := c.readBody(w, r)
	if !ok {
		return
	}
	var req kbsRequest
	if err := json.Unmarshal(body, &req); err != nil {
		c.problem(w, r, http.StatusBadRequest, "Malformed request", err)
		return
	}
	if !slices.Contains(kbsVersions, req.Version) {
		c.problem(w, r, http.StatusBadRequest, "Unsupported protocol version", fmt.Errorf("KBS protocol version %q; this KBS speaks %s", req.Version, strings.Join(kbsVersions, ", ")))
		return
	}
	if _, ok := kbsTEEs[req.TEE]; !ok {
		c.problem(w, r, http.StatusBadRequest, "Unsupported TEE", fmt.Errorf("tee %q is not verified here; supported: az-snp-vtpm, az-tdx-vtpm, snp, tdx (sgx evidence: use /v1/attest)", req.TEE))
		return
	}
	// The challenge comes from the coordinator's nonce store (single use,
	// NonceTTL) and is bound to the session besides.
	nonce, _, err := c.nonces.issue(c.now())
	id := make([]byte, 32)
	if err == nil {
		_, err = rand.Read(id)
	}
	if err != nil {
		c.problem(w, r, http.StatusServiceUnavailable, "Challenge unavailable", err)
		return
	}
	ttl := max(c.cfg.NonceTTL, c.cfg.TokenTTL)
	sess := &kbsSession{id: base64.RawURLEncoding.EncodeToString(id), tee: req.TEE, nonce: nonce, expires: c.now().Add(ttl)}
	c.kbs.add(sess, c.now())
	http.SetCookie(w, &http.Cookie{Name: kbsCookie, Value: sess.id, Path: "/kbs/v0", MaxAge: int(ttl / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, map[string]any{"nonce": nonce, "extra-params": map[string]any{}})
}

func (c *Coordinator) handleKBSAttest(w http.ResponseWriter, r *http.Request) {
	body, ok := c.readBody(w, r)
	if !ok {
		return
	}
	ck, err := r.Cookie(kbsCookie)
	if err != nil {
		c.problem(w, r, http.StatusUnauthorized, "No session", errors.New("no kbs-session-id cookie: POST /kbs/v0/auth first"))
		return
	}
	var req kbsAttestation
	if err := json.Unmarshal(body, &req); err != nil {
		c.problem(w, r, http.StatusBadRequest, "Malformed request", err)
		return
	}
	now := c.now()
	// The challenge is used up before anything else is looked at.
	sess, err := c.kbs.takeNonce(ck.Value, req.RuntimeData.Nonce, now)
	if err == nil {
		err = c.nonces.consume(req.RuntimeData.Nonce, now)
	}
	if err != nil {
		c.problem(w, r, http.StatusUnauthorized, "Stale or replayed nonce", err)
		return
	}
	done, status, title, err := c.kbsAttest(r, sess, &req, now)
	if err != nil {
		c.problem(w, r, status, title, err)
		return
	}
	c.kbs.attested(sess.id, *done)
	c.recordAttested(done.workload, done.simulated, now)
	c.log.Info("kbs attested", "workload", done.workload, "tee", sess.tee, "simulated", done.simulated)
	writeJSON(w, map[string]string{"token": done.token})
}

// kbsAttest is the trust path of one KBS attestation: evidence,
// verification, binding, the one workload the claims satisfy, token.
func (c *Coordinator) kbsAttest(r *http.Request, sess kbsSession, req *kbsAttestation, now time.Time) (*kbsSession, int, string, error) {
	var teeKey jose.JSONWebKey
	if err := teeKey.UnmarshalJSON(req.RuntimeData.TEEPubKey); err != nil {
		return nil, http.StatusBadRequest, "Malformed runtime data", fmt.Errorf("tee-pubkey: %w", err)
	}
	if _, err := keybroker.JWEAlgorithm(&teeKey); err != nil {
		return nil, http.StatusBadRequest, "Malformed runtime data", fmt.Errorf("tee-pubkey: %w", err)
	}
	bound := map[string]any{"nonce": req.RuntimeData.Nonce, "tee-pubkey": json.RawMessage(req.RuntimeData.TEEPubKey)}
	evidence := req.TEEEvidence
	var comp kbsComposite
	if json.Unmarshal(req.TEEEvidence, &comp) == nil && comp.Primary != nil && comp.Additional != nil {
		if *comp.Additional != "" {
			return nil, http.StatusBadRequest, "Evidence refused", errors.New("additional (device) evidence is not verified here")
		}
		evidence, bound["additional-evidence"] = comp.Primary, *comp.Additional
	}
	runtime, err := kbsCanonical(bound)
	if err != nil {
		return nil, http.StatusBadRequest, "Malformed runtime data", err
	}
	ms := c.manifestInForce()
	if ms == nil {
		return nil, http.StatusConflict, "No manifest", errors.New("no manifest is set; an owner must set one first")
	}
	mapped, err := kbsMap(sess.tee, evidence)
	if err != nil {
		return nil, http.StatusBadRequest, "Evidence refused", err
	}
	claims, err := c.cfg.Verifiers.Verify(r.Context(), mapped.ev, attest.Options{Now: now, AllowSimulated: ms.parsed.AllowSimulated})
	if err != nil {
		status := http.StatusForbidden
		if errors.Is(err, attest.ErrMalformed) || errors.Is(err, attest.ErrUnknownFormat) {
			status = http.StatusBadRequest
		}
		return nil, status, "Evidence refused", err
	}
	if err := kbsBinds(claims.ReportData, runtime); err != nil {
		return nil, http.StatusForbidden, "Evidence refused", err
	}
	if req.InitData != nil {
		if err := kbsInitDataBinds(sess.tee, req.InitData, claims); err != nil {
			status := http.StatusForbidden
			if errors.Is(err, errInitData) {
				status = http.StatusBadRequest
			}
			return nil, status, "Init-data refused", err
		}
	}
	if sess.tee == "tdx" {
		if err := kbsReplayCCEL(mapped, claims); err != nil {
			status := http.StatusForbidden
			if errors.Is(err, attest.ErrMalformed) {
				status = http.StatusBadRequest
			}
			return nil, status, "Event log refused", err
		}
	}

	// The one workload whose whole appraisal the claims pass.
	iss := c.issuer(token.ES256)
	var match *manifest.Workload
	var appraisal *Appraisal
	var denials []error
	for i := range ms.parsed.Workloads {
		wl := &ms.parsed.Workloads[i]
		if wl.TEE != claims.TEE {
			continue
		}
		pols, err := c.workloadPolicies(r.Context(), wl.Policies)
		if err != nil {
			return nil, http.StatusInternalServerError, "Appraisal failed", err
		}
		spiffe, err := identity.SPIFFEID(ms.parsed.TrustDomain, string(wl.Model), wl.Name)
		if err != nil {
			return nil, http.StatusInternalServerError, "Appraisal failed", err
		}
		cc := *claims
		a, err := EvaluateLayers(r.Context(), AppraisalInput{
			Claims: &cc, Manifest: ms.parsed, ManifestDigest: ms.Digest, Workload: wl, Policies: pols,
			Result: token.AttestationResult{Subject: spiffe.String(), Nonce: req.RuntimeData.Nonce, Runtime: runtime, EvidenceDigest: manifest.Digest(evidence)},
			Issuer: iss.Name(), TTL: c.cfg.TokenTTL, Now: now,
		})
		switch {
		case errors.Is(err, policy.ErrDenied):
			denials = append(denials, err)
			continue
		case err != nil:
			return nil, http.StatusInternalServerError, "Appraisal failed", err
		}
		if match != nil {
			return nil, http.StatusForbidden, "Appraisal ambiguous",
				fmt.Errorf("the evidence satisfies workloads %q and %q; KBS requests name none, so the manifest must tell them apart", match.Name, wl.Name)
		}
		match, appraisal = wl, a
	}
	if match == nil {
		return nil, http.StatusForbidden, "Appraisal denied", fmt.Errorf("%w: the evidence satisfies no %s workload of the manifest: %w", policy.ErrDenied, claims.TEE, errors.Join(denials...))
	}
	tok, err := iss.Issue(appraisal.Claims, now)
	if err != nil {
		return nil, http.StatusInternalServerError, "Token not issued", err
	}
	tc, err := iss.Verify(tok, now)
	if err != nil {
		return nil, http.StatusInternalServerError, "Token not issued", err
	}
	done := sess
	done.attested, done.token, done.tokenID = true, tok, tc.ID
	done.workload, done.manifestDigest, done.evidenceDigest = match.Name, ms.Digest, manifest.Digest(evidence)
	done.simulated, done.teeKey = claims.Simulated, &teeKey
	return &done, 0, "", nil
}

// kbsCanonical is the canonical JSON (RFC 8785, JSON Canonicalization
// Scheme: members sorted by UTF-16 code units, no whitespace, ECMAScript
// string and number forms; gowebpki/jcs) of v, as the KBS client hashes it.
func kbsCanonical(v map[string]any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// KBSReportData is the report data a KBS client binds runtime, the
// canonical runtime-data JSON: its SHA-384.
func KBSReportData(runtime []byte) []byte {
	h := sha512.Sum384(runtime)
	return h[:]
}

// kbsBinds checks that reportData is KBSReportData(runtime), exactly or
// zero-padded to 64 bytes.
func kbsBinds(reportData, runtime []byte) error {
	want := KBSReportData(runtime)
	if len(reportData) == 64 {
		want = append(want, make([]byte, 64-len(want))...)
	}
	if subtle.ConstantTimeCompare(want, reportData) != 1 {
		return fmt.Errorf("%w: the report data is not SHA-384 of the canonical runtime-data JSON", attest.ErrBinding)
	}
	return nil
}

// kbsGrant is what a resource request is decided on: an attested session
// or a token of this coordinator.
type kbsGrant struct {
	workload, manifestDigest, evidenceDigest, tokenID string
	simulated                                         bool
	teeKey                                            *jose.JSONWebKey
}

func (c *Coordinator) kbsGrantOf(r *http.Request, now time.Time) (*kbsGrant, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		raw, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, errors.New("the Authorization header must be Bearer <token>")
		}
		tc, err := c.issuer(token.ES256).Verify(raw, now)
		if err != nil {
			return nil, err
		}
		var rd kbsRuntimeData
		if err := json.Unmarshal(tc.Runtime.Doc, &rd); err != nil || rd.TEEPubKey == nil {
			return nil, errors.New("the token carries no KBS tee-pubkey (it was not issued at /kbs/v0/attest)")
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(rd.TEEPubKey); err != nil {
			return nil, fmt.Errorf("the token's tee-pubkey: %w", err)
		}
		return &kbsGrant{workload: tc.Workload, manifestDigest: tc.ManifestDigest, evidenceDigest: tc.EvidenceDigest, tokenID: tc.ID, simulated: tc.Simulated, teeKey: &k}, nil
	}
	ck, err := r.Cookie(kbsCookie)
	if err != nil {
		return nil, errors.New("no kbs-session-id cookie and no bearer token: attest first")
	}
	sess, ok := c.kbs.get(ck.Value, now)
	if !ok || !sess.attested {
		return nil, errors.New("the session is unknown, expired or not attested: attest again")
	}
	return &kbsGrant{workload: sess.workload, manifestDigest: sess.manifestDigest, evidenceDigest: sess.evidenceDigest, tokenID: sess.tokenID, simulated: sess.simulated, teeKey: sess.teeKey}, nil
}

func (c *Coordinator) handleKBSResource(w http.ResponseWriter, r *http.Request) {
	now := c.now()
	g, err := c.kbsGrantOf(r, now)
	if err != nil {
		c.problem(w, r, http.StatusUnauthorized, "Not attested", err)
		return
	}
	ms := c.manifestInForce()
	if ms == nil || ms.Digest != g.manifestDigest {
		c.problem(w, r, http.StatusUnauthorized, "Not attested", errors.New("attested under another manifest than the one in force; attest again"))
		return
	}
	repo, name, tag := r.PathValue("repo"), r.PathValue("type"), r.PathValue("tag")
	if repo != "default" {
		c.problem(w, r, http.StatusNotFound, "Unknown resource", fmt.Errorf("repository %q: resources are default/<secret name>/<version|latest>", repo))
		return
	}
	version := 0
	if tag != "latest" {
		v, err := strconv.Atoi(tag)
		if err != nil || v < 1 {
			c.problem(w, r, http.StatusNotFound, "Unknown resource", fmt.Errorf("tag %q: want a version number or latest", tag))
			return
		}
		version = v
	}
	i := slices.IndexFunc(ms.parsed.Secrets, func(s manifest.Secret) bool { return s.Name == name })
	if i < 0 {
		c.problem(w, r, http.StatusNotFound, "Unknown resource", fmt.Errorf("secret %q is not in the manifest", name))
		return
	}
	if !slices.Contains(ms.parsed.Secrets[i].GrantedTo, g.workload) {
		c.problem(w, r, http.StatusForbidden, "Secret not granted", fmt.Errorf("secret %q is not granted to workload %q", name, g.workload))
		return
	}
	v, jwe, err := c.broker.ReleaseJWE(r.Context(), keybroker.JWERelease{
		Record:     keybroker.Release{Workload: g.workload, EvidenceDigest: g.evidenceDigest, TokenID: g.tokenID, Simulated: g.simulated},
		Secret:     ms.parsed.Secrets[i],
		Version:    version,
		Now:        now,
		To:         g.teeKey,
		Conditions: []store.Op{{Key: keyManifest, Expect: ms.Revision, Check: true}},
	})
	if err != nil {
		status, title := http.StatusInternalServerError, "Release failed"
		switch {
		case errors.Is(err, keybroker.ErrJWEVersion):
			status, title = http.StatusNotFound, "Unknown resource"
		case errors.Is(err, keybroker.ErrNoValue), errors.Is(err, keybroker.ErrTypeChanged):
			status = http.StatusConflict
		case errors.Is(err, store.ErrConflict):
			status, title = http.StatusConflict, "Release failed: the manifest changed meanwhile; attest again"
		}
		c.problem(w, r, status, title, err)
		return
	}
	c.record(g.workload, func(rec *workloadRecord) { rec.released++ })
	c.log.Info("kbs released", "workload", g.workload, "secret", name, "version", v, "simulated", g.simulated)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(jwe)
}
