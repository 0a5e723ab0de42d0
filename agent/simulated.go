package agent

import (
	"fmt"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/manifest"
)

// SimulatedFor returns a SIMULATED TEE (attest/simtee) that measures
// exactly what the manifest declares for w: a *simtee.SNP, *simtee.SGX or
// *simtee.TDX (MRTD, MRCONFIGID, the pinned RTMRs and owner registers),
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
	case attest.TDX:
		t := &simtee.TDX{}
		copy(t.MRTD[:], ref.Measurements[0])
		copy(t.MRConfigID[:], ref.HostData)
		if r := ref.TDX; r != nil {
			for i, v := range []attest.Hex{r.RTMR0, r.RTMR1, r.RTMR2, r.RTMR3} {
				copy(t.RTMRs[i][:], v)
			}
			copy(t.MROwner[:], r.MROwner)
			copy(t.MROwnerConfig[:], r.MROwnerConfig)
		}
		return t, nil
	}
	return nil, fmt.Errorf("workload %s: no simulated %s TEE", w.Name, w.TEE)
}
