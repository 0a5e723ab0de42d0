package simtee

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/sgx"
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

// tdxQuoteWithTCB quotes a TDREPORT of the simulated TD whose TEE_TCB_SVN
// says svn: a platform other than the simulated one, for the collateral's
// other levels.
func tdxQuoteWithTCB(t *testing.T, svn [16]byte) *attest.Evidence {
	t.Helper()
	r := TDX{MRTD: [48]byte{1}}.Report([64]byte{2})
	copy(r[256+8:256+24], svn[:])
	ev, err := TDX{}.Quote(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestTDXCollateral checks the simulated TDX collateral: the long-lived
// source evaluates the simulated TD UpToDate with revocation checked, its
// other levels judge other platforms, a realistic 30-day set from
// TDXCollateral has Intel's window, and neither vouches for anything but
// simulated TDs.
func TestTDXCollateral(t *testing.T) {
	ctx := context.Background()
	ev, err := TDX{MRTD: [48]byte{1}}.Attest(ctx, [64]byte{2})
	if err != nil {
		t.Fatal(err)
	}
	v := tdx.NewVerifier(tdx.Config{Simulated: []*x509.Certificate{SGXRoot()}, SimulatedCollateral: TDXCollateralSource()})
	for _, at := range []time.Time{tdxNow, sgxSimChainStart, sgxSimChainEnd} {
		c, err := v.Verify(ctx, ev, attest.Options{Now: at, AllowSimulated: true})
		if err != nil {
			t.Fatalf("at %s: %v", at, err)
		}
		if !c.TCB.Evaluated || c.TCB.Status != "UpToDate" || c.TCB.Advisories != nil || !c.RevocationChecked || !c.Simulated ||
			c.Platform["tdx_module_tcb_status"] != "UpToDate" || c.Platform["qe_tcb_status"] != "UpToDate" {
			t.Errorf("at %s: tcb %+v revocation %v platform %v", at, c.TCB, c.RevocationChecked, c.Platform)
		}
	}
	if _, err := v.Verify(ctx, ev, attest.Options{Now: tdxNow}); !errors.Is(err, attest.ErrSimulated) {
		t.Errorf("without AllowSimulated: %v", err)
	}

	// Other platforms against the same collateral.
	for _, tt := range []struct {
		name string
		svn  [16]byte
		want string // status, or the error's text
		err  error
	}{
		{name: "module SVN 3: TDX_01 says OutOfDate", svn: [16]byte{3, 1, 2}, want: "OutOfDate"},
		{name: "TDX component 2 at the older level", svn: [16]byte{5, 1, 1}, want: "OutOfDate"},
		{name: "TDX component 2 below every level", svn: [16]byte{5, 1, 0}, err: dcap.ErrNoMatchingTCBLevel, want: "failed TCB status check"},
		{name: "module SVN below every module level", svn: [16]byte{2, 1, 2}, err: dcap.ErrNoMatchingTCBLevel, want: "TDX module TDX_01 SVN 2"},
		{name: "module major version 2 unknown", svn: [16]byte{5, 2, 2}, err: attest.ErrSignature, want: "no identity TDX_02"},
	} {
		c, err := v.Verify(ctx, tdxQuoteWithTCB(t, tt.svn), attest.Options{Now: tdxNow, AllowSimulated: true})
		switch {
		case tt.err != nil && (!errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: err = %v, want %v about %q", tt.name, err, tt.err, tt.want)
		case tt.err == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err == nil && (c.TCB.Status != tt.want || !slices.Equal(c.TCB.Advisories, []string{SGXSimulatedAdvisory})):
			t.Errorf("%s: tcb %+v, want %s with %s", tt.name, c.TCB, tt.want, SGXSimulatedAdvisory)
		}
	}

	issued := time.Date(2026, 3, 1, 12, 30, 15, 500, time.UTC)
	col, err := TDXCollateral(issued)
	if err != nil {
		t.Fatal(err)
	}
	tcb, err := dcap.ParseTCBInfo(col.TCBInfo)
	if err != nil {
		t.Fatal(err)
	}
	qe, err := dcap.ParseQEIdentity(col.QEIdentity)
	if err != nil {
		t.Fatal(err)
	}
	if tcb.ID != dcap.TCBInfoTDX || !tcb.IssueDate.Equal(issued.Truncate(time.Second)) || !tcb.NextUpdate.Equal(tcb.IssueDate.AddDate(0, 0, 30)) ||
		tcb.FMSPC != sgxSimFMSPC || len(tcb.TDXModuleIdentities) != 1 || tcb.TDXModuleIdentities[0].ID != "TDX_01" ||
		qe.ID != dcap.QEIdentityTDX || qe.MRSigner != tdxSimQEMRSigner || qe.ISVProdID != tdxSimQEProdID {
		t.Errorf("TCB info %+v, QE identity %+v", tcb, qe)
	}
	v30 := tdx.NewVerifier(tdx.Config{Simulated: []*x509.Certificate{SGXRoot()}, SimulatedCollateral: dcap.NewStaticSource(col)})
	for _, tt := range []struct {
		at   time.Time
		want string // "" for UpToDate
	}{
		{issued, ""},
		{issued.AddDate(0, 0, 30).Add(-time.Second), ""},
		{issued.AddDate(0, 0, 30).Add(time.Second), "tcbInfo has expired"},
		{issued.Add(-time.Second), "tcbInfo is not yet valid"},
	} {
		c, err := v30.Verify(ctx, ev, attest.Options{Now: tt.at, AllowSimulated: true})
		switch {
		case tt.want == "" && (err != nil || c.TCB.Status != "UpToDate"):
			t.Errorf("at %s: claims %+v, err %v", tt.at, c, err)
		case tt.want != "" && (!errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("at %s: err = %v, want ErrCollateral about %q", tt.at, err, tt.want)
		}
	}

	// The real-collateral slot never serves a simulated TD, and TDX
	// collateral does not vouch for an SGX enclave.
	real := tdx.NewVerifier(tdx.Config{Simulated: []*x509.Certificate{SGXRoot()}, Collateral: TDXCollateralSource()})
	if _, err := real.Verify(ctx, ev, attest.Options{Now: tdxNow, AllowSimulated: true}); !errors.Is(err, dcap.ErrCollateral) {
		t.Errorf("simulated TD with only Config.Collateral: err = %v, want ErrCollateral", err)
	}
	sv := sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{SGXRoot()}, SimulatedCollateral: TDXCollateralSource()})
	sev := &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: sgxAttest(t, SGX{}, [64]byte{})}
	if _, err := sv.Verify(ctx, sev, attest.Options{Now: tdxNow, AllowSimulated: true}); !errors.Is(err, dcap.ErrCollateral) {
		t.Errorf("TDX collateral for an SGX enclave: err = %v, want ErrCollateral", err)
	}
}
