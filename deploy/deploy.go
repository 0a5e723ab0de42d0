package deploy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// Target is what a workload is deployed as: the kind of artifact Generate
// writes for it.
type Target string

// The deployment targets.
const (
	// CVM is cloud-init user data for a confidential VM (SNP or TDX): the
	// trustbound agent as a oneshot systemd unit that runs before the
	// application and leaves its secrets in a tmpfs at /run/trustbound.
	CVM Target = "cvm"
	// AzureCVM is an ARM template for an Azure confidential VM (DCasv5 /
	// ECasv5 on SNP, DCesv5 / ECesv5 on TDX) carrying the CVM user data.
	AzureCVM Target = "azure-cvm"
	// Kata is a confidential-container pod (Kata on SNP or TDX) with the
	// agent as an init container and a generated agent policy, carried in
	// init-data, whose bound digest the manifest pins as hostData. Upstream
	// CoCo runtime classes only: AKS's kata-cc-isolation is refused.
	Kata Target = "kata"
	// SGXContainer is an enclave-aware SGX container: EPC resources, the
	// AESM socket, and the agent running inside the enclave.
	SGXContainer Target = "sgx-container"
)

// Targets lists every target, in the order `trustbound deploy -h` shows them.
func Targets() []Target { return []Target{CVM, AzureCVM, Kata, SGXContainer} }

// AgentDir is where the agent leaves the workload's identity and secrets,
// in every target: a memory-backed directory only the workload can read.
const AgentDir = "/run/trustbound"

// Options say what to generate. Only Target, Workload, Coordinator and
// CAPEM are required; the rest have defaults.
type Options struct {
	Target   Target
	Workload string
	// Coordinator is the coordinator's URL as the workload reaches it.
	Coordinator string
	// CAPEM is the coordinator's TLS CA certificate (PEM), which the agent
	// trusts to reach it.
	CAPEM []byte

	// Pod is a Kubernetes Pod or Deployment (YAML or JSON) whose containers
	// are the application (kata, sgx-container). Empty: one container named
	// after the workload, running Image.
	Pod []byte
	// Image is the application image of the default pod; default
	// ghcr.io/trustbound/<workload>:latest.
	Image string
	// AsPod emits a Pod instead of a Deployment.
	AsPod bool
	// Namespace of the Kubernetes objects; default none (kubectl's).
	Namespace string
	// AgentImage is the image holding the trustbound binary at
	// /usr/local/bin/trustbound (kata init container), pinned by digest
	// (REPO@sha256:…); required for kata.
	AgentImage string
	// RuntimeClass overrides the Kata runtime class (default kata-qemu-snp
	// or kata-qemu-tdx); AKS's kata-cc-isolation is refused (see
	// AKSRuntimeClass).
	RuntimeClass string
	// AllowExec lets the host exec into the Kata pod: a debug escape hatch
	// that the policy states visibly and the pinned init-data digest covers.
	AllowExec bool
	// AllowLogs lets the host read the pod's stdout and stderr.
	AllowLogs bool
	// EPC is the SGX enclave page cache each container requests; default 64Mi.
	EPC string

	// AppUnit is the systemd unit of the CVM's application, which must
	// wait for the agent; default <workload>.service.
	AppUnit string
	// BinaryURL and BinarySHA256 make cloud-init download the trustbound
	// binary and check it; both empty: the image provides
	// /usr/local/bin/trustbound.
	BinaryURL, BinarySHA256 string
	// VMSize is the Azure VM size; default Standard_DC2as_v5 (SNP) or
	// Standard_DC2es_v5 (TDX).
	VMSize string
	// DiskEncryption is the Azure OS disk's securityEncryptionType:
	// DiskWithVMGuestState (default: the OS disk is encrypted with a key
	// bound to the VM's TPM) or VMGuestStateOnly.
	DiskEncryption string
}

// File is one generated file.
type File struct {
	// Name is relative to the output directory.
	Name string
	Data []byte
}

// Result is what Generate made.
type Result struct {
	// Files to write, in a fixed order.
	Files []File
	// Policy is the Kata agent policy (Rego), nil for other targets.
	Policy []byte
	// InitData is the init-data document (TOML) holding Policy; nil for
	// other targets.
	InitData []byte
	// HostData is what the TEE reports for the pod and the manifest must
	// pin, nil for other targets: the init-data digest (SNP HOST_DATA:
	// SHA-256; TDX MRCONFIGID: SHA-384).
	HostData attest.Hex
	// Notes are what the user should know before deploying (unpinned
	// images, the exec escape hatch), one sentence each.
	Notes []string
}

// ErrTarget is wrapped by Generate's error for a workload that the target
// cannot deploy.
var ErrTarget = errors.New("target does not fit the workload")

// Generate makes the artifacts that deploy workload o.Workload of m as
// o.Target. It reads only its arguments; it never talks to a TEE, a
// cluster or a cloud.
func Generate(m *manifest.Manifest, o Options) (*Result, error) {
	if m == nil {
		return nil, errors.New("deploy: no manifest")
	}
	w, ok := m.Workload(o.Workload)
	if !ok {
		return nil, fmt.Errorf("deploy: the manifest has no workload %q", o.Workload)
	}
	if err := checkCommon(o); err != nil {
		return nil, err
	}
	switch o.Target {
	case CVM, AzureCVM:
		if w.Model != manifest.ConfidentialVM || (w.TEE != attest.SEVSNP && w.TEE != attest.TDX) {
			return nil, fmt.Errorf("deploy: %w: %s deploys a confidential-vm on sev-snp or tdx; %s is a %s on %s", ErrTarget, o.Target, w.Name, w.Model, w.TEE)
		}
		if o.Target == CVM {
			return genCVM(w, o)
		}
		return genAzure(w, o)
	case Kata:
		if w.Model != manifest.ConfidentialContainer || (w.TEE != attest.SEVSNP && w.TEE != attest.TDX) {
			return nil, fmt.Errorf("deploy: %w: kata deploys a confidential-container on sev-snp or tdx; %s is a %s on %s", ErrTarget, w.Name, w.Model, w.TEE)
		}
		return genKata(w, o)
	case SGXContainer:
		if w.TEE != attest.SGX {
			return nil, fmt.Errorf("deploy: %w: sgx-container deploys an sgx workload (enclave or confidential-container); %s runs on %s", ErrTarget, w.Name, w.TEE)
		}
		return genSGX(w, o)
	}
	names := make([]string, 0, 4)
	for _, t := range Targets() {
		names = append(names, string(t))
	}
	return nil, fmt.Errorf("deploy: unknown target %q; want one of %s", o.Target, strings.Join(names, ", "))
}

func checkCommon(o Options) error {
	u, err := url.Parse(o.Coordinator)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("deploy: coordinator URL %q: want https://host[:port][/path]", o.Coordinator)
	}
	if strings.ContainsAny(o.Coordinator, " \t\r\n\"'\\`$%") {
		return fmt.Errorf("deploy: coordinator URL %q has characters that need quoting", o.Coordinator)
	}
	if err := checkCAPEM(o.CAPEM); err != nil {
		return err
	}
	return nil
}

// imageNotes says which images are not pinned by digest.
func imageNotes(images []string) []string {
	var out []string
	slices.Sort(images)
	for _, img := range slices.Compact(images) {
		if !strings.Contains(img, "@sha256:") {
			out = append(out, fmt.Sprintf("image %s is not pinned by digest (@sha256:…): whoever controls the registry chooses its code", img))
		}
	}
	return out
}
