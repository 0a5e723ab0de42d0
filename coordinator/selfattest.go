package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/trustbound/trustbound/attest"
)

// Coordinator identity (issue 6, point 5). The coordinator binds what
// clients must trust — its service CA, which certifies its TLS key, and
// its token keys — into evidence of its own TEE, produced by
// Config.SelfAttester and served at PathCoordinatorEvidence. A client
// (`trustbound verify-coordinator`) verifies that evidence against an
// expected measurement before it trusts the CA: trust on verification, not
// on first use. Off TEE hardware the attester is a simulated TEE and the
// answer says simulated: true; such evidence proves nothing about hardware.

// PathCoordinatorEvidence serves the coordinator's own evidence (public).
const PathCoordinatorEvidence = "/v1/coordinator-evidence"

// SelfRuntimeData is the document the coordinator's evidence binds: its
// report data is attest.NativeReportData(the JSON encoding of this document,
// exactly as it travels in Evidence.RuntimeData).
type SelfRuntimeData struct {
	// ServiceCA is the lower-case hex SHA-256 of the DER of the service CA
	// certificate, the root of the coordinator's TLS certificate.
	ServiceCA string `json:"serviceCA"`
	// TokenKeys are the RFC 7638 JWK thumbprints of every token key /certs
	// publishes, sorted.
	TokenKeys []string `json:"tokenKeys"`
	// Issuer is the iss of the coordinator's tokens.
	Issuer string `json:"issuer"`
}

// SelfEvidence is the answer of PathCoordinatorEvidence.
type SelfEvidence struct {
	// Evidence is the TEE's evidence; its RuntimeData is the JSON of a
	// SelfRuntimeData.
	Evidence *attest.Evidence `json:"evidence"`
	// Simulated is true when the evidence comes from a simulated TEE
	// (attest/simtee): a label for people, not a security claim; verifiers
	// learn it from the evidence's chain.
	Simulated bool `json:"simulated"`
}

// selfEvidence caches the evidence of the current runtime data; it is
// made again when the runtime data changes (a token key rotation).
type selfEvidence struct {
	mu      sync.Mutex
	runtime []byte
	body    []byte
}

// selfRuntimeData returns the runtime data document of the coordinator's
// evidence as of now.
func (c *Coordinator) selfRuntimeData() ([]byte, error) {
	sum := sha256.Sum256(c.service.Root().Raw)
	rd := SelfRuntimeData{ServiceCA: hex.EncodeToString(sum[:]), Issuer: c.cfg.Issuer, TokenKeys: []string{}}
	for _, k := range c.tok.Load().ring.Published(c.now()) {
		rd.TokenKeys = append(rd.TokenKeys, k.ID)
	}
	slices.Sort(rd.TokenKeys)
	return json.Marshal(rd)
}

// SelfEvidence returns the coordinator's evidence binding its service CA
// and token keys, as PathCoordinatorEvidence serves it (JSON of
// SelfEvidence). It fails when no SelfAttester is configured.
func (c *Coordinator) SelfEvidence(ctx context.Context) ([]byte, error) {
	if c.cfg.SelfAttester == nil {
		return nil, errNoSelfAttester
	}
	rt, err := c.selfRuntimeData()
	if err != nil {
		return nil, err
	}
	cache := &c.self
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if cache.body != nil && string(cache.runtime) == string(rt) {
		return cache.body, nil
	}
	ev, err := c.cfg.SelfAttester.Attest(ctx, attest.NativeReportData(rt))
	if err != nil {
		return nil, fmt.Errorf("coordinator: own evidence: %w", err)
	}
	ev.RuntimeData = rt
	// The label comes from the evidence's own chain, checked with the
	// coordinator's verifiers (signatures and chains only: no collateral
	// is fetched on a public request path).
	claims, err := c.cfg.Verifiers.Verify(ctx, ev, attest.Options{Now: c.now(), AllowSimulated: true, SkipCollateral: true})
	if err != nil {
		return nil, fmt.Errorf("coordinator: own evidence does not verify: %w", err)
	}
	body, err := json.Marshal(SelfEvidence{Evidence: ev, Simulated: claims.Simulated})
	if err != nil {
		return nil, err
	}
	cache.runtime, cache.body = rt, body
	return body, nil
}

var errNoSelfAttester = errors.New("this coordinator has no TEE attester configured, so it cannot attest itself")

// handleSelfEvidence serves PathCoordinatorEvidence.
func (c *Coordinator) handleSelfEvidence(w http.ResponseWriter, r *http.Request) {
	body, err := c.SelfEvidence(r.Context())
	switch {
	case errors.Is(err, errNoSelfAttester):
		c.problem(w, r, http.StatusNotFound, "No coordinator evidence", err)
		return
	case err != nil:
		c.problem(w, r, http.StatusInternalServerError, "Coordinator evidence unavailable", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}
