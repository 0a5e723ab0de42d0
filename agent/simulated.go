package agent

import (
	"fmt"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/manifest"
)

// SimulatedFor returns a SIMULATED TEE (attest/simtee) that measures
// exactly what the manifest declares for w: a *simtee.SNP or *simtee.SGX,
// non-debug, at the lowest accepted SVN. It is for demonstrations and
// tests; simulated evidence is only accepted under allowSimulated.
func SimulatedFor(w manifest.Workload) (attest.Attester, error) {
	ref := w.Reference
	if len(ref.Measurements) == 0 {
		return nil, fmt.Errorf("workload %s pins no measurement to simulate", w.Name)
	}
	switch w.TEE {
	case attest.SEVSNP:
		t := &simtee.SNP{}
		copy(t.Measurement[:], ref.Measurements[0])
		copy(t.HostData[:], ref.HostData)
		if ref.MinSVN != nil {
			t.GuestSVN = *ref.MinSVN
		}
		return t, nil
	case attest.SGX:
		t := &simtee.SGX{}
		copy(t.MREnclave[:], ref.Measurements[0])
		copy(t.MRSigner[:], ref.Signer)
		copy(t.ConfigID[:], ref.HostData)
		if ref.ProductID != nil {
			t.ProductID = *ref.ProductID
		}
		if ref.MinSVN != nil {
			t.SVN = uint16(*ref.MinSVN)
		}
		return t, nil
	}
	return nil, fmt.Errorf("workload %s: no simulated %s TEE", w.Name, w.TEE)
}
