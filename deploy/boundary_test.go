package deploy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

func TestBoundaryOf(t *testing.T) {
	tests := []struct {
		model   manifest.Model
		tee     attest.TEE
		inside  []string
		outside []string
		tcb     string
		caveat  string
	}{
		{manifest.ConfidentialVM, attest.SEVSNP,
			[]string{"the whole guest", "guest OS (firmware, kernel, initrd, user space)", "VM administrators (root in the guest)", "every application in the VM"},
			[]string{"host OS", "hypervisor", "host administrators", "cloud operator"},
			"AMD Secure Processor (AMD-SP) firmware", "paravisor"},
		{manifest.ConfidentialVM, attest.TDX,
			[]string{"the whole guest", "guest OS (firmware, kernel, initrd, user space)", "VM administrators (root in the guest)", "every application in the VM"},
			[]string{"host OS", "hypervisor", "host administrators", "cloud operator"},
			"Intel TDX module (SEAM)", "paravisor"},
		{manifest.Enclave, attest.SGX,
			[]string{"the enclave's code and data"},
			[]string{"guest OS", "VM administrators", "other applications", "the application's code outside the enclave", "hypervisor", "cloud operator"},
			"the Intel CPU and its SGX microcode", "OCALL"},
		{manifest.ConfidentialContainer, attest.SEVSNP,
			[]string{"the pod (its containers)", "the pod's agent policy", "the pod VM's guest kernel and Kata agent"},
			[]string{"Kubernetes control plane", "cluster administrator", "node OS", "host (hypervisor)", "cloud operator"},
			"AMD Secure Processor (AMD-SP) firmware", "HOST_DATA"},
		{manifest.ConfidentialContainer, attest.TDX,
			[]string{"the pod (its containers)", "the pod's agent policy", "the pod VM's guest kernel and Kata agent"},
			[]string{"Kubernetes control plane", "cluster administrator", "node OS", "host (hypervisor)", "cloud operator"},
			"Intel TDX module (SEAM)", "MRCONFIGID"},
		{manifest.ConfidentialContainer, attest.SGX,
			[]string{"the enclave of the enclave-aware container (its code and data)"},
			[]string{"the container's processes outside the enclave", "Kubernetes control plane", "cluster administrator", "node OS", "host (hypervisor)", "cloud operator"},
			"the Intel CPU and its SGX microcode", "Only the enclave is inside"},
	}
	for _, tt := range tests {
		t.Run(string(tt.model)+"/"+string(tt.tee), func(t *testing.T) {
			b, err := BoundaryOf(tt.model, tt.tee)
			if err != nil {
				t.Fatal(err)
			}
			if b.Model != tt.model || b.TEE != tt.tee {
				t.Errorf("BoundaryOf returned %s/%s", b.Model, b.TEE)
			}
			if !slices.Equal(b.Inside, tt.inside) {
				t.Errorf("Inside = %q\nwant     %q", b.Inside, tt.inside)
			}
			if !slices.Equal(b.Outside, tt.outside) {
				t.Errorf("Outside = %q\nwant      %q", b.Outside, tt.outside)
			}
			if !slices.Contains(b.TCB, tt.tcb) {
				t.Errorf("TCB = %q, want it to hold %q", b.TCB, tt.tcb)
			}
			if !slices.ContainsFunc(b.Caveats, func(c string) bool { return strings.Contains(c, tt.caveat) }) {
				t.Errorf("no caveat mentions %q: %q", tt.caveat, b.Caveats)
			}
			// Nothing is both inside and outside.
			for _, in := range b.Inside {
				if slices.Contains(b.Outside, in) {
					t.Errorf("%q is inside and outside", in)
				}
			}
		})
	}
	if len(tests) != len(Boundaries()) {
		t.Errorf("tested %d boundaries, the table has %d", len(tests), len(Boundaries()))
	}
}

func TestBoundaryOfRefuses(t *testing.T) {
	tests := []struct {
		model manifest.Model
		tee   attest.TEE
		msg   string
	}{
		{manifest.Enclave, attest.SEVSNP, `enclave does not run on "sev-snp"; it runs on sgx`},
		{manifest.Enclave, attest.TDX, `enclave does not run on "tdx"; it runs on sgx`},
		{manifest.ConfidentialVM, attest.SGX, `confidential-vm does not run on "sgx"; it runs on sev-snp, tdx`},
		{manifest.ConfidentialContainer, "sev", `confidential-container does not run on "sev"; it runs on sev-snp, tdx, sgx`},
		{"serverless", attest.SEVSNP, `unknown deployment model "serverless"`},
		{"", "", `unknown deployment model ""`},
	}
	for _, tt := range tests {
		_, err := BoundaryOf(tt.model, tt.tee)
		if !errors.Is(err, ErrNoBoundary) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("BoundaryOf(%q, %q) = %v, want ErrNoBoundary with %q", tt.model, tt.tee, err, tt.msg)
		}
	}
}

// TestBoundariesMatchManifest: the manifest accepts exactly the model and
// TEE pairs that have a boundary here.
func TestBoundariesMatchManifest(t *testing.T) {
	var want, got []string
	for _, m := range manifest.Models() {
		for _, tee := range m.TEEs() {
			want = append(want, string(m)+"/"+string(tee))
		}
	}
	for _, b := range Boundaries() {
		got = append(got, string(b.Model)+"/"+string(b.TEE))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("boundaries %q\nmanifest   %q", got, want)
	}
}

func TestBoundaryIsACopy(t *testing.T) {
	b, err := BoundaryOf(manifest.ConfidentialVM, attest.SEVSNP)
	if err != nil {
		t.Fatal(err)
	}
	b.Inside[0], b.Outside[0], b.TCB[0], b.Caveats[0] = "x", "x", "x", "x"
	again, _ := BoundaryOf(manifest.ConfidentialVM, attest.TDX) // shares insideVM
	if again.Inside[0] == "x" || again.Outside[0] == "x" {
		t.Error("BoundaryOf hands out the table's slices")
	}
	all := Boundaries()
	all[0].TCB[0] = "x"
	if b2, _ := BoundaryOf(all[0].Model, all[0].TEE); b2.TCB[0] == "x" {
		t.Error("Boundaries hands out the table's slices")
	}
}
