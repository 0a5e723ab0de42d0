package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// Appraisal policies (layers b and c) are owner-controlled, versioned
// documents. They are not secret and are stored in clear: the current
// version at policies/<name>, and every version, the current one
// included, at policies/<name>/versions/<version>, written in one
// transaction. A text is parsed (or compiled) before it is stored and
// refused with the parser's error; the text is kept exactly as uploaded.

const keyPolicyPrefix = "policies/"

func policyKey(name string) string { return keyPolicyPrefix + name }

func policyVersionKey(name string, version int) string {
	return fmt.Sprintf("%s%s/versions/%010d", keyPolicyPrefix, name, version)
}

// policyRecord is one stored version of a policy.
type policyRecord struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Version int       `json:"version"`
	Hash    string    `json:"hash"` // hex SHA-256 of Text
	Text    string    `json:"text"`
	SetBy   string    `json:"setBy"`
	SetAt   time.Time `json:"setAt"`
	// Revision is the store revision of policies/<name> when read.
	Revision int64 `json:"-"`
}

func (r *policyRecord) version() api.PolicyVersion {
	return api.PolicyVersion{Version: r.Version, Kind: r.Kind, Hash: r.Hash, SetBy: r.SetBy, SetAt: r.SetAt}
}

// ErrPolicyName is wrapped when a policy name is not [a-z0-9._-]+.
var ErrPolicyName = errors.New("invalid policy name")

func checkPolicyName(name string) error {
	if !manifest.IsPolicyName(name) {
		return fmt.Errorf("%w %q: 1 to %d of a-z, 0-9, '.', '_' and '-'", ErrPolicyName, name, manifest.MaxPolicyName)
	}
	return nil
}

// azurePolicyName is the name under which the attestation policy of an
// Azure attestation type (SevSnpVm, SgxEnclave, ...) is kept: policy
// names are lower case, so "azure-sevsnpvm". A manifest naming it makes
// the native path apply the same policy.
func azurePolicyName(attestationType string) string {
	return "azure-" + strings.ToLower(attestationType)
}

// policyText returns the current version of a policy (text, kind,
// version, hash), or an error wrapping ErrPolicyNotSet.
func (c *Coordinator) policyText(ctx context.Context, name string) (*policyRecord, error) {
	if err := checkPolicyName(name); err != nil {
		return nil, err
	}
	kv, err := c.cfg.Store.Get(ctx, policyKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrPolicyNotSet, name)
	}
	if err != nil {
		return nil, err
	}
	var rec policyRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return nil, fmt.Errorf("coordinator: stored policy %q: %w", name, err)
	}
	rec.Revision = kv.Revision
	return &rec, nil
}

// policyVersions lists every version of a policy, oldest first.
func (c *Coordinator) policyVersions(ctx context.Context, name string) ([]api.PolicyVersion, error) {
	if err := checkPolicyName(name); err != nil {
		return nil, err
	}
	kvs, err := c.cfg.Store.List(ctx, keyPolicyPrefix+name+"/versions/")
	if err != nil {
		return nil, err
	}
	out := make([]api.PolicyVersion, 0, len(kvs))
	for _, kv := range kvs {
		var rec policyRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("coordinator: stored policy %s: %w", kv.Key, err)
		}
		out = append(out, rec.version())
	}
	return out, nil
}

// setPolicy stores text as the next version of policy name, after
// preparing it as kind (detected when empty): a text the parser refuses is
// a *PolicyError, a bad name wraps ErrPolicyName, a concurrent change
// store.ErrConflict. Setting the text in force again changes nothing and
// returns the current version. setBy names who set it (an owner).
func (c *Coordinator) setPolicy(ctx context.Context, name, kind, text, setBy string) (*policyRecord, error) {
	if err := checkPolicyName(name); err != nil {
		return nil, err
	}
	p, err := c.policies.Prepare(ctx, name, kind, text)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(text))
	rec := &policyRecord{Name: name, Kind: p.Kind, Version: 1, Hash: hex.EncodeToString(sum[:]), Text: text, SetBy: setBy, SetAt: c.now().UTC()}
	var expect int64
	switch cur, err := c.policyText(ctx, name); {
	case err == nil:
		if cur.Hash == rec.Hash && cur.Kind == rec.Kind {
			return cur, nil
		}
		rec.Version, expect = cur.Version+1, cur.Revision
	case !errors.Is(err, ErrPolicyNotSet):
		return nil, err
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	rev, err := c.cfg.Store.Apply(ctx,
		store.Op{Key: policyKey(name), Value: val, Expect: expect},
		store.Op{Key: policyVersionKey(name, rec.Version), Value: val, Expect: 0},
	)
	if err != nil {
		return nil, fmt.Errorf("coordinator: storing policy %q: %w", name, err)
	}
	rec.Revision = rev
	c.log.Info("policy set", "policy", name, "kind", rec.Kind, "version", rec.Version, "by", setBy)
	return rec, nil
}

// preparedPolicy returns the current version of a policy ready to
// evaluate: MissingPolicy when it is not set, and a policy that denies
// when its stored text no longer prepares.
func (c *Coordinator) preparedPolicy(ctx context.Context, name string) (*Policy, error) {
	rec, err := c.policyText(ctx, name)
	if errors.Is(err, ErrPolicyNotSet) {
		return MissingPolicy(name), nil
	}
	if err != nil {
		return nil, err
	}
	p, err := c.policies.Prepare(ctx, name, rec.Kind, rec.Text)
	if err != nil {
		return &Policy{Name: name, Kind: rec.Kind, Text: rec.Text, Version: rec.Version, err: err}, nil
	}
	p.Version = rec.Version
	return p, nil
}

// workloadPolicies prepares the policies a workload names, in order.
func (c *Coordinator) workloadPolicies(ctx context.Context, names []string) ([]*Policy, error) {
	out := make([]*Policy, 0, len(names))
	for _, n := range names {
		p, err := c.preparedPolicy(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (c *Coordinator) handleSetPolicy(w http.ResponseWriter, r *http.Request) {
	body, ok := c.readBody(w, r)
	if !ok {
		return
	}
	_, owner, ok := c.ownerSigned(w, r, body, http.StatusConflict)
	if !ok {
		return
	}
	rec, err := c.setPolicy(r.Context(), r.PathValue("name"), "", string(body), owner)
	if err != nil {
		var pe *PolicyError
		switch {
		case errors.Is(err, ErrPolicyName):
			c.problem(w, r, http.StatusBadRequest, "Invalid policy name", err)
		case errors.As(err, &pe):
			c.problem(w, r, http.StatusBadRequest, "Policy refused", err)
		case errors.Is(err, store.ErrConflict):
			c.problem(w, r, http.StatusConflict, "Policy not set: it changed meanwhile", err)
		default:
			c.problem(w, r, http.StatusInternalServerError, "Policy not set", err)
		}
		return
	}
	writeJSON(w, api.SetPolicyResponse{Name: rec.Name, PolicyVersion: rec.version()})
}

func (c *Coordinator) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.ownerOnly(w, r); !ok {
		return
	}
	name := r.PathValue("name")
	rec, err := c.policyText(r.Context(), name)
	if err == nil {
		var versions []api.PolicyVersion
		if versions, err = c.policyVersions(r.Context(), name); err == nil {
			writeJSON(w, api.PolicyResponse{Name: rec.Name, PolicyVersion: rec.version(), Text: rec.Text, Versions: versions})
			return
		}
	}
	switch {
	case errors.Is(err, ErrPolicyName):
		c.problem(w, r, http.StatusBadRequest, "Invalid policy name", err)
	case errors.Is(err, ErrPolicyNotSet):
		c.problem(w, r, http.StatusNotFound, "Unknown policy", err)
	default:
		c.problem(w, r, http.StatusInternalServerError, "Policy unavailable", err)
	}
}
