package azure_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/simtee"
)

// Minimising inputs of kilobytes takes the default minutes, so bound it:
//
//	go test -run=NONE -fuzz=FuzzParseHCLReport -fuzztime=1m -fuzzminimizetime=100x ./attest/azure/

var evidenceFiles = []string{"evidence-v0.json", "evidence-v1.json", "evidence-v2.json", "evidence-genoa.json"}

// realEvidence returns the parsed real vectors and a simulated one.
func realEvidence(f *testing.F) []*azure.Evidence {
	f.Helper()
	var es []*azure.Evidence
	for _, rv := range realVectors {
		e, err := azure.ParseEvidence(rv.bytes(f))
		if err != nil {
			f.Fatal(err)
		}
		es = append(es, e)
	}
	sim, err := simtee.AzureSNP{}.Attest(context.Background(), [64]byte{1})
	if err != nil {
		f.Fatal(err)
	}
	e, err := azure.ParseEvidence(sim.Data)
	if err != nil {
		f.Fatal(err)
	}
	return append(es, e)
}

func wantMalformed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, attest.ErrMalformed) {
		t.Fatalf("error does not wrap ErrMalformed: %v", err)
	}
}

// FuzzParseEvidence: never panics, refuses with ErrMalformed, and whatever
// it accepts re-encodes (in its schema) to JSON that parses to the same.
func FuzzParseEvidence(f *testing.F) {
	for _, name := range evidenceFiles {
		f.Add(readTestdata(f, name))
	}
	sim, err := simtee.AzureSNP{}.Attest(context.Background(), [64]byte{1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sim.Data)
	f.Add([]byte(`{"version":1,"tpm_quote":{"signature":"00","message":"00","pcrs":["` + string(bytes.Repeat([]byte("00"), 32)) + `"]},"hcl_report":"AA==","vcek":"AA=="}`))
	f.Add([]byte(`{"version":2,"tpm_quote":{"signature":"00","message":"00","pcrs":["00"]},"hcl_report":"AA==","vcek":"AA=="}`)) // refused by the bounds
	f.Add([]byte(`{"quote":{"signature":[1],"message":[1],"pcrs":[[1]]},"report":[1],"vcek":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"}`))
	f.Add([]byte(`{"quote":{"signature":[1],"message":[1],"pcrs":[[1]]},"report":[1],"vcek":""}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := azure.ParseEvidence(b)
		if err != nil {
			if e != nil {
				t.Fatalf("evidence and error %v", err)
			}
			wantMalformed(t, err)
			return
		}
		if e.Version < 0 || e.Version > 2 || len(e.Quote.PCRs) == 0 || len(e.Quote.PCRs) > azure.PCRCount {
			t.Fatalf("accepted version %d with %d PCRs", e.Version, len(e.Quote.PCRs))
		}
		again, err := azure.ParseEvidence(encode(t, e.Version, e.HCLReport, e.VCEK, e.Quote.Message, e.Quote.Signature, e.Quote.PCRs))
		if err != nil {
			t.Fatalf("re-encoded evidence refused: %v", err)
		}
		if again.Version != e.Version || !bytes.Equal(again.HCLReport, e.HCLReport) || !bytes.Equal(again.VCEK, e.VCEK) ||
			!bytes.Equal(again.Quote.Message, e.Quote.Message) || !bytes.Equal(again.Quote.Signature, e.Quote.Signature) ||
			len(again.Quote.PCRs) != len(e.Quote.PCRs) {
			t.Fatal("evidence does not round-trip")
		}
	})
}

// FuzzParseHCLReport: never panics, refuses with ErrMalformed, and accepts
// only reports whose sizes agree: report_size bytes, or the NV index size
// with zeros after report_size.
func FuzzParseHCLReport(f *testing.F) {
	for _, e := range realEvidence(f) {
		f.Add(e.HCLReport)
		size := binary.LittleEndian.Uint32(e.HCLReport[8:])
		f.Add(e.HCLReport[:size])
		f.Add(append(bytes.Clone(e.HCLReport), 0))
	}
	f.Add(readTestdata(f, "tdx-hcl-report.bin"))
	f.Add([]byte("HCLA"))
	f.Add(make([]byte, 1236))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := azure.ParseHCLReport(b)
		if err != nil {
			if r != nil {
				t.Fatalf("report and error %v", err)
			}
			wantMalformed(t, err)
			return
		}
		size := 1236 + len(r.VarData)
		if len(b) != size && len(b) != azure.NVReportSize {
			t.Fatalf("accepted %d bytes for a report of %d", len(b), size)
		}
		if !bytes.Equal(b[1236:size], r.VarData) || binary.LittleEndian.Uint32(b[8:]) != uint32(size) {
			t.Fatal("var data is not where the sizes say")
		}
		switch r.ReportType {
		case azure.ReportTypeSNP:
			if len(r.HardwareReport) != azure.HardwareReportSize {
				t.Fatalf("SNP report of %d bytes", len(r.HardwareReport))
			}
		case azure.ReportTypeTDX:
			if len(r.HardwareReport) != 1024 {
				t.Fatalf("TDREPORT of %d bytes", len(r.HardwareReport))
			}
		default:
			t.Fatalf("accepted report type %d", r.ReportType)
		}
		rd := r.ReportData()
		if bytes.Equal(rd[:], make([]byte, 64)) {
			t.Fatal("no binding")
		}
	})
}

// FuzzParseQuote: never panics, refuses with ErrMalformed, and whatever it
// accepts is canonical TPM encoding of a quote over one SHA-256 selection.
func FuzzParseQuote(f *testing.F) {
	for _, e := range realEvidence(f) {
		f.Add(e.Quote.Message)
		f.Add(append(bytes.Clone(e.Quote.Message), 0))
		f.Add(e.Quote.Message[:len(e.Quote.Message)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := azure.ParseQuote(b)
		if err != nil {
			if q != nil {
				t.Fatalf("quote and error %v", err)
			}
			wantMalformed(t, err)
			return
		}
		if !bytes.Equal(tpm2.Marshal(q.Attest), b) {
			t.Fatal("accepted quote does not round-trip")
		}
		if q.Attest.Magic != tpm2.TPMGeneratedValue || q.Attest.Type != tpm2.TPMSTAttestQuote || len(q.Selected) == 0 || len(q.Selected) > azure.PCRCount {
			t.Fatalf("accepted magic %#x type %#x with %d PCRs", q.Attest.Magic, q.Attest.Type, len(q.Selected))
		}
		if _, err := q.CheckPCRs(make([][]byte, len(q.Selected))); !errors.Is(err, attest.ErrMalformed) {
			t.Fatalf("PCR values of 0 bytes: %v", err)
		}
	})
}

// FuzzParseRuntimeClaims: never panics, refuses with ErrMalformed; an AK it
// returns is a usable RSA key.
func FuzzParseRuntimeClaims(f *testing.F) {
	for _, e := range realEvidence(f) {
		r, err := azure.ParseHCLReport(e.HCLReport)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.VarData)
	}
	f.Add([]byte(`{"keys":[],"vm-configuration":{}}`))
	f.Add([]byte(`{"keys":[{"kid":"HCLAkPub","key_ops":["sign"],"kty":"RSA","e":"AQAB","n":"AQ"}],"vm-configuration":{},"user-data":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := azure.ParseRuntimeClaims(b)
		if err != nil {
			if rc != nil {
				t.Fatalf("claims and error %v", err)
			}
			wantMalformed(t, err)
			return
		}
		if rc.VMConfiguration == nil {
			t.Fatal("no vm-configuration")
		}
		ak, err := rc.AKPub()
		if err != nil {
			wantMalformed(t, err)
			return
		}
		if ak.N.BitLen() < 2048 || ak.E < 3 {
			t.Fatalf("AK of %d bits, exponent %d", ak.N.BitLen(), ak.E)
		}
	})
}
