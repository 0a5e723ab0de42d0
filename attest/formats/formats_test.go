package formats

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
)

// TestRegistryVerifiesEverySimulatedTEE checks the wiring: each format is
// registered, its simulated roots are trusted only when allowed.
func TestRegistryVerifiesEverySimulatedTEE(t *testing.T) {
	r, err := Registry(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Formats(); len(got) != 5 {
		t.Fatalf("formats %v", got)
	}
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var rd [64]byte
	rd[0] = 7
	for _, tee := range []attest.Attester{simtee.SNP{}, simtee.SGX{}, simtee.AzureSNP{}, simtee.TDX{}} {
		ev, err := tee.Attest(ctx, rd)
		if err != nil {
			t.Fatal(err)
		}
		c, err := r.Verify(ctx, ev, attest.Options{Now: now, AllowSimulated: true})
		if err != nil {
			t.Fatalf("%s: %v", tee.TEE(), err)
		}
		// Simulated vendor collateral makes the verdict complete.
		if !c.Simulated || c.TEE != tee.TEE() || c.ReportData[0] != 7 || !c.RevocationChecked {
			t.Errorf("%s: claims %+v", tee.TEE(), c)
		}
		if _, err := r.Verify(ctx, ev, attest.Options{Now: now}); !errors.Is(err, attest.ErrSimulated) {
			t.Errorf("%s without allowSimulated: %v", tee.TEE(), err)
		}
	}
}
