package snp_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-sev-guest/abi"

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
