package snp_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

// FuzzParseReport: ParseReport never panics, refuses with
// attest.ErrMalformed, and whatever it accepts is exactly one report that
// encodes back to the same bytes. Minimising a 1184-byte input takes the
// default minutes, so bound it:
//
//	go test -run=NONE -fuzz=FuzzParseReport -fuzztime=1m -fuzzminimizetime=100x ./attest/snp/
func FuzzParseReport(f *testing.F) {
	sim, err := simtee.SNP{Debug: true}.Attest(context.Background(), [64]byte{1})
	if err != nil {
		f.Fatal(err)
	}
	real := readTestdata(f, "gosevguest-milan-attestation.bin")
	f.Add(sim.Data)
	f.Add(real)
	f.Add(readTestdata(f, "trustee-milan-vlek-report.bin"))
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0})
	f.Add(make([]byte, abi.ReportSize-1))
	f.Add(make([]byte, abi.ReportSize))
	f.Add(append(bytes.Clone(real), 0))
	f.Add(append(bytes.Clone(real), real...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := snp.ParseReport(b)
		if err != nil {
			if r != nil {
				t.Fatalf("report and error %v", err)
			}
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if len(b) != abi.ReportSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		back, err := abi.ReportToAbiBytes(r)
		if err != nil {
			t.Fatalf("accepted report does not encode: %v", err)
		}
		if !bytes.Equal(back, b) {
			t.Fatalf("accepted report does not round-trip")
		}
	})
}

// FuzzEvidenceFromConfigFS: a configfs-tsm capture never panics, is refused
// with attest.ErrMalformed, or gives the report and at most the endorsement
// certificate, ASK and ARK, each a non-empty piece of auxblob.
//
//	go test -run=NONE -fuzz=FuzzEvidenceFromConfigFS -fuzztime=1m -fuzzminimizetime=100x ./attest/snp/
func FuzzEvidenceFromConfigFS(f *testing.F) {
	sim, err := simtee.SNP{}.Attest(context.Background(), [64]byte{2})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sim.Data, certTable(&spb.CertificateChain{VcekCert: sim.Certs[0], AskCert: sim.Certs[1], ArkCert: sim.Certs[2]}, nil))
	f.Add(sim.Data, []byte{})
	real, vcek := readTestdata(f, "gosevguest-milan-attestation.bin"), readTestdata(f, "gosevguest-milan-vcek.der")
	f.Add(real, certTable(&spb.CertificateChain{VcekCert: vcek}, nil))
	vlekReport, vlek := readTestdata(f, "trustee-milan-vlek-report.bin"), readTestdata(f, "trustee-milan-vlek.der")
	f.Add(vlekReport, certTable(&spb.CertificateChain{VlekCert: vlek, Extras: map[string][]byte{abi.ExtraPlatformInfoGUID: make([]byte, 8)}}, nil))
	f.Add(readTestdata(f, "trustee-milan-report.bin"), cat(row(abi.VcekGUID, 48, 3), make([]byte, 24), []byte{1, 2, 3}))
	f.Fuzz(func(t *testing.T, outblob, auxblob []byte) {
		ev, err := snp.EvidenceFromConfigFS(outblob, auxblob)
		if err != nil {
			if ev != nil || !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("evidence %v with error %v", ev != nil, err)
			}
			return
		}
		if ev.Format != attest.FormatSNPReport || !bytes.Equal(ev.Data, outblob) || len(ev.Certs) > 3 {
			t.Fatalf("evidence %q, %d bytes, %d certificates", ev.Format, len(ev.Data), len(ev.Certs))
		}
		for _, c := range ev.Certs {
			if len(c) == 0 || !bytes.Contains(auxblob, c) {
				t.Fatalf("certificate of %d bytes not from auxblob", len(c))
			}
		}
	})
}
