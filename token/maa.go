package token

import (
	"strconv"

	"github.com/trustbound/trustbound/attest"
)

// AzureClaims maps claims to the names Azure Attestation uses for the same
// TEE, so that relying parties and release policies written for Azure
// Attestation read trustbound's tokens unchanged: x-ms-sevsnpvm-* for SNP,
// x-ms-sgx-* for SGX, and for Azure CVM guest evidence the attestation type
// "azurevm" with the hardware claims nested under x-ms-isolation-tee.
// Values keep Azure's types: hex strings, numbers and booleans. Only names
// Azure defines are produced; trustbound's own facts (simulated, revocation
// checked) stay in its x-tb-* claims.
func AzureClaims(c *attest.Claims) map[string]any {
	if c == nil {
		return nil
	}
	var hw map[string]any
	switch c.TEE {
	case attest.SEVSNP:
		hw = snpClaims(c)
	case attest.SGX:
		hw = sgxClaims(c)
	case attest.TDX:
		hw = tdxClaims(c)
	default:
		return nil
	}
	if c.Format != attest.FormatAzureSNPVTPM && c.Format != attest.FormatAzureTDXVTPM {
		return hw
	}
	// Behind the paravisor the hardware report data binds the HCL runtime
	// claims; the workload's nonce is in the TPM quote (Claims.ReportData).
	if c.TEE == attest.SEVSNP {
		hw["x-ms-sevsnpvm-reportdata"] = c.Platform["snp_report_data"]
	}
	guest := map[string]any{
		"x-ms-attestation-type": "azurevm",
		"x-ms-isolation-tee":    hw,
		"x-ms-azurevm-vmid":     c.Platform["vm_unique_id"],
	}
	if c.Platform["secure_boot"] != "" {
		guest["secureboot"] = c.Platform["secure_boot"] == "true"
	}
	return guest
}

func snpClaims(c *attest.Claims) map[string]any {
	p := c.Platform
	m := map[string]any{
		"x-ms-attestation-type":           "sevsnpvm",
		"x-ms-sevsnpvm-launchmeasurement": c.Measurement.String(),
		"x-ms-sevsnpvm-hostdata":          c.HostData.String(),
		"x-ms-sevsnpvm-reportdata":        c.ReportData.String(),
		"x-ms-sevsnpvm-guestsvn":          c.SVN,
		"x-ms-sevsnpvm-is-debuggable":     c.Debug,
		"x-ms-sevsnpvm-migration-allowed": c.MigrationAgent,
		"x-ms-sevsnpvm-idkeydigest":       p["id_key_digest"],
		"x-ms-sevsnpvm-authorkeydigest":   p["author_key_digest"],
		"x-ms-sevsnpvm-familyId":          p["family_id"],
		"x-ms-sevsnpvm-imageId":           p["image_id"],
		"x-ms-sevsnpvm-reportid":          p["report_id"],
		"x-ms-sevsnpvm-smt-allowed":       p["smt_allowed"] == "true",
		"x-ms-sevsnpvm-bootloader-svn":    c.TCB.Components["bootloader"],
		"x-ms-sevsnpvm-tee-svn":           c.TCB.Components["tee"],
		"x-ms-sevsnpvm-snpfw-svn":         c.TCB.Components["snp"],
		"x-ms-sevsnpvm-microcode-svn":     c.TCB.Components["microcode"],
	}
	if c.VMPL != nil {
		m["x-ms-sevsnpvm-vmpl"] = *c.VMPL
	}
	return m
}

func sgxClaims(c *attest.Claims) map[string]any {
	m := map[string]any{
		"x-ms-attestation-type":  "sgx",
		"x-ms-sgx-is-debuggable": c.Debug,
		"x-ms-sgx-product-id":    c.ProductID,
		"x-ms-sgx-mrsigner":      c.Signer.String(),
		"x-ms-sgx-mrenclave":     c.Measurement.String(),
		"x-ms-sgx-svn":           c.SVN,
		"x-ms-sgx-report-data":   c.ReportData.String(),
		"x-ms-sgx-config-id":     c.HostData.String(),
	}
	if v, err := strconv.Atoi(c.Platform["config_svn"]); err == nil {
		m["x-ms-sgx-config-svn"] = v
	}
	return m
}

func tdxClaims(c *attest.Claims) map[string]any {
	p := c.Platform
	m := map[string]any{
		"x-ms-attestation-type":   "tdxvm",
		"tdx_mrtd":                c.Measurement.String(),
		"tdx_mrconfigid":          c.HostData.String(),
		"tdx_report_data":         c.ReportData.String(),
		"tdx_td_attributes_debug": c.Debug,
		"tdx_mrseam":              p["mrseam"],
		"tdx_mrsignerseam":        p["mrsignerseam"],
		"tdx_mrowner":             p["mrowner"],
		"tdx_mrownerconfig":       p["mrownerconfig"],
		"tdx_rtmr0":               p["rtmr0"],
		"tdx_rtmr1":               p["rtmr1"],
		"tdx_rtmr2":               p["rtmr2"],
		"tdx_rtmr3":               p["rtmr3"],
		"tdx_seam_attributes":     p["seam_attributes"],
		"tdx_td_attributes":       p["td_attributes"],
		"tdx_tee_tcb_svn":         p["tee_tcb_svn"],
		"tdx_xfam":                p["xfam"],
	}
	if c.TCB.Evaluated {
		m["attester_tcb_status"] = c.TCB.Status
	}
	return m
}
