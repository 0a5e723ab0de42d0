package simtee

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

// The simulated TDX platform: its TDX module and TD quoting enclave. The
// PCK chain is the simulated SGX one (intel/README.md), as a real TDX
// platform's PCK certificate is an SGX one. The simulated TDX collateral
// (tdxCollateral) describes these values: TDX TCB info for the PCK
// certificate's FMSPC with these TDX components and module, a TD_QE
// identity with this QE.
var (
	// tdxSimTEETCBSVN is TEE_TCB_SVN: TDX module SVN 5, major version 1,
	// further TDX components 2.
	tdxSimTEETCBSVN = [16]byte{0x05, 0x01, 0x02}
	// tdxSimMRSEAM is the measurement of the simulated TDX module;
	// MRSIGNERSEAM and SEAM attributes are zero, as for Intel's modules.
	tdxSimMRSEAM = sha512.Sum384([]byte("trustbound SIMULATED TDX module"))
	// tdxSimXFAM enables x87, SSE, AVX, AVX-512, PKRU, AMX: what real TDs use.
	tdxSimXFAM = [8]byte{0xe7, 0x18, 0x06}
	// tdxSimQEMRSigner and tdxSimQEProdID name the simulated TD quoting
	// enclave (Intel's TD QE has ISVPRODID 2).
	tdxSimQEMRSigner  = sha256.Sum256([]byte("trustbound SIMULATED TD quoting enclave signer"))
	tdxSimQEMREnclave = sha256.Sum256([]byte("trustbound SIMULATED TD quoting enclave"))
)

const (
	tdxSimQEProdID = 2
	tdxSimQESVN    = 4
	// TD_ATTRIBUTES bits.
	tdxAttrDebug         = 1 << 0
	tdxAttrSEPTVEDisable = 1 << 28
	// tdReportSize is the size of a TDREPORT_STRUCT.
	tdReportSize = 1024
)

// tdxCollateral signs TDX TCB info and a TD QE identity valid from issue
// to next for the simulated TDX platform, in the shape Intel publishes
// them: the first TCB level is the simulated platform's (UpToDate: the
// simulated PCK's SGX components and PCESVN, TDX components 5 0 2, judged
// from component 2 on for a module of major version 1), an older one is
// OutOfDate; the simulated module, major version 1 with MRSIGNERSEAM and
// SEAM attributes zero, has the identity TDX_01 (SVN 5 UpToDate, 3
// OutOfDate); the simulated TD QE's ISVSVN is UpToDate.
func tdxCollateral(issue, next time.Time) (*dcap.Collateral, error) {
	ch, err := sgxLoad()
	if err != nil {
		return nil, fmt.Errorf("simtee: simulated Intel chain: %w", err)
	}
	old := []string{SGXSimulatedAdvisory}
	oldDate := sgxSimChainStart.AddDate(-1, 0, 0)
	// As Intel's: MRSIGNERSEAM and attributes zero, every attribute bit judged.
	module := dcap.TDXModule{AttributesMask: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	tcb := &dcap.TCBInfo{
		ID: dcap.TCBInfoTDX, Version: dcap.TCBInfoVersion, IssueDate: issue, NextUpdate: next,
		FMSPC: sgxSimFMSPC, TCBEvaluationDataNumber: 1,
		TDXModule: &module,
		TDXModuleIdentities: []dcap.TDXModuleIdentity{{
			ID: fmt.Sprintf("TDX_%02X", tdxSimTEETCBSVN[1]), TDXModule: module,
			TCBLevels: []dcap.EnclaveTCBLevel{
				{ISVSVN: uint16(tdxSimTEETCBSVN[0]), TCBDate: sgxSimChainStart, Status: dcap.UpToDate},
				{ISVSVN: uint16(tdxSimTEETCBSVN[0]) - 2, TCBDate: oldDate, Status: dcap.OutOfDate, AdvisoryIDs: old},
			},
		}},
		TCBLevels: []dcap.TCBLevel{
			{SGXComponents: sgxSimCPUSVN, PCESVN: sgxSimPCESVN, TDXComponents: [16]uint8{tdxSimTEETCBSVN[0], 0, tdxSimTEETCBSVN[2]},
				HasTDX: true, TCBDate: sgxSimChainStart, Status: dcap.UpToDate},
			{TDXComponents: [16]uint8{tdxSimTEETCBSVN[0] - 2, 0, tdxSimTEETCBSVN[2] - 1},
				HasTDX: true, TCBDate: oldDate, Status: dcap.OutOfDate, AdvisoryIDs: old},
		},
	}
	qe := &dcap.QEIdentity{
		ID: dcap.QEIdentityTDX, Version: dcap.QEIdentityVersion, IssueDate: issue, NextUpdate: next,
		TCBEvaluationDataNumber: 1, MRSigner: tdxSimQEMRSigner, ISVProdID: tdxSimQEProdID,
		MiscSelectMask: [4]byte{0xff, 0xff, 0xff, 0xff},
		// As Intel's: INIT and PROVISIONKEY set, MODE64BIT and XFRM not judged.
		Attributes:     [16]byte{0x11},
		AttributesMask: [16]byte{0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		TCBLevels: []dcap.EnclaveTCBLevel{
			{ISVSVN: tdxSimQESVN, TCBDate: sgxSimChainStart, Status: dcap.UpToDate},
			{ISVSVN: 0, TCBDate: oldDate, Status: dcap.OutOfDate, AdvisoryIDs: old},
		},
	}
	return ch.collateral(tcb, qe)
}

// TDXCollateral returns simulated Intel collateral for the simulated TDX
// platform as a PCS would serve it at now: TDX TCB info and TD QE identity
// issued at now (to the second) with Intel's 30-day window, the simulated
// CRLs. Quotes of TDX evaluate UpToDate against it, without advisories.
func TDXCollateral(now time.Time) (*dcap.Collateral, error) {
	issue := now.UTC().Truncate(time.Second)
	return tdxCollateral(issue, issue.AddDate(0, 0, 30))
}

var tdxSource = sync.OnceValues(func() (*dcap.Collateral, error) {
	return tdxCollateral(sgxSimChainStart, sgxSimChainEnd)
})

// TDXCollateralSource returns a source of simulated TDX collateral valid
// for as long as the simulated chain (2025-01-01 to 2049-12-31), for
// tdx.Config.SimulatedCollateral: simulated quotes then evaluate UpToDate
// at any time the chain is valid.
func TDXCollateralSource() dcap.Source {
	c, err := tdxSource()
	if err != nil {
		// Embedded at build time and covered by tests.
		panic(fmt.Sprintf("simtee: simulated TDX collateral: %v", err))
	}
	return dcap.NewStaticSource(c)
}

// TDX is a simulated Intel TDX trust domain. Report gives the TDREPORT its
// simulated TDX module would, Quote the version 4 DCAP quote its simulated
// TD quoting enclave makes of a TDREPORT (signed through the simulated
// Intel PCK chain, verifiable by attest/tdx with the simulated root of
// SGXRoot), and Attest both in one step.
type TDX struct {
	// MRTD is the TD's build-time measurement; MRConfigID, MROwner and
	// MROwnerConfig what the host set at launch.
	MRTD, MRConfigID, MROwner, MROwnerConfig [48]byte
	// RTMRs are the runtime measurement registers.
	RTMRs [4][48]byte
	// Debug sets TD_ATTRIBUTES.DEBUG.
	Debug bool
}

var _ attest.Attester = TDX{}

// TEE returns attest.TDX.
func (TDX) TEE() attest.TEE { return attest.TDX }

// Attest returns an attest.FormatTDXQuote quote (version 4) binding
// reportData.
func (t TDX) Attest(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	return t.Quote(ctx, t.Report(reportData))
}

// Report returns the 1024-byte TDREPORT of the TD for reportData, with
// correct TEE_TCB_INFO and TDINFO hashes and a zero MAC (only a real
// platform's quoting enclave could check a MAC).
func (t TDX) Report(reportData [64]byte) []byte {
	b := make([]byte, tdReportSize)
	b[0] = 0x81 // REPORTTYPE: TDX, subtype 0, version 0
	copy(b[16:32], sgxSimCPUSVN[:])
	copy(b[128:192], reportData[:])
	tcb := b[256 : 256+239]
	tcb[0] = 0xff // VALID: the fields below
	tcb[1] = 0x01
	copy(tcb[8:24], tdxSimTEETCBSVN[:])
	copy(tcb[24:72], tdxSimMRSEAM[:])
	info := b[512:1024]
	attrs := uint64(tdxAttrSEPTVEDisable)
	if t.Debug {
		attrs |= tdxAttrDebug
	}
	binary.LittleEndian.PutUint64(info[0:], attrs)
	copy(info[8:16], tdxSimXFAM[:])
	copy(info[16:64], t.MRTD[:])
	copy(info[64:112], t.MRConfigID[:])
	copy(info[112:160], t.MROwner[:])
	copy(info[160:208], t.MROwnerConfig[:])
	for i, r := range t.RTMRs {
		copy(info[208+48*i:], r[:])
	}
	h := sha512.Sum384(tcb)
	copy(b[32:80], h[:])
	h = sha512.Sum384(info)
	copy(b[80:128], h[:])
	return b
}

// Quote returns the version 4 quote of the simulated TD quoting enclave for
// a TDREPORT (as Azure's IMDS quotes the TDREPORT a TD hands it). The
// report's MAC is not checked: any well-formed TDREPORT is quoted.
func (TDX) Quote(ctx context.Context, report []byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(report) != tdReportSize || report[0] != 0x81 {
		return nil, fmt.Errorf("simtee: not a %d-byte TDREPORT", tdReportSize)
	}
	ch, err := sgxLoad()
	if err != nil {
		return nil, fmt.Errorf("simtee: simulated Intel chain: %w", err)
	}

	// Header (48) and TD quote body (584), little-endian.
	signed := make([]byte, 48+584)
	binary.LittleEndian.PutUint16(signed[0:], 4)    // version
	binary.LittleEndian.PutUint16(signed[2:], 2)    // ECDSA-256-with-P-256
	binary.LittleEndian.PutUint32(signed[4:], 0x81) // TEE type TDX
	copy(signed[12:28], sgxSimIntelQEVendorID[:])
	body := signed[48:]
	tcb, info := report[256:256+239], report[512:1024]
	copy(body[0:16], tcb[8:24])       // TEE_TCB_SVN
	copy(body[16:64], tcb[24:72])     // MRSEAM
	copy(body[64:112], tcb[72:120])   // MRSIGNERSEAM
	copy(body[112:120], tcb[120:128]) // SEAM ATTRIBUTES
	copy(body[120:520], info[0:400])  // TD ATTRIBUTES, XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMRs
	copy(body[520:584], report[128:192])

	// The simulated TD quoting enclave.
	qe, err := sgxQESign(ch.pckKey, sgxReport{
		mrenclave: tdxSimQEMREnclave,
		mrsigner:  tdxSimQEMRSigner,
		prodID:    tdxSimQEProdID,
		svn:       tdxSimQESVN,
	}, signed)
	if err != nil {
		return nil, err
	}
	// Certification data type 6 (QE report certification data) wrapping
	// type 5 (the PCK chain).
	qeCert := make([]byte, 0, 384+64+2+len(qe.authData)+6+len(ch.certPEM))
	qeCert = append(qeCert, qe.report...)
	qeCert = append(qeCert, qe.reportSig...)
	qeCert = binary.LittleEndian.AppendUint16(qeCert, uint16(len(qe.authData)))
	qeCert = append(qeCert, qe.authData...)
	qeCert = binary.LittleEndian.AppendUint16(qeCert, 5)
	qeCert = binary.LittleEndian.AppendUint32(qeCert, uint32(len(ch.certPEM)))
	qeCert = append(qeCert, ch.certPEM...)

	sig := make([]byte, 0, 64+64+6+len(qeCert))
	sig = append(sig, qe.quoteSig...)
	sig = append(sig, qe.attPub...)
	sig = binary.LittleEndian.AppendUint16(sig, 6)
	sig = binary.LittleEndian.AppendUint32(sig, uint32(len(qeCert)))
	sig = append(sig, qeCert...)
	return &attest.Evidence{Format: attest.FormatTDXQuote, Data: sgxQuote(signed, sig)}, nil
}
