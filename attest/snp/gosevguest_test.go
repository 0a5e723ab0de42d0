package snp_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

// TestAgreesWithGoSevGuest checks that this verifier and go-sev-guest's
// verify.SnpAttestation (offline, the same roots) agree on accepting and
// refusing. The production code does not import package verify: it
// registers a global command-line flag.
func TestAgreesWithGoSevGuest(t *testing.T) {
	sim, err := simtee.SNP{}.Attest(context.Background(), [64]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	simRoots := map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}}
	real := &attest.Evidence{
		Format: attest.FormatSNPReport,
		Data:   readTestdata(t, "gosevguest-milan-attestation.bin"),
		Certs:  [][]byte{readTestdata(t, "gosevguest-milan-vcek.der")},
	}
	tampered := func(ev *attest.Evidence, off int) *attest.Evidence {
		c := *ev
		c.Data = bytes.Clone(ev.Data)
		c.Data[off] ^= 1
		return &c
	}
	for _, tc := range []struct {
		name  string
		ev    *attest.Evidence
		roots map[string][]*trust.AMDRootCerts // nil: go-sev-guest's embedded AMD roots
		at    time.Time
		ok    bool
	}{
		{"simulated", sim, simRoots, now, true},
		{"simulated, AMD roots", sim, nil, now, false},
		{"simulated, measurement flipped", tampered(sim, 0x90), simRoots, now, false},
		{"simulated, expired", sim, simRoots, time.Date(2050, 1, 2, 0, 0, 0, 0, time.UTC), false},
		{"real", real, nil, now, true},
		{"real, report data flipped", tampered(real, 0x50), nil, now, false},
		{"real, expired", real, nil, time.Date(2029, 9, 25, 0, 0, 0, 0, time.UTC), false},
		{"real, simulated roots", real, simRoots, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// go-sev-guest offline checks no CRL; neither do we here.
			v := snp.NewVerifier(snp.Config{Roots: tc.roots, AllowMissingCRL: true})
			_, ours := v.Verify(context.Background(), tc.ev, attest.Options{Now: tc.at, AllowSimulated: true})
			theirs := goSevGuest(tc.ev, tc.roots, tc.at)
			if (ours == nil) != tc.ok || (theirs == nil) != tc.ok {
				t.Fatalf("want ok=%v; trustbound: %v; go-sev-guest: %v", tc.ok, ours, theirs)
			}
		})
	}
}

func goSevGuest(ev *attest.Evidence, roots map[string][]*trust.AMDRootCerts, at time.Time) error {
	r, err := abi.ReportToProto(ev.Data)
	if err != nil {
		return err
	}
	return verify.SnpAttestation(&spb.Attestation{
		Report:           r,
		CertificateChain: &spb.CertificateChain{VcekCert: ev.Certs[0]},
	}, &verify.Options{DisableCertFetching: true, Now: at, TrustedRoots: roots})
}
