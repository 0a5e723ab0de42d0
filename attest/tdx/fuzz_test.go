package tdx_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/tdx"
)

// quoteSeeds are every quote of testdata, as published (padded or not),
// trimmed, and a simulated one.
func quoteSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, rq := range realQuotes {
		b := readTestdata(f, rq.file)
		seeds = append(seeds, b, b[:len(b)-rq.padding])
	}
	seeds = append(seeds, readTestdata(f, "gotdxguest-spr-quote_v4.dat"), sprQuote(f))
	ev, err := simtee.TDX{Debug: true}.Attest(context.Background(), [64]byte{1, 2, 3})
	if err != nil {
		f.Fatal(err)
	}
	return append(seeds, ev.Data)
}

// FuzzParseQuote: the parser never panics, refuses only with ErrMalformed,
// and what it accepts marshals back to the input without its padding and
// parses again to the same quote.
func FuzzParseQuote(f *testing.F) {
	for _, s := range quoteSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := tdx.ParseQuote(b)
		if err != nil {
			if !errors.Is(err, attest.ErrMalformed) || q != nil {
				t.Fatalf("refusal %v does not wrap ErrMalformed", err)
			}
			return
		}
		m, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m, b[:len(b)-q.Padding]) {
			t.Fatal("Marshal does not give the input back")
		}
		q2, err := tdx.ParseQuote(m)
		if err != nil || q2.Padding != 0 || q2.Body != q.Body || q2.Header != q.Header || q2.Signature.QEReport != q.Signature.QEReport {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

// FuzzParseTDReport: the TDREPORT parser never panics and refuses only
// with ErrMalformed.
func FuzzParseTDReport(f *testing.F) {
	f.Add(simtee.TDX{}.Report([64]byte{1}))
	if b, err := os.ReadFile(filepath.Join("..", "azure", "testdata", "tdx-hcl-report.bin")); err == nil && len(b) >= 32+tdx.TDReportSize {
		f.Add(b[32 : 32+tdx.TDReportSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := tdx.ParseTDReport(b)
		if err != nil {
			if !errors.Is(err, attest.ErrMalformed) || r != nil {
				t.Fatalf("refusal %v does not wrap ErrMalformed", err)
			}
			return
		}
		if r.ReportData != r.Body.ReportData {
			t.Fatal("report data")
		}
	})
}
