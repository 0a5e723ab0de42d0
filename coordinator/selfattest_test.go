package coordinator_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/internal/coordtest"
)

func newSelfAttestingCoordinator(t *testing.T, tee attest.Attester) (*coordinator.Coordinator, *attest.Registry) {
	t.Helper()
	st, sealer, reg := coordtest.State(t)
	c, err := coordinator.New(context.Background(), coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg,
		Issuer: "https://coordinator.test", BootstrapToken: []byte("0123456789abcdef0123"), SelfAttester: tee})
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// TestSelfEvidenceBindsCAAndKeys: the served evidence verifies, binds its
// runtime data, and that names the service CA and every published key.
func TestSelfEvidenceBindsCAAndKeys(t *testing.T) {
	c, reg := newSelfAttestingCoordinator(t, simtee.SNP{Measurement: [48]byte{1}})
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + coordinator.PathCoordinatorEvidence)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var se coordinator.SelfEvidence
	if err := json.NewDecoder(resp.Body).Decode(&se); err != nil {
		t.Fatal(err)
	}
	claims, err := reg.Verify(context.Background(), se.Evidence, attest.Options{Now: time.Now(), AllowSimulated: true})
	if err != nil {
		t.Fatal(err)
	}
	if !se.Simulated || !claims.Simulated || claims.Measurement[0] != 1 {
		t.Fatalf("simulated %v, claims %+v", se.Simulated, claims)
	}
	if err := attest.BindsNative(claims.ReportData, se.Evidence.RuntimeData); err != nil {
		t.Fatal(err)
	}
	var rd coordinator.SelfRuntimeData
	if err := json.Unmarshal(se.Evidence.RuntimeData, &rd); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.CA().Raw)
	if rd.ServiceCA != hex.EncodeToString(sum[:]) || rd.Issuer != "https://coordinator.test" || len(rd.TokenKeys) != 2 {
		t.Fatalf("runtime data %+v", rd)
	}
	// Without the simulated roots allowed, the evidence is refused.
	if _, err := reg.Verify(context.Background(), se.Evidence, attest.Options{Now: time.Now()}); err == nil {
		t.Fatal("simulated coordinator evidence verified without AllowSimulated")
	}
}

// TestSelfEvidenceWithoutAttester: no attester, no evidence (404).
func TestSelfEvidenceWithoutAttester(t *testing.T) {
	c, _ := newSelfAttestingCoordinator(t, nil)
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, coordinator.PathCoordinatorEvidence, nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d", rec.Code)
	}
}
