package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/attest/sgx"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
	"github.com/trustbound/trustbound/token"
)

// Azure's own release policies (policy/testdata, reconstructed: see
// PROVENANCE.md there) evaluated over the Azure-named claims of evidence
// verified here, real and simulated.

// vectorsAt is inside the validity of every certificate of the real vectors.
var vectorsAt = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

const (
	eus = "https://sharedeus.eus.attest.azure.net"
	weu = "https://sharedweu.weu.attest.azure.net"
	// trustbound's own issuer: Azure's policies name Azure's authorities,
	// so a token from anyone else is refused by them.
	tbIssuer = "https://trustbound.example"
)

// podPolicy stands in for a confidential container's agent policy; its
// SHA-256 is the host data skr-confidential-container.json pins.
const podPolicy = "package agent_policy\n\ndefault CreateContainerRequest := false\n"

// azureCVMClaims verifies the real Azure SNP CVM evidence (attest/azure
// testdata, evidence-v1.json) and names its claims as Azure does.
func azureCVMClaims(t testing.TB) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../attest/azure/testdata/evidence-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	v := azure.NewVerifier(azure.Config{SNP: snp.NewVerifier(snp.Config{})})
	c, err := v.Verify(context.Background(), &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data},
		attest.Options{Now: vectorsAt, SkipCollateral: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Simulated || c.Platform["vm_unique_id"] != "26F8BC30-774E-4290-8E7A-535F3B672AEE" {
		t.Fatalf("evidence-v1.json is not the real Azure vector: %+v", c)
	}
	return token.AzureClaims(c)
}

// simulatedClaims verifies evidence of a simulated TEE through the one
// registry of formats, as the coordinator does.
func simulatedClaims(t testing.TB, a attest.Attester) map[string]any {
	t.Helper()
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), [64]byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := reg.Verify(context.Background(), ev, attest.Options{Now: vectorsAt, AllowSimulated: true})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Simulated {
		t.Fatal("simulated evidence not reported simulated")
	}
	return token.AzureClaims(c)
}

// sgxSampleClaims verifies one of the MAA SGX sample quotes (attest/sgx
// testdata) without collateral, which the vectors do not carry.
func sgxSampleClaims(t testing.TB, file string) map[string]any {
	t.Helper()
	q, err := os.ReadFile("../attest/sgx/testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sgx.NewVerifier(sgx.Config{}).Verify(context.Background(), &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: q},
		attest.Options{Now: vectorsAt, SkipCollateral: true})
	if err != nil {
		t.Fatal(err)
	}
	return token.AzureClaims(c)
}

// asCoordinator adds x-ms-compliance-status, Azure Attestation's own
// verdict that no evidence carries, where the coordinator puts it: at the
// top of a platform token, under x-ms-isolation-tee of a guest token (as
// Azure nests it there).
func asCoordinator(claims map[string]any, status string) map[string]any {
	claims = cloneClaims(claims)
	if tee, ok := claims["x-ms-isolation-tee"].(map[string]any); ok {
		tee["x-ms-compliance-status"] = status
	} else {
		claims["x-ms-compliance-status"] = status
	}
	return claims
}

func cloneClaims(m map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range out {
		if sub, ok := v.(map[string]any); ok {
			out[k] = cloneClaims(sub)
		}
	}
	return out
}

func loadReleasePolicy(t testing.TB, name string) *ReleasePolicy {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseReleasePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// claimPaths lists the claims the conditions of p's authorities for
// issuer test, each once.
func (p *ReleasePolicy) claimPaths(issuer string) [][]string {
	iss, _ := kvNormalizeIssuer(issuer)
	var out [][]string
	var walk func(c *kvCondition)
	walk = func(c *kvCondition) {
		if c.op != kvNone {
			if !slices.ContainsFunc(out, func(s []string) bool { return slices.Equal(s, c.segs) }) {
				out = append(out, c.segs)
			}
			return
		}
		for i := range c.members {
			walk(&c.members[i])
		}
	}
	for i := range p.authorities {
		if p.authorities[i].issuer == iss {
			walk(&p.authorities[i].group)
		}
	}
	return out
}

// editPath changes (or, with del, removes) the claim at a dotted path.
func editPath(claims map[string]any, segs []string, del bool) {
	m := claims
	for _, s := range segs[:len(segs)-1] {
		m = m[s].(map[string]any)
	}
	last := segs[len(segs)-1]
	if del {
		delete(m, last)
		return
	}
	switch v := m[last].(type) {
	case string:
		m[last] = v + "-not"
	case bool:
		m[last] = !v
	default:
		m[last] = int64(-1)
	}
}

// permittedAndEachMismatchRefused checks that claims satisfy p for
// issuer, and that changing or removing any one claim a condition names,
// or presenting the token from another issuer, is refused with a
// violation naming it.
func permittedAndEachMismatchRefused(t *testing.T, p *ReleasePolicy, issuer string, claims map[string]any) {
	t.Helper()
	if err := p.Evaluate(issuer, claims); err != nil {
		t.Fatalf("matching claims refused: %v", err)
	}
	paths := p.claimPaths(issuer)
	if len(paths) == 0 {
		t.Fatal("no conditions for this issuer")
	}
	for _, segs := range paths {
		name := strings.Join(segs, ".")
		for _, del := range []bool{false, true} {
			edited := cloneClaims(claims)
			editPath(edited, segs, del)
			err := p.Evaluate(issuer, edited)
			if !errors.Is(err, ErrDenied) {
				t.Errorf("%s changed (removed %v): released (%v)", name, del, err)
				continue
			}
			if !slices.ContainsFunc(violations(err), func(v *Violation) bool { return strings.Contains(v.Msg, "claim "+name+" ") }) {
				t.Errorf("%s changed (removed %v): the refusal does not name it: %v", name, del, err)
			}
		}
	}
	err := p.Evaluate(tbIssuer, claims)
	if !errors.Is(err, ErrDenied) || !slices.ContainsFunc(violations(err), func(v *Violation) bool { return strings.HasSuffix(v.Field, ".authority") }) {
		t.Errorf("a token from %s: %v", tbIssuer, err)
	}
	if t.Failed() {
		return
	}
	t.Logf("permitted; each of %d claims changed or removed, and issuer %s, refused", len(paths), tbIssuer)
}

// The default CVM policy pins the flat claims of a platform token
// (/attest/SevSnpVm): simulated SNP evidence verified as a bare report.
func TestAzureDefaultCVMPolicy(t *testing.T) {
	p := loadReleasePolicy(t, "skr-cvm-default.json")
	snpClaims := simulatedClaims(t, simtee.SNP{})
	if snpClaims["x-ms-attestation-type"] != "sevsnpvm" {
		t.Fatalf("claims %v", snpClaims)
	}
	cvm := asCoordinator(snpClaims, "azure-compliant-cvm")
	for _, iss := range []string{eus, weu, weu + "/"} {
		t.Run(iss, func(t *testing.T) { permittedAndEachMismatchRefused(t, p, iss, cvm) })
	}
	// Without Azure's verdict there is nothing to release on.
	if err := p.Evaluate(eus, snpClaims); !errors.Is(err, ErrDenied) {
		t.Errorf("no compliance status: %v", err)
	}
	// A confidential container is not a compliant CVM.
	if err := p.Evaluate(eus, asCoordinator(snpClaims, "azure-compliant-uvm")); !errors.Is(err, ErrDenied) {
		t.Errorf("uvm status: %v", err)
	}
	// The real Azure CVM evidence yields a guest token: type azurevm with
	// the hardware claims nested, which the platform-token policy does not
	// read. That is what the guest-token variant is for.
	err := p.Evaluate(eus, asCoordinator(azureCVMClaims(t), "azure-compliant-cvm"))
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), `claim x-ms-attestation-type is "azurevm"`) {
		t.Errorf("guest token under the platform policy: %v", err)
	}
}

// The guest-token variant reads the nested x-ms-isolation-tee claims of
// Azure CVM guest attestation: the real Azure vector and the simulated
// Azure CVM.
func TestAzureGuestCVMPolicy(t *testing.T) {
	p := loadReleasePolicy(t, "skr-cvm-guest.json")
	real := asCoordinator(azureCVMClaims(t), "azure-compliant-cvm")
	if tee := real["x-ms-isolation-tee"].(map[string]any); tee["x-ms-attestation-type"] != "sevsnpvm" || real["x-ms-attestation-type"] != "azurevm" {
		t.Fatalf("claims %v", real)
	}
	t.Run("real evidence-v1.json", func(t *testing.T) { permittedAndEachMismatchRefused(t, p, eus, real) })
	sim := asCoordinator(simulatedClaims(t, simtee.AzureSNP{}), "azure-compliant-cvm")
	t.Run("simulated Azure CVM", func(t *testing.T) { permittedAndEachMismatchRefused(t, p, eus, sim) })

	// Azure's example pinning one VM: the real vector's VM id matches,
	// the simulated CVM's does not.
	vmid := loadReleasePolicy(t, "skr-cvm-guest-vmid.json")
	t.Run("vmid real", func(t *testing.T) { permittedAndEachMismatchRefused(t, vmid, weu, real) })
	if err := vmid.Evaluate(weu, sim); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "claim x-ms-azurevm-vmid is") {
		t.Errorf("another VM: %v", err)
	}
}

// The confidential-container policy pins the host data (the pod policy's
// hash), Azure's uvm verdict and a non-debuggable guest; it writes
// is-debuggable as the string "false", as Microsoft's tooling does.
func TestAzureConfidentialContainerPolicy(t *testing.T) {
	const authority = "https://fabrikam1.wus.attest.azure.net"
	p := loadReleasePolicy(t, "skr-confidential-container.json")
	sum := sha256.Sum256([]byte(podPolicy))
	if got := hex.EncodeToString(sum[:]); !slices.ContainsFunc(p.claimPaths(authority), func(s []string) bool { return s[0] == "x-ms-sevsnpvm-hostdata" }) ||
		got != "c34429ab2dc6b06c1eabac4b9792224b8227301415c8fc8a798155f1d219a64a" {
		t.Fatalf("pod policy hash %s", got)
	}
	pod := simulatedClaims(t, simtee.SNP{HostData: sum})
	if pod["x-ms-sevsnpvm-is-debuggable"] != false {
		t.Fatalf("is-debuggable is %#v, want the boolean false", pod["x-ms-sevsnpvm-is-debuggable"])
	}
	uvm := asCoordinator(pod, "azure-compliant-uvm")
	permittedAndEachMismatchRefused(t, p, authority, uvm)

	for name, c := range map[string]map[string]any{
		"another pod policy": asCoordinator(simulatedClaims(t, simtee.SNP{HostData: sha256.Sum256([]byte(podPolicy + "# edited\n"))}), "azure-compliant-uvm"),
		"a debuggable guest": asCoordinator(simulatedClaims(t, simtee.SNP{HostData: sum, Debug: true}), "azure-compliant-uvm"),
		"a CVM verdict":      asCoordinator(pod, "azure-compliant-cvm"),
		"no verdict":         pod,
	} {
		if err := p.Evaluate(authority, c); !errors.Is(err, ErrDenied) || len(violations(err)) != 1 {
			t.Errorf("%s: %v", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
