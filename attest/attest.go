// Package attest turns TEE evidence into normalised, verified Claims: it
// defines Evidence, Claims, the Verifier and Attester interfaces and the
// Registry through which callers verify every format; it never appraises.
package attest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// TEE names a kind of trusted execution environment.
type TEE string

// The TEEs trustbound knows.
const (
	SEVSNP TEE = "sev-snp"
	SGX    TEE = "sgx"
	TDX    TEE = "tdx"
)

// Format names a wire format of evidence. One Verifier serves one Format.
type Format string

// The evidence formats of this release.
const (
	// FormatSNPReport is a raw 1184-byte AMD SEV-SNP attestation report with
	// its VCEK (and optionally ASK/ARK) certificates in Evidence.Certs.
	FormatSNPReport Format = "sev-snp-report"
	// FormatSGXQuoteV3 is an Intel SGX DCAP ECDSA quote, version 3.
	FormatSGXQuoteV3 Format = "sgx-dcap-quote-v3"
	// FormatAzureSNPVTPM is an Azure confidential VM on SEV-SNP behind its
	// paravisor: the JSON evidence of the Confidential Containers
	// az-snp-vtpm attester (HCL report with the SNP report inside, vTPM
	// quote over the PCRs, VCEK). Claims.ReportData is the TPM quote's
	// qualifying data (the nonce the workload bound).
	FormatAzureSNPVTPM Format = "az-snp-vtpm"
	// FormatTDXQuote is an Intel TDX DCAP ECDSA quote, version 4 or 5 (TDX
	// 1.0 and 1.5 TD reports), carrying its PCK certificate chain.
	FormatTDXQuote Format = "tdx-quote"
	// FormatAzureTDXVTPM is an Azure confidential VM on TDX behind its
	// paravisor: the JSON evidence of the Confidential Containers
	// az-tdx-vtpm attester (HCL report with the TDREPORT inside, the TD
	// quote for it, vTPM quote over the PCRs). Claims.ReportData is the TPM
	// quote's qualifying data.
	FormatAzureTDXVTPM Format = "az-tdx-vtpm"
)

// Evidence is what a workload presents: a format tag, the raw report or
// quote, and the auxiliary material needed to verify it.
type Evidence struct {
	Format Format `json:"format"`
	// Data is the raw hardware report or quote, exactly as the TEE produced it.
	Data []byte `json:"data"`
	// Certs holds DER certificates that accompany the evidence (for SNP the
	// VCEK or VLEK first, then ASK/ARK when known). Verifiers never trust
	// them as roots.
	Certs [][]byte `json:"certs,omitempty"`
	// RuntimeData is the document whose hash the TEE bound into its report
	// data (see BindsNative and BindsRuntimeData). It travels beside the evidence.
	RuntimeData []byte `json:"runtimeData,omitempty"`
}

// Hex is a byte string that reads and writes as lower-case hex in JSON and YAML.
type Hex []byte

// String returns the lower-case hex form.
func (h Hex) String() string { return hex.EncodeToString(h) }

// MarshalText implements encoding.TextMarshaler.
func (h Hex) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hex) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	*h = v
	return nil
}

// Claims are the normalised facts established by verifying evidence. Fields
// that a TEE does not have are left empty.
type Claims struct {
	TEE    TEE    `json:"tee"`
	Format Format `json:"format"`
	// Model is the deployment model of the workload the claims were
	// appraised for (policy sets it; evidence alone does not say it).
	Model string `json:"model,omitempty"`
	// Simulated is true when the evidence chained to a simulated vendor root
	// (attest/simtee). Simulated claims prove nothing about hardware.
	Simulated bool `json:"simulated"`
	// Measurement is the launch measurement: SNP MEASUREMENT, SGX MRENCLAVE,
	// TDX MRTD.
	Measurement Hex `json:"measurement"`
	// Signer identifies who signed the workload: SGX MRSIGNER, SNP
	// AUTHOR_KEY_DIGEST (or ID_KEY_DIGEST when no author key is present).
	Signer Hex `json:"signer,omitempty"`
	// ProductID is the SGX ISVPRODID; SVN the SGX ISVSVN or SNP GUEST_SVN.
	ProductID uint16 `json:"productId"`
	SVN       uint32 `json:"svn"`
	// Debug is true when the TEE lets a host debugger read its memory.
	Debug bool `json:"debug"`
	// HostData is what the launcher bound at launch: SNP HOST_DATA, TDX
	// MRCONFIGID, SGX CONFIGID. For confidential containers it carries the
	// hash of the pod policy (or init-data).
	HostData Hex `json:"hostData,omitempty"`
	// ReportData is the 64 bytes the workload bound into the evidence.
	ReportData Hex `json:"reportData"`
	// VMPL is the SNP virtual machine privilege level that requested the
	// report (0 is the most privileged); nil for other TEEs.
	VMPL *uint32 `json:"vmpl,omitempty"`
	// MigrationAgent is true when the SNP guest policy lets a migration
	// agent (MIGRATE_MA) move the guest, and with it its memory.
	MigrationAgent bool `json:"migrationAgent,omitempty"`
	// RevocationChecked is true when the verifier checked the vendor's
	// revocation lists for the whole certificate chain. Evidence verified
	// without collateral says false, which no appraisal accepts for real
	// (non-simulated) evidence.
	RevocationChecked bool `json:"revocationChecked"`
	// PCRs are the vTPM PCR values a TPM quote covered (Azure CVMs), by index.
	PCRs map[int]Hex `json:"pcrs,omitempty"`
	// Runtime is the JSON document the TEE firmware itself bound into the
	// report (the Azure HCL runtime claims: keys, vm-configuration,
	// user-data), as it was in the evidence.
	Runtime json.RawMessage `json:"runtime,omitempty"`
	// TCB describes the platform's trusted computing base as far as the
	// verifier evaluated it.
	TCB TCB `json:"tcb"`
	// Platform holds format-specific fields under their spec names (for
	// example "vmpl", "policy", "chip_id", "attributes"), as strings.
	Platform map[string]string `json:"platform,omitempty"`
}

// TCB is the platform's TCB as the verifier saw it.
type TCB struct {
	// Evaluated is true when the verifier matched the platform's TCB against
	// vendor collateral, and Status is then meaningful.
	Evaluated bool `json:"evaluated"`
	// Status is the vendor TCB status, e.g. "UpToDate", "OutOfDate".
	Status string `json:"status,omitempty"`
	// Advisories are the vendor advisory IDs that apply.
	Advisories []string `json:"advisories,omitempty"`
	// Components are the SVNs of the TCB components, e.g. "bootloader",
	// "tee", "snp", "microcode" for SNP.
	Components map[string]uint64 `json:"components,omitempty"`
}

// Options are the inputs to one verification that the caller controls.
type Options struct {
	// Now is the time at which certificates must be valid. Required.
	Now time.Time
	// AllowSimulated lets evidence chain to the simulated roots of
	// attest/simtee. Without it such evidence fails with ErrSimulated.
	AllowSimulated bool
	// SkipCollateral checks signatures and chains only: no revocation list
	// or other collateral is fetched or required, and the claims say
	// RevocationChecked false (trustbound verify --no-collateral).
	SkipCollateral bool
}

// Verifier checks that evidence of one format is genuine — framing,
// signatures, certificate chains to the vendor roots — and returns its
// claims. It does not appraise them against any reference values.
type Verifier interface {
	Format() Format
	Verify(ctx context.Context, ev *Evidence, opts Options) (*Claims, error)
}

// Attester produces evidence from inside a TEE, binding reportData.
type Attester interface {
	TEE() TEE
	Attest(ctx context.Context, reportData [64]byte) (*Evidence, error)
}
