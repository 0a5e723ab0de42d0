package policy

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/sgx"
	"github.com/trustbound/trustbound/manifest"
)

// The Azure MAA SGX debug sample (attest/sgx/testdata, see its PROVENANCE.md)
// is a genuine quote from a debug enclave: a workload pinning exactly its
// MRENCLAVE is refused under the default policy (debug not allowed), and
// accepted only where debug is declared. Its release twin is accepted.
func TestRealDebugEnclaveRefusedByDefault(t *testing.T) {
	verify := func(file string) *attest.Claims {
		t.Helper()
		q, err := os.ReadFile("../attest/sgx/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := sgx.NewVerifier(sgx.Config{}).Verify(context.Background(), &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: q},
			attest.Options{Now: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), SkipCollateral: true})
		if err != nil {
			t.Fatal(err)
		}
		// Collateral is not in the vectors: appraise the rest as if the TCB
		// had been evaluated UpToDate and revocation checked.
		c.TCB = attest.TCB{Evaluated: true, Status: "UpToDate"}
		c.RevocationChecked = true
		return c
	}
	workloadFor := func(c *attest.Claims) *manifest.Workload {
		return &manifest.Workload{Name: "enclave", Model: manifest.Enclave, TEE: attest.SGX, Reference: manifest.Reference{
			Measurements: []attest.Hex{c.Measurement}, Signer: c.Signer, ProductID: &c.ProductID,
		}}
	}
	debug := verify("quote.debug.bin")
	if !debug.Debug || !bytesEqualHex(debug.Signer, "feb995eb") {
		t.Fatalf("the debug sample is not Azure's debug enclave: %+v", debug)
	}
	w := workloadFor(debug)
	_, err := Appraise(debug, &manifest.Manifest{}, w)
	if !errors.Is(err, ErrDenied) || len(violations(err)) != 1 || violations(err)[0].Field != "debug" {
		t.Fatalf("debug enclave under the default policy: %v", err)
	}
	w.Reference.Debug = true
	if _, err := Appraise(debug, &manifest.Manifest{}, w); err != nil {
		t.Fatalf("debug declared: %v", err)
	}
	release := verify("quote.release.bin")
	if release.Debug {
		t.Fatal("the release sample is debuggable")
	}
	if _, err := Appraise(release, &manifest.Manifest{}, workloadFor(release)); err != nil {
		t.Fatalf("release enclave: %v", err)
	}
}

func bytesEqualHex(b []byte, prefix string) bool {
	return len(b) > 0 && hex.EncodeToString(b)[:len(prefix)] == prefix
}
