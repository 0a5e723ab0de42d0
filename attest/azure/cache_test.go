package azure_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
)

// A CVM's HCL report repeats from one attestation to the next; its parse
// is kept, its signatures and bindings are not: evidence that reuses a
// parsed HCL report with a tampered vTPM quote is refused, and results
// handed out do not share what the cache holds.
func TestTDXCachedHCLReport(t *testing.T) {
	v := tdxVerifier()
	ctx := context.Background()
	data := readTestdata(t, "tdx-evidence-v1.json")
	first, err := v.Verify(ctx, tdxEvidence(data), noCollateral)
	if err != nil {
		t.Fatal(err)
	}
	want, err := v.Verify(ctx, tdxEvidence(data), noCollateral)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, want) {
		t.Fatal("a second verification of the same evidence gives other claims")
	}
	// What a caller does to its claims stays its own.
	first.Platform["mrtd"] = "changed"
	first.PCRs[0][0] ^= 0xff
	first.Runtime[0] = 'X'
	again, err := v.Verify(ctx, tdxEvidence(data), noCollateral)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("claims after a caller changed earlier ones: %v", err)
	}
	// The same HCL report (cached) with a vTPM quote signature altered.
	e := realTDX(t)
	e.Quote.Signature = bytes.Clone(e.Quote.Signature)
	e.Quote.Signature[7] ^= 1
	if _, err := v.Verify(ctx, tdxEvidence(encodeTDX(t, 1, e)), noCollateral); !errors.Is(err, attest.ErrSignature) {
		t.Fatalf("tampered vTPM quote with a cached HCL report: %v", err)
	}
	// The same HCL report with its runtime claims altered is another report.
	e = realTDX(t)
	e.HCLReport = bytes.Clone(e.HCLReport)
	i := bytes.Index(e.HCLReport, []byte(`"vmUniqueId":"`)) + len(`"vmUniqueId":"`)
	e.HCLReport[i] ^= 1
	if _, err := v.Verify(ctx, tdxEvidence(encodeTDX(t, 1, e)), noCollateral); !errors.Is(err, attest.ErrBinding) {
		t.Fatalf("altered runtime claims after the original was cached: %v", err)
	}
	// An SNP verifier does not take a cached TDX HCL report, and the other way round.
	if _, err := verifier().Verify(ctx, &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data}, noCollateral); err == nil {
		t.Fatal("az-tdx-vtpm evidence verified as az-snp-vtpm")
	}
	_ = azure.ReportTypeTDX
}

// The same for az-snp-vtpm: the SNP verifier's claims may point into the
// report it was given, which is the cached HCL report's; a caller that
// changes them must not change what the next verification sees.
func TestSNPCachedHCLReport(t *testing.T) {
	v := verifier()
	ctx := context.Background()
	ev := build{}.evidence(t)
	first, err := v.Verify(ctx, ev, simOpts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := v.Verify(ctx, ev, simOpts)
	if err != nil || !reflect.DeepEqual(first, want) {
		t.Fatalf("second verification: %v", err)
	}
	for _, b := range [][]byte{first.Measurement, first.HostData, first.ReportData, first.Runtime} {
		for i := range b {
			b[i] ^= 0xff
		}
	}
	if again, err := v.Verify(ctx, ev, simOpts); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("after a caller changed its claims: %v", err)
	}
	// Another nonce, same HCL report: only the vTPM quote differs.
	other := build{nonce: []byte("another nonce")}.evidence(t)
	c, err := v.Verify(ctx, other, simOpts)
	if err != nil || string(c.ReportData) != "another nonce" {
		t.Fatalf("another nonce: %q %v", c.ReportData, err)
	}
}

// simOpts verifies simulated evidence at the tests' time.
var simOpts = attest.Options{Now: at, AllowSimulated: true}

// Only evidence that verified leaves its parse in the caches: parses of
// evidence that fails (which anyone can send, a nonce each) are dropped.
func TestTDXCacheKeepsOnlyVerified(t *testing.T) {
	v := tdxVerifier()
	ctx := context.Background()
	e := realTDX(t)
	e.Quote.Signature = bytes.Clone(e.Quote.Signature)
	e.Quote.Signature[7] ^= 1
	for range 3 {
		if _, err := v.Verify(ctx, tdxEvidence(encodeTDX(t, 1, e)), noCollateral); !errors.Is(err, attest.ErrSignature) {
			t.Fatalf("tampered vTPM quote: %v", err)
		}
	}
	if h, q := azure.TDXCacheLens(v); h != 0 || q != 0 {
		t.Fatalf("after refused evidence the caches hold %d HCL reports and %d TD quotes, want none", h, q)
	}
	if _, err := v.Verify(ctx, tdxEvidence(readTestdata(t, "tdx-evidence-v1.json")), noCollateral); err != nil {
		t.Fatal(err)
	}
	if h, q := azure.TDXCacheLens(v); h != 1 || q != 1 {
		t.Fatalf("after verified evidence the caches hold %d HCL reports and %d TD quotes, want 1 and 1", h, q)
	}
}
