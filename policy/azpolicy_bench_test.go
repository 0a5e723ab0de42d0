package policy

import "testing"

// BenchmarkAttestationPolicy is the cost of one decision with Azure's
// documented SGX policy over the claims of the real MAA release sample
// quote, issuance included: evaluation only.
func BenchmarkAttestationPolicy(b *testing.B) {
	p, _ := loadAttestationPolicy(b, "maa-sgx.policy")
	claims := sgxSampleClaims(b, "quote.release.bin")
	if ok, _, err := p.Evaluate(claims); !ok {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := p.Evaluate(claims); !ok {
			b.Fatal(err)
		}
	}
}
