package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"

	"github.com/trustbound/trustbound/attest"
)

// UnmarshalJSON reads a Reference, accepting "measurement": "<hex>" as
// shorthand for a one-element "measurements" list; setting both is an
// error. Unknown fields are refused.
func (r *Reference) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	type plain Reference // without methods, so no recursion
	var aux struct {
		plain
		Measurement *attest.Hex `json:"measurement"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if aux.Measurement != nil {
		if aux.Measurements != nil {
			return errors.New(`reference: ` + exclusiveMsg("measurements", measurementKey))
		}
		aux.Measurements = []attest.Hex{*aux.Measurement}
	}
	*r = Reference(aux.plain)
	return nil
}

// TCBAccepted returns the vendor TCB statuses the workload accepts:
// AcceptedTCB, or ["UpToDate"] when it is empty. The slice is the
// caller's.
func (r Reference) TCBAccepted() []string {
	if len(r.AcceptedTCB) == 0 {
		return []string{TCBUpToDate}
	}
	return slices.Clone(r.AcceptedTCB)
}

// Workload returns the workload called name.
func (m *Manifest) Workload(name string) (*Workload, bool) {
	for i := range m.Workloads {
		if m.Workloads[i].Name == name {
			return &m.Workloads[i], true
		}
	}
	return nil, false
}

// SecretsFor returns, in manifest order, the secrets granted to the
// workload called workload.
func (m *Manifest) SecretsFor(workload string) []Secret {
	var out []Secret
	for _, s := range m.Secrets {
		if slices.Contains(s.GrantedTo, workload) {
			out = append(out, s)
		}
	}
	return out
}
