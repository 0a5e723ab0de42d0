package manifest

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"strings"
)

// Sample is the quickstart's manifest and the fully commented reference
// manifest. Its owner key is the placeholder OWNER_PUBLIC_KEY; see
// SampleWith.
//
//go:embed sample.yaml
var Sample []byte

// SamplePodPolicy is the Kata agent policy (Rego) of the sample's "web"
// pod; its SHA-256 is the pod's hostData, SampleWebHostData.
//
//go:embed sample-pod-policy.rego
var SamplePodPolicy []byte

// The values in Sample, for the quickstart's simulated TEEs to report.
// A test keeps them and sample.yaml the same.
const (
	SampleTrustDomain = "quickstart.trustbound.local"
	SampleOwner       = "quickstart-owner"

	SampleLedgerName = "ledger-vm" // confidential-vm on sev-snp
	SampleSignerName = "signer"    // enclave on sgx
	SampleWebName    = "web"       // confidential-container on sev-snp

	SampleSignerProductID uint16 = 1
	SampleSignerMinSVN    uint32 = 1
)

var (
	// SampleLedgerMeasurement is ledger-vm's SNP MEASUREMENT: 0x11 × 48.
	SampleLedgerMeasurement = [48]byte(bytes.Repeat([]byte{0x11}, 48))
	// SampleSignerMREnclave is signer's MRENCLAVE: 0x22 × 32.
	SampleSignerMREnclave = [32]byte(bytes.Repeat([]byte{0x22}, 32))
	// SampleSignerMRSigner is signer's MRSIGNER: 0x33 × 32.
	SampleSignerMRSigner = [32]byte(bytes.Repeat([]byte{0x33}, 32))
	// SampleWebMeasurement is web's SNP MEASUREMENT: 0x44 × 48.
	SampleWebMeasurement = [48]byte(bytes.Repeat([]byte{0x44}, 48))
	// SampleWebHostData is web's SNP HOST_DATA: SHA-256(SamplePodPolicy).
	SampleWebHostData = sha256.Sum256(SamplePodPolicy)
)

// samplePlaceholder is the value of the owner's publicKey in Sample.
const samplePlaceholder = "publicKey: OWNER_PUBLIC_KEY"

// SampleWith returns Sample with the owner's publicKey set to
// ownerPublicKeyPEM, written as a YAML literal block scalar.
func SampleWith(ownerPublicKeyPEM string) []byte {
	lines := strings.SplitAfter(string(Sample), "\n")
	for i, l := range lines {
		body := strings.TrimLeft(l, " ")
		if strings.TrimRight(body, "\r\n") != samplePlaceholder {
			continue
		}
		indent := l[:len(l)-len(body)]
		var b strings.Builder
		b.WriteString(indent + "publicKey: |\n")
		for pl := range strings.Lines(strings.TrimSpace(ownerPublicKeyPEM)) {
			b.WriteString(indent + "  " + strings.TrimSpace(pl) + "\n")
		}
		lines[i] = b.String()
		return []byte(strings.Join(lines, ""))
	}
	return bytes.Clone(Sample)
}
