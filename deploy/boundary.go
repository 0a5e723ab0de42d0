// Package deploy knows the deployment models — who is inside and outside each
// trust boundary, on which TEEs each model runs, and what its vendor's
// trusted computing base is — and writes what deploys each one: cloud-init
// and systemd (CVM), an ARM template (Azure CVM), a Kata pod whose agent
// policy travels in init-data pinned as hostData, an SGX pod. It reads the
// manifest's types and never talks to a TEE.
package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// Boundary is the trust boundary of one deployment model on one TEE.
type Boundary struct {
	Model manifest.Model
	TEE   attest.TEE
	// Inside are the parties and components inside the boundary: they can
	// read the workload's data in use, so the workload trusts them.
	Inside []string
	// Outside are the parties and components the TEE keeps out.
	Outside []string
	// TCB is the CPU vendor's trusted computing base, inside every boundary
	// on the TEE: what the hardware evidence is ultimately signed by.
	TCB []string
	// Caveats are what the lists alone do not say.
	Caveats []string
}

// ErrNoBoundary is wrapped by BoundaryOf's error for a model and TEE that
// do not go together, or that it does not know.
var ErrNoBoundary = errors.New("no such deployment")

// BoundaryOf returns the trust boundary of model on tee. The slices are the
// caller's.
func BoundaryOf(model manifest.Model, tee attest.TEE) (Boundary, error) {
	var tees []string
	for _, b := range boundaries {
		if b.Model != model {
			continue
		}
		if b.TEE == tee {
			return b.clone(), nil
		}
		tees = append(tees, string(b.TEE))
	}
	if tees == nil {
		return Boundary{}, fmt.Errorf("deploy: %w: unknown deployment model %q", ErrNoBoundary, model)
	}
	return Boundary{}, fmt.Errorf("deploy: %w: %s does not run on %q; it runs on %s", ErrNoBoundary, model, tee, strings.Join(tees, ", "))
}

// Boundaries returns every known boundary, by model and then TEE.
func Boundaries() []Boundary {
	out := make([]Boundary, len(boundaries))
	for i, b := range boundaries {
		out[i] = b.clone()
	}
	return out
}

func (b Boundary) clone() Boundary {
	b.Inside = slices.Clone(b.Inside)
	b.Outside = slices.Clone(b.Outside)
	b.TCB = slices.Clone(b.TCB)
	b.Caveats = slices.Clone(b.Caveats)
	return b
}

// The facts. Shared parts are named once; each boundary is one row.
var (
	tcbSNP = []string{
		"AMD Secure Processor (AMD-SP) firmware",
		"the AMD CPU and its microcode",
	}
	tcbTDX = []string{
		"Intel TDX module (SEAM)",
		"the Intel CPU and its microcode",
		"Intel TD quoting enclave (signs the quote)",
	}
	tcbSGX = []string{
		"the Intel CPU and its SGX microcode",
		"Intel architectural enclaves (quoting and provisioning certification enclaves)",
	}

	insideVM = []string{
		"the whole guest",
		"guest OS (firmware, kernel, initrd, user space)",
		"VM administrators (root in the guest)",
		"every application in the VM",
	}
	outsideVM = []string{"host OS", "hypervisor", "host administrators", "cloud operator"}

	insidePod = []string{
		"the pod (its containers)",
		"the pod's agent policy",
		"the pod VM's guest kernel and Kata agent",
	}
	outsidePod = []string{
		"Kubernetes control plane",
		"cluster administrator",
		"node OS",
		"host (hypervisor)",
		"cloud operator",
	}

	caveatVMRoot = "Root in the guest and every application in the VM can read the workload's data and every secret released to the VM."
	caveatIO     = "The host still schedules the guest and carries its I/O: the TEE protects confidentiality and integrity, not availability; encrypt and authenticate disk and network traffic inside the boundary."
	caveatPolicy = "The agent policy is inside the boundary: whatever it allows (exec, reading logs, which images and environment) the cluster administrator can do, which is why the digest of the init-data that holds it is pinned as hostData."
	caveatImages = "Unless the policy pins the images (by digest, or their layers' dm-verity hashes), whoever controls the registry or the node chooses the code."
)

var boundaries = []Boundary{
	{
		Model:   manifest.ConfidentialVM,
		TEE:     attest.SEVSNP,
		Inside:  insideVM,
		Outside: outsideVM,
		TCB:     tcbSNP,
		Caveats: []string{
			"Behind a paravisor (Azure confidential VMs: the HCL/OpenHCL at VMPL0, which provides a vTPM), the paravisor is inside the boundary too and is written and updated by the cloud provider; evidence then is the HCL report with a vTPM quote.",
			"The launch measurement covers what was loaded before launch (firmware, and kernel, initrd and command line with measured direct boot); later stages are covered only by the guest's own measurements (vTPM PCRs).",
			caveatVMRoot,
			caveatIO,
		},
	},
	{
		Model:   manifest.ConfidentialVM,
		TEE:     attest.TDX,
		Inside:  insideVM,
		Outside: outsideVM,
		TCB:     tcbTDX,
		Caveats: []string{
			"Behind a paravisor (Azure TDX confidential VMs: the HCL/OpenHCL in an L1 VM, which provides a vTPM), the paravisor is inside the boundary too and is written and updated by the cloud provider; evidence then is the HCL report with a vTPM quote.",
			"MRTD covers only the initial TD image (the TDVF firmware); the kernel and later stages are measured into RTMR0-3.",
			caveatVMRoot,
			caveatIO,
		},
	},
	{
		Model:  manifest.Enclave,
		TEE:    attest.SGX,
		Inside: []string{"the enclave's code and data"},
		Outside: []string{
			"guest OS",
			"VM administrators",
			"other applications",
			"the application's code outside the enclave",
			"hypervisor",
			"cloud operator",
		},
		TCB: tcbSGX,
		Caveats: []string{
			"The OS and the untrusted part of the application supply every input and serve every OCALL: the enclave must treat them as hostile.",
			"Page faults, timing and cache use are visible to the OS (side channels); acceptedTCB decides which platforms with open vendor advisories are acceptable.",
			"With a library OS (Gramine, Occlum, EGo) the library OS runs inside the enclave and is part of MRENCLAVE.",
		},
	},
	{
		Model:   manifest.ConfidentialContainer,
		TEE:     attest.SEVSNP,
		Inside:  insidePod,
		Outside: outsidePod,
		TCB:     tcbSNP,
		Caveats: []string{
			caveatPolicy + " On SNP that is HOST_DATA: the SHA-256 of the init-data document that holds the policy.",
			caveatImages,
			"The pod VM's kernel and Kata agent come from the platform, not from the workload's owner; pin them with the launch measurement.",
		},
	},
	{
		Model:   manifest.ConfidentialContainer,
		TEE:     attest.TDX,
		Inside:  insidePod,
		Outside: outsidePod,
		TCB:     tcbTDX,
		Caveats: []string{
			caveatPolicy + " On TDX that is MRCONFIGID: the SHA-384 of the init-data document that holds the policy (upstream Kata, annotation cc_init_data).",
			caveatImages,
			"The pod VM's kernel and Kata agent come from the platform, not from the workload's owner; pin them with MRTD and the RTMRs.",
		},
	},
	{
		Model:  manifest.ConfidentialContainer,
		TEE:    attest.SGX,
		Inside: []string{"the enclave of the enclave-aware container (its code and data)"},
		Outside: []string{
			"the container's processes outside the enclave",
			"Kubernetes control plane",
			"cluster administrator",
			"node OS",
			"host (hypervisor)",
			"cloud operator",
		},
		TCB: tcbSGX,
		Caveats: []string{
			"Only the enclave is inside, not the container: secrets must be used inside the enclave alone.",
			"Quoting needs the node's SGX device and quote provider (sgx.intel.com/epc; /var/run/aesmd for out-of-process quoting): a dependency for availability, not for trust.",
		},
	},
}
