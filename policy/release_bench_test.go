package policy

import (
	"testing"

	"github.com/trustbound/trustbound/attest/simtee"
)

// BenchmarkReleasePolicy is the cost of one release decision with Azure's
// default CVM policy (four regional authorities, the token's issuer the
// last) over the claims of verified SNP evidence: evaluation only.
func BenchmarkReleasePolicy(b *testing.B) {
	p := loadReleasePolicy(b, "skr-cvm-default.json")
	claims := asCoordinator(simulatedClaims(b, simtee.SNP{}), "azure-compliant-cvm")
	if err := p.Evaluate(weu, claims); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Evaluate(weu, claims); err != nil {
			b.Fatal(err)
		}
	}
}
