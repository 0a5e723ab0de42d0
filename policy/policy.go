// Package policy appraises verified claims against what the manifest
// declares for a workload and returns a verdict; it denies by default and
// never looks at raw evidence.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// ErrDenied is wrapped by every refusal of Appraise; the joined Violations
// say why.
var ErrDenied = errors.New("appraisal denied")

// Violation is one way the claims fail the workload's reference values.
type Violation struct {
	Field string // the reference field, e.g. "measurements"
	Msg   string
}

func (v *Violation) Error() string { return v.Field + ": " + v.Msg }

// Verdict is the outcome of a successful appraisal.
type Verdict struct {
	Workload  string
	Model     manifest.Model
	TEE       attest.TEE
	Simulated bool
	// Status is the EAR status: "affirming" for an appraisal that passed.
	Status string
}

// teesWithTCBStatus are the TEEs whose vendor publishes a TCB status
// (Intel DCAP) that a workload's acceptedTCB constrains.
var teesWithTCBStatus = []attest.TEE{attest.SGX, attest.TDX}

// Appraise checks claims against workload w of manifest m. It collects
// every violation; the error wraps ErrDenied and each *Violation.
func Appraise(c *attest.Claims, m *manifest.Manifest, w *manifest.Workload) (*Verdict, error) {
	if c == nil || m == nil || w == nil {
		return nil, fmt.Errorf("%w: nothing to appraise", ErrDenied)
	}
	var vs []error
	deny := func(field, format string, args ...any) {
		vs = append(vs, &Violation{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	ref := w.Reference

	if len(ref.Measurements) == 0 && (len(ref.Signer) == 0 || ref.ProductID == nil) {
		// Validation insists on this too; appraisal does not rely on it.
		deny("measurements", "the workload pins neither a measurement nor a signer with product id: nothing to appraise against")
	}
	if c.TEE != w.TEE {
		deny("tee", "evidence is from %s, workload %q runs on %s", c.TEE, w.Name, w.TEE)
	}
	if c.Simulated && !m.AllowSimulated {
		deny("allowSimulated", "evidence is from a simulated TEE and the manifest does not allow simulation")
	}
	if !c.Simulated && !c.RevocationChecked && !ref.AllowUncheckedRevocation {
		deny("revocation", "the vendor's revocation lists were not checked (evidence verified without collateral)")
	}
	if len(c.PCRs) > 0 && len(ref.PCRs) == 0 {
		deny("pcrs", "the evidence comes from behind a paravisor (it carries vTPM PCRs): its hardware measurement is the paravisor's, shared by every guest on that build; pin the guest's PCRs")
	}
	for _, pcr := range ref.PCRs {
		if got, ok := c.PCRs[int(pcr.Index)]; !ok || !bytes.Equal(got, pcr.Digest) {
			deny("pcrs", "PCR %d is %s, want %s", pcr.Index, orNone(got.String()), pcr.Digest)
		}
	}
	if len(ref.Measurements) > 0 && !slices.ContainsFunc(ref.Measurements, func(h attest.Hex) bool { return bytes.Equal(h, c.Measurement) }) {
		deny("measurements", "measurement %s is not one of the %d accepted", c.Measurement, len(ref.Measurements))
	}
	if len(ref.Signer) > 0 && !bytes.Equal(ref.Signer, c.Signer) {
		deny("signer", "signer %s, want %s", c.Signer, ref.Signer)
	}
	if ref.ProductID != nil && *ref.ProductID != c.ProductID {
		deny("productID", "product id %d, want %d", c.ProductID, *ref.ProductID)
	}
	if ref.MinSVN != nil && c.SVN < *ref.MinSVN {
		deny("minSVN", "SVN %d is below the minimum %d", c.SVN, *ref.MinSVN)
	}
	if len(ref.HostData) > 0 && !bytes.Equal(ref.HostData, hostDataOf(c, len(ref.HostData))) {
		deny("hostData", "host data %s, want %s (for a confidential container: the pod policy is not the one declared)", c.HostData, ref.HostData)
	}
	if c.Debug && !ref.Debug {
		deny("debug", "the TEE is debuggable (its memory is readable by the host) and the workload does not allow debug")
	}
	if c.TEE == attest.SEVSNP && w.TEE == attest.SEVSNP {
		switch want := ref.VMPLOrDefault(); {
		case c.VMPL == nil:
			deny("vmpl", "the evidence states no VMPL")
		case *c.VMPL != want:
			deny("vmpl", "report requested at VMPL %d, want %d", *c.VMPL, want)
		}
		if c.MigrationAgent && !ref.AllowMigrationAgent {
			deny("allowMigrationAgent", "the guest policy lets a migration agent move the guest and its memory, and the workload does not allow it")
		}
		for _, name := range slices.Sorted(maps.Keys(ref.MinTCB.Components())) {
			floor := ref.MinTCB.Components()[name]
			if got, ok := c.TCB.Components[name]; !ok || got < floor {
				deny("minTCB", "TCB component %s is at %d, below the minimum %d (or not reported)", name, got, floor)
			}
		}
	}
	if c.TEE == attest.TDX && w.TEE == attest.TDX {
		for _, name := range slices.Sorted(maps.Keys(ref.TDX.Pinned())) {
			want := ref.TDX.Pinned()[name]
			if got := c.Platform[name]; got != want.String() {
				deny("tdx."+name, "%s is %s, want %s", name, orNone(got), want)
			}
		}
	}
	if slices.Contains(teesWithTCBStatus, c.TEE) {
		switch {
		case c.TCB.Evaluated && !slices.Contains(ref.TCBAccepted(), c.TCB.Status):
			deny("acceptedTCB", "TCB status %q is not accepted (accepted: %v)", c.TCB.Status, ref.TCBAccepted())
		case !c.TCB.Evaluated && !c.Simulated:
			deny("acceptedTCB", "the TCB status was not evaluated (vendor collateral is required)")
		}
		if !slices.Contains(ref.AcceptedAdvisories, "*") {
			for _, a := range c.TCB.Advisories {
				if !slices.Contains(ref.AcceptedAdvisories, a) {
					deny("acceptedAdvisories", "the platform has advisory %s open and the workload does not accept it", a)
				}
			}
		}
	}
	if len(vs) > 0 {
		return nil, fmt.Errorf("%w for workload %q: %w", ErrDenied, w.Name, errors.Join(vs...))
	}
	return &Verdict{Workload: w.Name, Model: w.Model, TEE: c.TEE, Simulated: c.Simulated, Status: "affirming"}, nil
}

// hostDataOf returns the claims' host data, zero-extended to n bytes when
// the claim is shorter (an all-zero CONFIGID is reported empty).
func hostDataOf(c *attest.Claims, n int) []byte {
	if len(c.HostData) >= n {
		return c.HostData
	}
	out := make([]byte, n)
	copy(out, c.HostData)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "not reported"
	}
	return s
}
