package dcap_test

import (
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/dcap/dcaptest"
)

// relaunchWorld is a fake Intel TDX platform family for the TD relaunch
// check: two TCB levels ("latest": SGX components 5…, TDX components
// 4 0 3; "earliest": SGX components 4…, TDX components 2 0 2, OutOfDate),
// TDX_01 (ISVSVN 4 UpToDate, 2 OutOfDate) and TDX_03 (ISVSVN 6 UpToDate,
// 1 OutOfDate) module identities and a TD QE identity (ISVSVN 4 UpToDate,
// 2 OutOfDate), as in the cases of Intel's QuoteVerifierTcbStatusUT.
type relaunchWorld struct {
	pki *dcaptest.PKI
	tcb *dcap.TCBInfo
	qe  *dcap.QEIdentity
}

var (
	relaunchAt     = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	relaunchFMSPC  = [6]byte{0x00, 0xc0, 0xff, 0xee, 0x00, 0x01}
	relaunchLatest = dcap.PCKTCB{CompSVN: [16]uint8{5, 5, 5, 5}, PCESVN: 13}
	relaunchOld    = dcap.PCKTCB{CompSVN: [16]uint8{4, 4, 4, 4}, PCESVN: 13}
	relaunchQE     = [32]byte{0x7d}
)

func newRelaunchWorld(t *testing.T) *relaunchWorld {
	t.Helper()
	pki, err := dcaptest.NewPKI("trustbound TEST", dcap.PlatformCA, relaunchAt.AddDate(-1, 0, 0), relaunchAt.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	issue, next := relaunchAt.Add(-time.Hour), relaunchAt.AddDate(0, 0, 29)
	date := relaunchAt.AddDate(0, -2, 0)
	module := func(id string, up, old uint16) dcap.TDXModuleIdentity {
		return dcap.TDXModuleIdentity{ID: id, TDXModule: dcap.TDXModule{AttributesMask: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
			TCBLevels: []dcap.EnclaveTCBLevel{
				{ISVSVN: up, TCBDate: date, Status: dcap.UpToDate},
				{ISVSVN: old, TCBDate: date.AddDate(-1, 0, 0), Status: dcap.OutOfDate, AdvisoryIDs: []string{"SA-MODULE"}},
			}}
	}
	return &relaunchWorld{
		pki: pki,
		tcb: &dcap.TCBInfo{
			ID: dcap.TCBInfoTDX, Version: dcap.TCBInfoVersion, IssueDate: issue, NextUpdate: next,
			FMSPC: relaunchFMSPC, TCBEvaluationDataNumber: 17,
			TDXModule:           &dcap.TDXModule{AttributesMask: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
			TDXModuleIdentities: []dcap.TDXModuleIdentity{module("TDX_01", 4, 2), module("TDX_03", 6, 1)},
			TCBLevels: []dcap.TCBLevel{
				{SGXComponents: relaunchLatest.CompSVN, PCESVN: 13, TDXComponents: [16]uint8{4, 0, 3}, HasTDX: true, TCBDate: date, Status: dcap.UpToDate},
				{SGXComponents: relaunchOld.CompSVN, PCESVN: 13, TDXComponents: [16]uint8{2, 0, 2}, HasTDX: true, TCBDate: date.AddDate(-1, 0, 0),
					Status: dcap.OutOfDate, AdvisoryIDs: []string{"SA-PLATFORM"}},
			},
		},
		qe: &dcap.QEIdentity{
			ID: dcap.QEIdentityTDX, Version: dcap.QEIdentityVersion, IssueDate: issue, NextUpdate: next,
			TCBEvaluationDataNumber: 17, MRSigner: relaunchQE, ISVProdID: 2,
			TCBLevels: []dcap.EnclaveTCBLevel{
				{ISVSVN: 4, TCBDate: date, Status: dcap.UpToDate},
				{ISVSVN: 2, TCBDate: date.AddDate(-1, 0, 0), Status: dcap.OutOfDate, AdvisoryIDs: []string{"SA-QE"}},
			},
		},
	}
}

// evaluate evaluates a TD whose PCK certificate says pck, whose QE has
// ISVSVN qeSVN, with TEE_TCB_SVN svn and (for a TD report 1.5 body, when
// not nil) TEE_TCB_SVN2 svn2.
func (w *relaunchWorld) evaluate(t *testing.T, pck dcap.PCKTCB, qeSVN uint16, svn [16]byte, svn2 *[16]byte) (*dcap.Result, error) {
	t.Helper()
	leaf, _, err := w.pki.PCK(&dcap.PCKExtensions{TCB: pck, FMSPC: relaunchFMSPC, PlatformInstanceID: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.pki.Collateral(w.tcb, w.qe, relaunchAt.Add(-time.Hour), relaunchAt.Add(24*time.Hour), dcaptest.Revoked{})
	if err != nil {
		t.Fatal(err)
	}
	return dcap.Evaluate(&dcap.Input{
		Kind: dcap.TDX, Collateral: c, Now: relaunchAt,
		PCKChain: []*x509.Certificate{leaf, w.pki.PCKCA, w.pki.Root},
		QE:       dcap.QEReport{MRSigner: relaunchQE, ISVProdID: 2, ISVSVN: qeSVN},
		TDX:      &dcap.TDXTCB{TEETCBSVN: svn, TEETCBSVN2: svn2},
	})
}

func svn2(b ...byte) *[16]byte {
	var s [16]byte
	copy(s[:], b)
	return &s
}

// TestTDRelaunch checks Intel's TD relaunch check (QVL checkForRelaunch):
// only for TD report 1.5 bodies, only when the TD's module is OutOfDate,
// the SGX level and QE are current, and the module the platform runs now
// (TEE_TCB_SVN2) is at the latest level.
func TestTDRelaunch(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*relaunchWorld)
		pck    dcap.PCKTCB
		qeSVN  uint16
		svn    [16]byte
		svn2   *[16]byte
		want   dcap.Status
		advice []string
		err    error
		msg    string
	}{
		{name: "TD 1.0 body: no relaunch check", svn: [16]byte{2, 1, 3}, want: dcap.OutOfDate, advice: []string{"SA-MODULE"}},
		{name: "module 1.x SVN 2 launched, SVN 4 running", svn: [16]byte{2, 1, 3}, svn2: svn2(4, 1, 3), want: dcap.TDRelaunchAdvised, advice: []string{"SA-MODULE"}},
		{name: "running module above the latest", svn: [16]byte{2, 1, 3}, svn2: svn2(9, 1, 9), want: dcap.TDRelaunchAdvised, advice: []string{"SA-MODULE"}},
		{name: "running module 3.x at its latest", svn: [16]byte{2, 1, 3}, svn2: svn2(6, 3, 3), want: dcap.TDRelaunchAdvised, advice: []string{"SA-MODULE"}},
		{name: "running module 3.x below its latest", svn: [16]byte{2, 1, 3}, svn2: svn2(5, 3, 3), want: dcap.OutOfDate},
		{name: "running module below the latest", svn: [16]byte{2, 1, 3}, svn2: svn2(3, 1, 3), want: dcap.OutOfDate},
		{name: "running TDX component 2 below the latest level", svn: [16]byte{2, 1, 3}, svn2: svn2(4, 1, 2), want: dcap.OutOfDate},
		{name: "running TD 1.0-style module version 0 at the latest level", svn: [16]byte{2, 1, 3}, svn2: svn2(4, 0, 3), want: dcap.TDRelaunchAdvised},
		{name: "running module version 0 below the latest level's component 0", svn: [16]byte{2, 1, 3}, svn2: svn2(3, 0, 3), want: dcap.OutOfDate},
		{name: "running module version unknown to Intel", svn: [16]byte{2, 1, 3}, svn2: svn2(6, 2, 3), err: attest.ErrSignature, msg: "TEE_TCB_SVN2 names TDX module major version 2"},
		// The TDX level OutOfDate (component 2 below the latest level) and
		// the module OutOfDate: the relaunch still helps.
		{name: "TDX level and module OutOfDate", svn: [16]byte{2, 1, 2}, svn2: svn2(4, 1, 3), want: dcap.TDRelaunchAdvised, advice: []string{"SA-PLATFORM", "SA-MODULE"}},
		// The module UpToDate: a relaunch would not change the module.
		{name: "module UpToDate, TDX level OutOfDate", svn: [16]byte{4, 1, 2}, svn2: svn2(4, 1, 3), want: dcap.OutOfDate},
		// A launched module of version 0 has no identity, so no status.
		{name: "launched module version 0", svn: [16]byte{2, 0, 2}, svn2: svn2(4, 0, 3), want: dcap.OutOfDate},
		{name: "SGX level OutOfDate", pck: relaunchOld, svn: [16]byte{2, 1, 3}, svn2: svn2(4, 1, 3), want: dcap.OutOfDate},
		{name: "QE OutOfDate", qeSVN: 3, svn: [16]byte{2, 1, 3}, svn2: svn2(4, 1, 3), want: dcap.OutOfDate, advice: []string{"SA-MODULE", "SA-QE"}},
		{name: "all current", svn: [16]byte{4, 1, 3}, svn2: svn2(4, 1, 3), want: dcap.UpToDate},
		{name: "latest level ConfigurationNeeded", change: func(w *relaunchWorld) { w.tcb.TCBLevels[0].Status = dcap.ConfigurationNeeded },
			svn: [16]byte{2, 1, 3}, svn2: svn2(4, 1, 3), want: dcap.TDRelaunchAdvisedConfigurationNeeded},
		{name: "SGX level SWHardeningNeeded", change: func(w *relaunchWorld) { w.tcb.TCBLevels[0].Status = dcap.SWHardeningNeeded },
			svn: [16]byte{2, 1, 3}, svn2: svn2(4, 1, 3), want: dcap.TDRelaunchAdvised},
		{name: "TDX level OutOfDateConfigurationNeeded", change: func(w *relaunchWorld) { w.tcb.TCBLevels[1].Status = dcap.OutOfDateConfigurationNeeded },
			svn: [16]byte{2, 1, 2}, svn2: svn2(4, 1, 3), want: dcap.TDRelaunchAdvisedConfigurationNeeded},
		{name: "SGX level Revoked", change: func(w *relaunchWorld) { w.tcb.TCBLevels[0].Status = dcap.Revoked },
			svn: [16]byte{2, 1, 3}, svn2: svn2(4, 1, 3), want: dcap.Revoked},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newRelaunchWorld(t)
			if tt.change != nil {
				tt.change(w)
			}
			pck, qeSVN := tt.pck, tt.qeSVN
			if pck == (dcap.PCKTCB{}) {
				pck = relaunchLatest
			}
			if qeSVN == 0 {
				qeSVN = 4
			}
			r, err := w.evaluate(t, pck, qeSVN, tt.svn, tt.svn2)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err = %v, want %v about %q", err, tt.err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tt.want || (tt.advice != nil && !slices.Equal(r.Advisories, tt.advice)) {
				t.Errorf("status %s advisories %v, want %s %v", r.Status, r.Advisories, tt.want, tt.advice)
			}
		})
	}
}
