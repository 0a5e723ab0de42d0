package token

import (
	"testing"

	"github.com/trustbound/trustbound/attest"
)

func TestAzureClaims(t *testing.T) {
	vmpl := uint32(0)
	snp := &attest.Claims{TEE: attest.SEVSNP, Format: attest.FormatSNPReport, Measurement: attest.Hex{0xab}, HostData: attest.Hex{1}, SVN: 3, Debug: false, VMPL: &vmpl,
		TCB:      attest.TCB{Components: map[string]uint64{"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68}},
		Platform: map[string]string{"smt_allowed": "true", "family_id": "00", "image_id": "01"}}
	m := AzureClaims(snp)
	for k, want := range map[string]any{
		"x-ms-attestation-type": "sevsnpvm", "x-ms-sevsnpvm-launchmeasurement": "ab", "x-ms-sevsnpvm-hostdata": "01",
		"x-ms-sevsnpvm-guestsvn": uint32(3), "x-ms-sevsnpvm-is-debuggable": false, "x-ms-sevsnpvm-smt-allowed": true,
		"x-ms-sevsnpvm-microcode-svn": uint64(68), "x-ms-sevsnpvm-snpfw-svn": uint64(5), "x-ms-sevsnpvm-vmpl": uint32(0),
		"x-ms-sevsnpvm-familyId": "00", "x-ms-sevsnpvm-imageId": "01",
	} {
		if m[k] != want {
			t.Errorf("%s = %#v, want %#v", k, m[k], want)
		}
	}
	// Azure guest evidence nests the hardware claims.
	az := *snp
	az.Format = attest.FormatAzureSNPVTPM
	az.Platform = map[string]string{"vm_unique_id": "vm-1", "secure_boot": "true", "snp_report_data": "abcd"}
	g := AzureClaims(&az)
	if g["x-ms-attestation-type"] != "azurevm" || g["x-ms-azurevm-vmid"] != "vm-1" || g["secureboot"] != true {
		t.Errorf("guest claims %v", g)
	}
	if tee, ok := g["x-ms-isolation-tee"].(map[string]any); !ok || tee["x-ms-attestation-type"] != "sevsnpvm" || tee["x-ms-sevsnpvm-reportdata"] != "abcd" {
		t.Errorf("x-ms-isolation-tee = %v", g["x-ms-isolation-tee"])
	}
	sgx := AzureClaims(&attest.Claims{TEE: attest.SGX, Measurement: attest.Hex{1}, Signer: attest.Hex{2}, ProductID: 1, SVN: 1, Debug: true})
	if sgx["x-ms-sgx-mrenclave"] != "01" || sgx["x-ms-sgx-mrsigner"] != "02" || sgx["x-ms-sgx-is-debuggable"] != true || sgx["x-ms-sgx-product-id"] != uint16(1) {
		t.Errorf("sgx claims %v", sgx)
	}
	td := AzureClaims(&attest.Claims{TEE: attest.TDX, Measurement: attest.Hex{9}, HostData: attest.Hex{8}, Debug: true,
		TCB: attest.TCB{Evaluated: true, Status: "UpToDate"}, Platform: map[string]string{"rtmr2": "aa", "mrseam": "bb"}})
	if td["x-ms-attestation-type"] != "tdxvm" || td["tdx_mrtd"] != "09" || td["tdx_mrconfigid"] != "08" || td["tdx_rtmr2"] != "aa" ||
		td["tdx_mrseam"] != "bb" || td["tdx_td_attributes_debug"] != true || td["attester_tcb_status"] != "UpToDate" {
		t.Errorf("tdx claims %v", td)
	}
	if AzureClaims(&attest.Claims{TEE: "none"}) != nil {
		t.Error("claims of an unknown TEE were mapped")
	}
}
