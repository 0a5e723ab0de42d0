// Package manifest defines the deployment manifest — owners, workloads of all
// three deployment models with their reference values, and secrets with their
// grants — and parses and validates it strictly; it never talks to a TEE.
package manifest

import (
	"github.com/trustbound/trustbound/attest"
)

// Model is a deployment model: where the trust boundary runs.
type Model string

// The three deployment models.
const (
	ConfidentialVM        Model = "confidential-vm"
	Enclave               Model = "enclave"
	ConfidentialContainer Model = "confidential-container"
)

// SecretType says how a secret comes to exist.
type SecretType string

// The secret types.
const (
	// Symmetric is a key the coordinator generates (Bits long, default 256).
	Symmetric SecretType = "symmetric"
	// KeyPair is an asymmetric key pair the coordinator generates
	// (Algorithm "ec-p256" by default, or "rsa-2048", "rsa-3072", "ed25519").
	KeyPair SecretType = "keypair"
	// User is a value an owner sets through the API; it is never in the manifest.
	User SecretType = "user"
	// X509 is a certificate with its private key, issued by the coordinator's
	// CA for the names in Subject and DNSNames.
	X509 SecretType = "x509"
)

// Manifest is one document that declares every workload, its reference
// values and its secrets, for all three deployment models.
type Manifest struct {
	// Version is the schema version; 1.
	Version int `json:"version"`
	// TrustDomain is the SPIFFE trust domain of issued identities.
	TrustDomain string `json:"trustDomain"`
	// AllowSimulated lets simulated TEEs attest. Tokens and certificates
	// issued to them say simulated. Never set it in production.
	AllowSimulated bool       `json:"allowSimulated,omitempty"`
	Owners         []Owner    `json:"owners"`
	Workloads      []Workload `json:"workloads"`
	Secrets        []Secret   `json:"secrets,omitempty"`
}

// Owner may change the manifest and set user secrets, proving it with a
// signature by PublicKey (PEM, ECDSA P-256/P-384 or Ed25519).
type Owner struct {
	Name      string `json:"name"`
	PublicKey string `json:"publicKey"`
}

// Workload is one attestable workload.
type Workload struct {
	Name      string     `json:"name"`
	Model     Model      `json:"model"`
	TEE       attest.TEE `json:"tee"`
	Reference Reference  `json:"reference"`
	// Policies names owner-controlled appraisal policies (Rego, Key Vault
	// release policy or Azure attestation policy text, set through
	// PUT /v1/policies/{name}) that must also permit the workload, in the
	// order they are evaluated. A name that is not set denies.
	Policies []string `json:"policies,omitempty"`
}

// Reference are the values a workload's claims must match. An empty field
// does not constrain; the manifest validator insists on enough of them for
// each model that a workload is pinned.
type Reference struct {
	// Measurements are the accepted launch measurements (SNP MEASUREMENT,
	// SGX MRENCLAVE, TDX MRTD); any one matches.
	Measurements []attest.Hex `json:"measurements,omitempty"`
	// Signer is the expected SGX MRSIGNER or SNP author/ID key digest.
	Signer attest.Hex `json:"signer,omitempty"`
	// ProductID is the expected SGX ISVPRODID.
	ProductID *uint16 `json:"productID,omitempty"`
	// MinSVN is the lowest accepted SGX ISVSVN or SNP GUEST_SVN.
	MinSVN *uint32 `json:"minSVN,omitempty"`
	// HostData is the expected SNP HOST_DATA / TDX MRCONFIGID / SGX
	// CONFIGID: for a confidential container, the digest of the init-data
	// document holding its agent policy (SNP: SHA-256; TDX: SHA-384), or on
	// Azure's confidential containers the SHA-256 of the policy itself.
	HostData attest.Hex `json:"hostData,omitempty"`
	// Debug allows a debuggable TEE. Default false: debug TEEs are refused.
	Debug bool `json:"debug,omitempty"`
	// MinTCB is the lowest accepted security patch level of each SNP TCB
	// component, checked against the TCB the report states (and its VCEK
	// certifies). Unset components are not constrained.
	MinTCB *TCBFloor `json:"minTCB,omitempty"`
	// VMPL is the SNP privilege level the report must come from; default 0
	// (the most privileged, where the guest's own kernel or paravisor runs).
	VMPL *uint32 `json:"vmpl,omitempty"`
	// AllowMigrationAgent accepts an SNP guest whose policy lets a migration
	// agent move it (and its memory) to another host. Default false.
	AllowMigrationAgent bool `json:"allowMigrationAgent,omitempty"`
	// PCRs pins vTPM PCRs (SHA-256 bank) of a confidential VM behind a
	// paravisor (Azure CVMs): there the hardware measurement is the
	// paravisor's, shared by every tenant on that build, and only the PCRs
	// (firmware, boot loader, kernel, secure boot state) identify the guest.
	// Evidence that carries PCRs is refused unless the workload pins some.
	PCRs []PCR `json:"pcrs,omitempty"`
	// AllowUncheckedRevocation accepts real evidence whose vendor
	// revocation lists could not be checked (the coordinator runs with
	// --allow-missing-crl). Default false.
	AllowUncheckedRevocation bool `json:"allowUncheckedRevocation,omitempty"`
	// TDX pins the TD's runtime measurement registers and SEAM module:
	// each set register must match exactly.
	TDX *TDXRegisters `json:"tdx,omitempty"`
	// AcceptedAdvisories lists the vendor security advisories (e.g.
	// INTEL-SA-00615) a workload accepts on its platform; "*" accepts any.
	// Default none: a platform with an open advisory is refused.
	AcceptedAdvisories []string `json:"acceptedAdvisories,omitempty"`
	// AcceptedTCB lists the vendor TCB statuses accepted when the verifier
	// evaluated the TCB. Default: UpToDate only.
	AcceptedTCB []string `json:"acceptedTCB,omitempty"`
}

// PCR is one pinned vTPM PCR value.
type PCR struct {
	Index  uint8      `json:"index"`
	Digest attest.Hex `json:"digest"`
}

// TDXRegisters are TDX measurement registers a workload pins (48 bytes
// each); unset registers are not constrained.
type TDXRegisters struct {
	RTMR0 attest.Hex `json:"rtmr0,omitempty"`
	RTMR1 attest.Hex `json:"rtmr1,omitempty"`
	RTMR2 attest.Hex `json:"rtmr2,omitempty"`
	RTMR3 attest.Hex `json:"rtmr3,omitempty"`
	// MRSEAM is the measurement of the TDX module; MROwner and
	// MROwnerConfig are set by the VMM at TD creation.
	MRSEAM        attest.Hex `json:"mrseam,omitempty"`
	MROwner       attest.Hex `json:"mrowner,omitempty"`
	MROwnerConfig attest.Hex `json:"mrownerconfig,omitempty"`
}

// Pinned lists the set registers by their claim names (rtmr0…, mrseam,
// mrowner, mrownerconfig).
func (t *TDXRegisters) Pinned() map[string]attest.Hex {
	out := map[string]attest.Hex{}
	if t == nil {
		return out
	}
	for name, v := range map[string]attest.Hex{"rtmr0": t.RTMR0, "rtmr1": t.RTMR1, "rtmr2": t.RTMR2, "rtmr3": t.RTMR3,
		"mrseam": t.MRSEAM, "mrowner": t.MROwner, "mrownerconfig": t.MROwnerConfig} {
		if len(v) > 0 {
			out[name] = v
		}
	}
	return out
}

// TCBFloor is the lowest accepted SVN of each SNP TCB component.
type TCBFloor struct {
	Bootloader *uint8 `json:"bootloader,omitempty"`
	TEE        *uint8 `json:"tee,omitempty"`
	SNP        *uint8 `json:"snp,omitempty"`
	Microcode  *uint8 `json:"microcode,omitempty"`
	// FMC is Turin's firmware microcontroller component.
	FMC *uint8 `json:"fmc,omitempty"`
}

// Components lists the floor's set components by their claim names.
func (f *TCBFloor) Components() map[string]uint64 {
	out := map[string]uint64{}
	if f == nil {
		return out
	}
	for name, v := range map[string]*uint8{"bootloader": f.Bootloader, "tee": f.TEE, "snp": f.SNP, "microcode": f.Microcode, "fmc": f.FMC} {
		if v != nil {
			out[name] = uint64(*v)
		}
	}
	return out
}

// VMPLOrDefault is the VMPL an SNP report must come from.
func (r Reference) VMPLOrDefault() uint32 {
	if r.VMPL == nil {
		return 0
	}
	return *r.VMPL
}

// Secret is something the coordinator releases to attested workloads.
type Secret struct {
	Name string     `json:"name"`
	Type SecretType `json:"type"`
	// Bits is the length of a symmetric key (128, 192, 256; default 256).
	Bits int `json:"bits,omitempty"`
	// Algorithm of a keypair or x509 secret: "ec-p256" (default),
	// "ec-p384", "ed25519", "rsa-2048", "rsa-3072".
	Algorithm string `json:"algorithm,omitempty"`
	// Subject (common name) and DNSNames of an x509 secret.
	Subject  string   `json:"subject,omitempty"`
	DNSNames []string `json:"dnsNames,omitempty"`
	// GrantedTo names the workloads that may receive the secret.
	GrantedTo []string `json:"grantedTo"`
	// ReleasePolicy names a stored policy of kind release (Key Vault's
	// secure key release grammar) that the Key Vault style release
	// surface (POST /keys/{name}/release) evaluates over the attestation
	// token's claims before it releases this secret. Empty: none.
	ReleasePolicy string `json:"releasePolicy,omitempty"`
}
