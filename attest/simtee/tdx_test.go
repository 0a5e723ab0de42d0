package simtee

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/tdx"
)

var tdxNow = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func tdxVerifier() *tdx.Verifier {
	return tdx.NewVerifier(tdx.Config{Simulated: []*x509.Certificate{SGXRoot()}})
}

func TestTDXTEE(t *testing.T) {
	for _, a := range []attest.Attester{TDX{}, &TDX{}} {
		if a.TEE() != attest.TDX {
			t.Errorf("TEE() = %q", a.TEE())
		}
	}
}

func TestTDXAttestVerifies(t *testing.T) {
	td := TDX{Debug: true}
	for i := range td.MRTD {
		td.MRTD[i], td.MRConfigID[i], td.MROwner[i], td.MROwnerConfig[i] = byte(i), byte(i+1), byte(i+2), byte(i+3)
		for r := range td.RTMRs {
			td.RTMRs[r][i] = byte(16*r + i)
		}
	}
	rd := attest.ReportDataFor([]byte("runtime data"))
	for _, debug := range []bool{true, false} {
		td.Debug = debug
		ev, err := td.Attest(context.Background(), rd)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Format != attest.FormatTDXQuote || ev.Certs != nil || ev.RuntimeData != nil {
			t.Fatalf("evidence %+v", ev)
		}
		if _, err := tdxVerifier().Verify(context.Background(), ev, attest.Options{Now: tdxNow, SkipCollateral: true}); !errors.Is(err, attest.ErrSimulated) {
			t.Fatalf("without AllowSimulated: %v", err)
		}
		c, err := tdxVerifier().Verify(context.Background(), ev, attest.Options{Now: tdxNow, SkipCollateral: true, AllowSimulated: true})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Simulated || c.TEE != attest.TDX || c.Debug != debug || !bytes.Equal(c.Measurement, td.MRTD[:]) ||
			!bytes.Equal(c.HostData, td.MRConfigID[:]) || !bytes.Equal(c.ReportData, rd[:]) {
			t.Errorf("claims %+v", c)
		}
		if err := attest.BindsRuntimeData(c.ReportData, []byte("runtime data")); err != nil {
			t.Error(err)
		}
		q, err := tdx.ParseQuote(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		b := &q.Body
		if b.MROwner != td.MROwner || b.MROwnerConfig != td.MROwnerConfig || b.RTMR != td.RTMRs || b.TEETCBSVN != tdxSimTEETCBSVN ||
			b.MRSEAM != tdxSimMRSEAM || b.XFAM != tdxSimXFAM || q.Header.Version != 4 || q.Padding != 0 {
			t.Errorf("quote %+v", q)
		}
		if b.Attributes()&tdx.TDAttrSEPTVEDisable == 0 {
			t.Error("SEPT_VE_DISABLE not set")
		}
		qe := &q.Signature.QEReport
		if qe.MRSigner != tdxSimQEMRSigner || qe.ISVProdID != tdxSimQEProdID || qe.ISVSVN != tdxSimQESVN {
			t.Errorf("QE report %+v", qe)
		}
	}
}

func TestTDXReportMatchesQuote(t *testing.T) {
	td := TDX{MRTD: [48]byte{9}, RTMRs: [4][48]byte{{1}, {2}, {3}, {4}}}
	report := td.Report([64]byte{5})
	r, err := tdx.ParseTDReport(report)
	if err != nil {
		t.Fatal(err)
	}
	if r.ReportData != [64]byte{5} || r.Body.MRTD != td.MRTD || r.Body.RTMR != td.RTMRs {
		t.Errorf("TDREPORT %+v", r)
	}
	ev, err := td.Quote(context.Background(), report)
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdx.ParseQuote(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.MatchesQuote(q); err != nil {
		t.Error(err)
	}
	other, err := tdx.ParseTDReport(TDX{MRTD: [48]byte{8}}.Report([64]byte{5}))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.MatchesQuote(q); !errors.Is(err, attest.ErrBinding) {
		t.Errorf("another TD's report matches: %v", err)
	}
}

func TestTDXQuoteRefuses(t *testing.T) {
	ctx := context.Background()
	for name, r := range map[string][]byte{
		"empty":    nil,
		"short":    make([]byte, 1023),
		"not TDX":  make([]byte, 1024),
		"SNP-size": make([]byte, 1184),
	} {
		if _, err := (TDX{}).Quote(ctx, r); err == nil {
			t.Errorf("%s: quoted", name)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (TDX{}).Attest(cctx, [64]byte{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
