package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/policy"
	"github.com/trustbound/trustbound/store"
)

// A top-level dotted claim and a nested member of the same flat name are
// refused every time, not decided by map order.
func TestAzureFlatClaimsTwoSources(t *testing.T) {
	for range 50 {
		_, err := azureFlatClaims(map[string]any{
			"x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable": false,
			"x-ms-isolation-tee":                             map[string]any{"x-ms-sevsnpvm-is-debuggable": true, "x-ms-attestation-type": "sevsnpvm"},
		})
		if !errors.Is(err, policy.ErrDenied) {
			t.Fatalf("two sources of one flat name: %v", err)
		}
	}
	flat, err := azureFlatClaims(map[string]any{"a": 1, "x-ms-isolation-tee": map[string]any{"b": true}})
	if err != nil || flat["x-ms-isolation-tee.b"] != true || flat["a"] != 1 {
		t.Errorf("flat %v, %v", flat, err)
	}
}

// draftPolicyForAttestation comes from anyone: it is parsed per request
// and never enters the shared policy cache; the policy a type is decided
// by without a draft is cached as before.
func TestMAADraftNotCached(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "store.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := make([]byte, keybroker.DataKeySize)
	sealer, err := keybroker.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), Config{Store: st, Sealer: sealer, Verifiers: reg, BootstrapToken: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/attest/SgxEnclave", nil)
	cachedPolicies := func() int {
		c.policies.mu.Lock()
		defer c.policies.mu.Unlock()
		return len(c.policies.attestation)
	}
	for i := range 3 {
		d, f := c.maaPolicyFor(r, "SgxEnclave", fmt.Sprintf("version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type=\"n\", value=%d); };", i))
		if f != nil || !d.draft {
			t.Fatalf("draft %d: %v", i, f)
		}
	}
	if n := cachedPolicies(); n != 0 {
		t.Errorf("%d drafts entered the policy cache", n)
	}
	if _, f := c.maaPolicyFor(r, "SgxEnclave", "version=1.0; authorizationrules { => nope(); };"); f == nil || f.code != maaPolicyParsing {
		t.Errorf("a draft that does not parse: %v", f)
	}
	if _, f := c.maaPolicyFor(r, "SgxEnclave", ""); f != nil || cachedPolicies() != 1 {
		t.Errorf("the default policy: %v, cache holds %d", f, cachedPolicies())
	}
}
