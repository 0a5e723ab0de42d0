package simtee_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

func snpVerifier() *snp.Verifier {
	return snp.NewVerifier(snp.Config{
		Simulated: map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}},
	})
}

func azureVerifier() *azure.Verifier { return azure.NewVerifier(azure.Config{SNP: snpVerifier()}) }

func TestAzureSNPVerifies(t *testing.T) {
	ctx := context.Background()
	var rd [64]byte
	copy(rd[:], "a nonce the workload binds, all sixty-four bytes of it, to the q")
	sim := simtee.AzureSNP{SNP: simtee.SNP{Measurement: [48]byte{7}, HostData: [32]byte{9}}, SecureBoot: true, VMUniqueID: "vm-1"}
	for i := range sim.PCRs {
		sim.PCRs[i][0] = byte(i + 1)
	}
	if sim.TEE() != attest.SEVSNP {
		t.Errorf("TEE %q", sim.TEE())
	}
	ev, err := sim.Attest(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Format != attest.FormatAzureSNPVTPM || len(ev.Certs) != 0 {
		t.Fatalf("evidence format %q with %d certs", ev.Format, len(ev.Certs))
	}
	v := azureVerifier()
	c, err := v.Verify(ctx, ev, attest.Options{Now: snpNow, AllowSimulated: true})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Simulated || c.TEE != attest.SEVSNP || c.Format != attest.FormatAzureSNPVTPM {
		t.Errorf("claims simulated=%v tee=%q format=%q", c.Simulated, c.TEE, c.Format)
	}
	if !bytes.Equal(c.ReportData, rd[:]) {
		t.Errorf("report data %x, want the quote's qualifying data %x", c.ReportData, rd)
	}
	if len(c.PCRs) != 24 || c.PCRs[0][0] != 1 || c.PCRs[23][0] != 24 {
		t.Errorf("PCRs %v", c.PCRs)
	}
	if c.Measurement[0] != 7 || c.HostData[0] != 9 || c.VMPL == nil || *c.VMPL != 0 {
		t.Errorf("SNP claims lost: measurement %x host data %x vmpl %v", c.Measurement, c.HostData, c.VMPL)
	}
	if c.Platform["secure_boot"] != "true" || c.Platform["vm_unique_id"] != "vm-1" || c.Platform["evidence_version"] != "2" {
		t.Errorf("platform %v", c.Platform)
	}
	var runtime struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(c.Runtime, &runtime); err != nil || len(runtime.Keys) != 2 || runtime.Keys[0].Kid != azure.KeyIDAK {
		t.Errorf("runtime %s: %v", c.Runtime, err)
	}
	// Revocation is as the SNP verifier found it for the report inside.
	snpEv, err := sim.SNP.Attest(ctx, [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := snpVerifier().Verify(ctx, snpEv, attest.Options{Now: snpNow, AllowSimulated: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.RevocationChecked != inner.RevocationChecked {
		t.Errorf("revocation checked %v, the SNP verifier says %v", c.RevocationChecked, inner.RevocationChecked)
	}
	if err := attest.BindsRuntimeData(c.ReportData, []byte("x")); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("binding of other runtime data: %v", err)
	}

	// Simulated evidence needs AllowSimulated.
	if _, err := v.Verify(ctx, ev, attest.Options{Now: snpNow}); !errors.Is(err, attest.ErrSimulated) {
		t.Errorf("without AllowSimulated: %v", err)
	}

	// Each Attest makes a fresh AK.
	ev2, err := sim.Attest(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := v.Verify(ctx, ev2, attest.Options{Now: snpNow, AllowSimulated: true})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c.Runtime, c2.Runtime) {
		t.Error("two attestations share one AK")
	}
}

// The paravisor requests its report at VMPL 0; a report from a lower
// privilege level binds nothing and is refused.
func TestAzureSNPOtherVMPLRefused(t *testing.T) {
	ev, err := simtee.AzureSNP{SNP: simtee.SNP{VMPL: 2}}.Attest(context.Background(), [64]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := azureVerifier().Verify(context.Background(), ev, attest.Options{Now: snpNow, AllowSimulated: true}); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("VMPL 2: want ErrBinding, got %v", err)
	}
}

func TestAzureSNPCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (simtee.AzureSNP{}).Attest(ctx, [64]byte{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// AzureHCLReport lays out a report attest/azure parses back, unpadded.
func TestAzureHCLReportParses(t *testing.T) {
	hw := bytes.Repeat([]byte{0xA5}, 1184)
	varData := []byte(`{"keys":[]}`)
	b := simtee.AzureHCLReport(uint32(azure.ReportTypeSNP), hw, varData)
	if want := 32 + 1184 + 20 + len(varData); len(b) != want {
		t.Fatalf("report is %d bytes, want %d (unpadded)", len(b), want)
	}
	r, err := azure.ParseHCLReport(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.ReportType != azure.ReportTypeSNP || r.RequestType != azure.RequestTypeAKCert || !bytes.Equal(r.HardwareReport, hw) || !bytes.Equal(r.VarData, varData) {
		t.Fatalf("parsed back as type %v request %d, hardware report equal %v, var data %q", r.ReportType, r.RequestType, bytes.Equal(r.HardwareReport, hw), r.VarData)
	}
}
