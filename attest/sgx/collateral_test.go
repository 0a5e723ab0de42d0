package sgx_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/dcap/dcaptest"
	"github.com/trustbound/trustbound/attest/sgx"
)

// qvlAt is inside the validity of every part of the dcap-qvl collateral
// (TCB info 2025-06-19T10:56:11Z..2025-07-19T10:56:11Z, QE identity
// ..2025-07-19T10:01:18Z, PCK CRL ..2025-07-19T10:23:18Z).
var qvlAt = time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)

func qvlCollateral(t testing.TB) *dcap.Collateral {
	t.Helper()
	c, err := dcap.ParseQVLCollateral(readTestdata(t, "qvl_sgx_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verifyOpts(v *sgx.Verifier, ev *attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	return v.Verify(context.Background(), ev, opts)
}

func quoteEvidence(q []byte) *attest.Evidence {
	return &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: q}
}

// TestQVLQuoteWithCollateral is the dcap-qvl project's SGX sample quote
// with the collateral it ships: tests/verify_quote.rs expects
// ConfigurationAndSWHardeningNeeded with INTEL-SA-00289 and INTEL-SA-00615.
func TestQVLQuoteWithCollateral(t *testing.T) {
	quote := readTestdata(t, "qvl_sgx_quote_v3.dat")
	v := sgx.NewVerifier(sgx.Config{Collateral: dcap.NewStaticSource(qvlCollateral(t))})
	c, err := verifyOpts(v, quoteEvidence(quote), attest.Options{Now: qvlAt})
	if err != nil {
		t.Fatal(err)
	}
	var rd [64]byte
	copy(rd[:], "Hello, world!")
	if c.Simulated || !bytes.Equal(c.ReportData, rd[:]) || !c.RevocationChecked || !c.TCB.Evaluated ||
		c.TCB.Status != "ConfigurationAndSWHardeningNeeded" ||
		!slices.Equal(c.TCB.Advisories, []string{"INTEL-SA-00289", "INTEL-SA-00615"}) {
		t.Errorf("claims %+v", c)
	}
	for k, want := range map[string]string{
		"fmspc": "00a067110000", "pck_ca": "processor",
		"platform_tcb_status": "ConfigurationAndSWHardeningNeeded", "qe_tcb_status": "UpToDate",
		"tcb_date": "2024-03-13T00:00:00Z", "tcb_evaluation_data_number": "17",
	} {
		if c.Platform[k] != want {
			t.Errorf("Platform[%q] = %q, want %q", k, c.Platform[k], want)
		}
	}

	// Outside the collateral's validity: the first document to lapse says so.
	for _, tt := range []struct {
		at  time.Time
		msg string
	}{
		{time.Date(2025, 6, 19, 8, 13, 22, 0, time.UTC), "tcbInfo is not yet valid"}, // dcap-qvl's own test time
		{time.Date(2025, 7, 19, 10, 1, 19, 0, time.UTC), "QE identity (QE) has expired"},
		{time.Date(2025, 7, 19, 10, 56, 12, 0, time.UTC), "tcbInfo has expired"},
		{now, "tcbInfo has expired"},
	} {
		_, err := verifyOpts(v, quoteEvidence(quote), attest.Options{Now: tt.at})
		if !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("at %s: err = %v, want ErrCollateral about %q", tt.at, err, tt.msg)
		}
	}
	// Signatures and chain only: no verdict on the TCB, nor on revocation.
	c, err = verifyOpts(v, quoteEvidence(quote), attest.Options{Now: now, SkipCollateral: true})
	if err != nil || c.TCB.Evaluated || c.TCB.Status != "" || c.RevocationChecked {
		t.Errorf("SkipCollateral: claims %+v, err %v", c, err)
	}
	// Without a source, only SkipCollateral verifies it.
	_, err = verifyOpts(sgx.NewVerifier(sgx.Config{}), quoteEvidence(quote), attest.Options{Now: qvlAt})
	if !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), "no collateral source") {
		t.Errorf("no source: err = %v", err)
	}
}

// TestQVLCollateralForOtherQuotes: the collateral of one platform does not
// evaluate another's quote.
func TestQVLCollateralForOtherQuotes(t *testing.T) {
	v := sgx.NewVerifier(sgx.Config{Collateral: dcap.NewStaticSource(qvlCollateral(t))})
	for file, msg := range map[string]string{
		// Same PCK Processor CA, another FMSPC.
		"quote.release.bin": "TCB info is for FMSPC 00a067110000 PCE-ID 0000, the PCK certificate for FMSPC 00906ed50000",
		// PCK Platform CA: the Processor CA's CRL does not cover it.
		"occlum_quote_v3.dat": "PCK CRL issuer chain is for \"Intel SGX PCK Processor CA\", not for the PCK certificate's CA \"Intel SGX PCK Platform CA\"",
	} {
		_, err := verifyOpts(v, quoteEvidence(readTestdata(t, file)), attest.Options{Now: qvlAt})
		if !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: err = %v, want ErrCollateral about %q", file, err, msg)
		}
	}
}

func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not found", old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// flipHexDigit changes the hex digit at b[i] to another hex digit.
func flipHexDigit(b []byte, i int) []byte {
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return b
}

func TestQVLCollateralTampered(t *testing.T) {
	quote := readTestdata(t, "qvl_sgx_quote_v3.dat")
	orig := qvlCollateral(t)
	sigAt := func(body []byte) int {
		return bytes.LastIndex(body, []byte(`"signature":"`)) + len(`"signature":"`) + 10
	}
	for _, tt := range []struct {
		name string
		edit func(c *dcap.Collateral)
		msg  string
	}{
		{"TCB info body byte", func(c *dcap.Collateral) { c.TCBInfo = replaceOnce(t, c.TCBInfo, `"pcesvn":13`, `"pcesvn":12`) }, "TCB info is not signed by Intel"},
		{"TCB info status", func(c *dcap.Collateral) {
			c.TCBInfo = replaceOnce(t, c.TCBInfo, `"ConfigurationAndSWHardeningNeeded"`, `"UpToDate"`)
		}, "TCB info is not signed by Intel"},
		{"TCB info signature", func(c *dcap.Collateral) { c.TCBInfo = flipHexDigit(c.TCBInfo, sigAt(c.TCBInfo)) }, "TCB info is not signed by Intel"},
		// The PCK CA chains to the root but is no TCB signer: refused for that,
		// before its (here wrong) signature is checked; TestCollateralSignerRole
		// signs with such a certificate's key.
		{"TCB info issuer chain of the PCK CA", func(c *dcap.Collateral) { c.TCBInfoIssuerChain = c.PCKCRLIssuerChain },
			`TCB info is not signed by Intel: the signer is not Intel's TCB signing certificate: "Intel SGX PCK Processor CA" is a CA`},
		{"TCB info issuer chain truncated", func(c *dcap.Collateral) { c.TCBInfoIssuerChain = c.TCBInfoIssuerChain[:100] }, "TCB info"},
		{"TCB info not JSON", func(c *dcap.Collateral) { c.TCBInfo = c.TCBInfo[:len(c.TCBInfo)-1] }, "TCB info: not valid JSON"},
		{"QE identity body byte", func(c *dcap.Collateral) { c.QEIdentity = replaceOnce(t, c.QEIdentity, `"isvsvn":8`, `"isvsvn":7`) }, "QE identity is not signed by Intel"},
		{"QE identity signature", func(c *dcap.Collateral) { c.QEIdentity = flipHexDigit(c.QEIdentity, sigAt(c.QEIdentity)) }, "QE identity is not signed by Intel"},
		{"QE identity issuer chain", func(c *dcap.Collateral) { c.QEIdentityIssuerChain = c.PCKCRLIssuerChain },
			`QE identity is not signed by Intel: the signer is not Intel's TCB signing certificate: "Intel SGX PCK Processor CA" is a CA`},
		{"PCK CRL signature byte", func(c *dcap.Collateral) { c.PCKCRL[len(c.PCKCRL)-3] ^= 1 }, "PCK CRL: CRL signature does not verify"},
		{"root CA CRL signature byte", func(c *dcap.Collateral) { c.RootCACRL[len(c.RootCACRL)-3] ^= 1 }, "root CA CRL: CRL signature does not verify"},
		{"PCK CRL is the root's", func(c *dcap.Collateral) { c.PCKCRL = c.RootCACRL }, "PCK CRL: CRL issuer is not"},
		{"PCK CRL missing", func(c *dcap.Collateral) { c.PCKCRL = nil }, "the PCK CRL is missing"},
		{"QE identity missing", func(c *dcap.Collateral) { c.QEIdentity = nil }, "the QE identity is missing"},
		{"TCB info swapped for the QE identity", func(c *dcap.Collateral) { c.TCBInfo = c.QEIdentity }, "TCB info"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := *orig
			c.TCBInfo, c.QEIdentity = bytes.Clone(c.TCBInfo), bytes.Clone(c.QEIdentity)
			c.PCKCRL, c.RootCACRL = bytes.Clone(c.PCKCRL), bytes.Clone(c.RootCACRL)
			tt.edit(&c)
			v := sgx.NewVerifier(sgx.Config{Collateral: dcap.NewStaticSource(&c)})
			_, err := verifyOpts(v, quoteEvidence(quote), attest.Options{Now: qvlAt})
			if !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want ErrCollateral about %q", err, tt.msg)
			}
		})
	}
}

// fakeIntel is a test-made Intel (attest/dcap/dcaptest) whose PCK
// certificate carries the SGX extension of the real PCK certificate in
// quote.release.bin (FMSPC 00906ed50000, components 20 20 2 4 1 128 14,
// PCESVN 13), with a testCA minting quotes under it.
type fakeIntel struct {
	pki *dcaptest.PKI
	ca  *testCA
	pck *x509.Certificate
	ext *dcap.PCKExtensions
}

var (
	fakeFrom = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	fakeTo   = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

func newFakeIntel(t testing.TB) *fakeIntel {
	t.Helper()
	pki, err := dcaptest.NewPKI("fake Intel", dcap.PlatformCA, testNotBefore, testNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := sgx.ParsePCKExtensions(pckOf(t, "quote.release.bin"))
	if err != nil {
		t.Fatal(err)
	}
	pck, key, err := pki.PCK(ext)
	if err != nil {
		t.Fatal(err)
	}
	pem := append(dcaptest.ChainPEM(pck, pki.PCKCA, pki.Root), 0)
	return &fakeIntel{pki: pki, ca: &testCA{root: pki.Root, leafKey: key, pem: pem}, pck: pck, ext: ext}
}

// tcbInfo is TCB info for the fake platform with the given levels.
func (f *fakeIntel) tcbInfo(levels ...dcap.TCBLevel) *dcap.TCBInfo {
	return &dcap.TCBInfo{ID: "SGX", Version: 3, IssueDate: fakeFrom, NextUpdate: fakeTo, FMSPC: f.ext.FMSPC,
		PCEID: f.ext.PCEID, TCBEvaluationDataNumber: 19, TCBLevels: levels}
}

// qeIdentity matches testCA.quote's QE report (MRSIGNER zero, ISVPRODID 1,
// ISVSVN 8, FLAGS 0x15).
func (f *fakeIntel) qeIdentity(levels ...dcap.EnclaveTCBLevel) *dcap.QEIdentity {
	return &dcap.QEIdentity{ID: "QE", Version: 2, IssueDate: fakeFrom, NextUpdate: fakeTo, TCBEvaluationDataNumber: 19,
		MiscSelectMask: [4]byte{0xff, 0xff, 0xff, 0xff}, Attributes: [16]byte{0x11},
		AttributesMask: [16]byte{0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ISVProdID: 1, TCBLevels: levels}
}

func (f *fakeIntel) collateral(t testing.TB, tcb *dcap.TCBInfo, qe *dcap.QEIdentity, rev dcaptest.Revoked) *dcap.Collateral {
	t.Helper()
	c, err := f.pki.Collateral(tcb, qe, fakeFrom, fakeTo, rev)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func level(comps [16]uint8, pcesvn uint16, s dcap.Status, advisories ...string) dcap.TCBLevel {
	return dcap.TCBLevel{SGXComponents: comps, PCESVN: pcesvn, TCBDate: fakeFrom.AddDate(-1, 0, 0), Status: s, AdvisoryIDs: advisories}
}

func qeLevel(svn uint16, s dcap.Status, advisories ...string) dcap.EnclaveTCBLevel {
	return dcap.EnclaveTCBLevel{ISVSVN: svn, TCBDate: fakeFrom.AddDate(-1, 0, 0), Status: s, AdvisoryIDs: advisories}
}

type errSource struct{ err error }

func (s errSource) Collateral(context.Context, dcap.Kind, [6]byte, dcap.CA) (*dcap.Collateral, error) {
	return nil, s.err
}

func TestTCBVerdicts(t *testing.T) {
	f := newFakeIntel(t)
	platform := [16]uint8{20, 20, 2, 4, 1, 128, 14}
	newer := platform
	newer[6] = 15
	upToDate := []dcap.EnclaveTCBLevel{qeLevel(8, dcap.UpToDate)}
	at := fakeFrom.Add(time.Hour)
	quote := f.ca.quote(t, sgx.ReportBody{MREnclave: [32]byte{1}}, nil)
	other, err := dcaptest.NewPKI("other", dcap.PlatformCA, testNotBefore, testNotAfter)
	if err != nil {
		t.Fatal(err)
	}

	type verdict struct {
		status     string
		advisories []string
	}
	for _, tt := range []struct {
		name string
		src  func() dcap.Source
		want verdict
		err  error
		msg  string
	}{
		{name: "UpToDate", want: verdict{"UpToDate", nil}, src: func() dcap.Source {
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(upToDate...), dcaptest.Revoked{}))
		}},
		{name: "the first level met wins", want: verdict{"SWHardeningNeeded", []string{"SA-1"}}, src: func() dcap.Source {
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(newer, 13, dcap.UpToDate), level(platform, 13, dcap.SWHardeningNeeded, "SA-1"),
				level([16]uint8{}, 0, dcap.OutOfDate, "SA-1", "SA-2")), f.qeIdentity(upToDate...), dcaptest.Revoked{}))
		}},
		{name: "PCESVN below the level", want: verdict{"OutOfDate", []string{"SA-2"}}, src: func() dcap.Source {
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 14, dcap.UpToDate), level([16]uint8{}, 13, dcap.OutOfDate, "SA-2")),
				f.qeIdentity(upToDate...), dcaptest.Revoked{}))
		}},
		{name: "platform level Revoked", want: verdict{"Revoked", []string{"SA-3"}}, src: func() dcap.Source {
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.Revoked, "SA-3")), f.qeIdentity(upToDate...), dcaptest.Revoked{}))
		}},
		{name: "QE OutOfDate makes ConfigurationNeeded OutOfDateConfigurationNeeded", want: verdict{"OutOfDateConfigurationNeeded", []string{"SA-1", "SA-Q"}},
			src: func() dcap.Source {
				return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.ConfigurationNeeded, "SA-1")),
					f.qeIdentity(qeLevel(9, dcap.UpToDate), qeLevel(8, dcap.OutOfDate, "SA-Q", "SA-1")), dcaptest.Revoked{}))
			}},
		{name: "QE OutOfDate makes UpToDate OutOfDate", want: verdict{"OutOfDate", []string{"SA-Q"}}, src: func() dcap.Source {
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)),
				f.qeIdentity(qeLevel(9, dcap.UpToDate), qeLevel(0, dcap.OutOfDate, "SA-Q")), dcaptest.Revoked{}))
		}},
		{name: "QE Revoked", want: verdict{"Revoked", nil}, src: func() dcap.Source {
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)),
				f.qeIdentity(qeLevel(8, dcap.Revoked)), dcaptest.Revoked{}))
		}},
		{name: "no matching TCB level", err: dcap.ErrNoMatchingTCBLevel, msg: "SGX TCB info for FMSPC 00906ed50000 failed TCB status check: no matching TCB level found",
			src: func() dcap.Source {
				return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(newer, 13, dcap.UpToDate)), f.qeIdentity(upToDate...), dcaptest.Revoked{}))
			}},
		{name: "QE ISVSVN below every level", err: dcap.ErrNoMatchingTCBLevel, msg: "quoting enclave ISVSVN 8", src: func() dcap.Source {
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(qeLevel(9, dcap.UpToDate)), dcaptest.Revoked{}))
		}},
		{name: "QE MRSIGNER not Intel's", err: attest.ErrSignature, msg: "quoting enclave is not Intel's: QE report MRSIGNER", src: func() dcap.Source {
			qe := f.qeIdentity(upToDate...)
			qe.MRSigner[0] = 1
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), qe, dcaptest.Revoked{}))
		}},
		{name: "QE ISVPRODID not Intel's", err: attest.ErrSignature, msg: "QE report ISVPRODID 1", src: func() dcap.Source {
			qe := f.qeIdentity(upToDate...)
			qe.ISVProdID = 2
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), qe, dcaptest.Revoked{}))
		}},
		{name: "QE attributes under the mask", err: attest.ErrSignature, msg: "QE report ATTRIBUTES", src: func() dcap.Source {
			qe := f.qeIdentity(upToDate...)
			qe.Attributes[0] = 0x13 // DEBUG expected
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), qe, dcaptest.Revoked{}))
		}},
		{name: "QE MISCSELECT under the mask", err: attest.ErrSignature, msg: "QE report MISCSELECT", src: func() dcap.Source {
			qe := f.qeIdentity(upToDate...)
			qe.MiscSelect[0] = 1
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), qe, dcaptest.Revoked{}))
		}},
		{name: "PCK certificate revoked", err: attest.ErrChain, msg: fmt.Sprintf("serial %x is revoked by the PCK CRL (TCB status Revoked)", f.pck.SerialNumber),
			src: func() dcap.Source {
				return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(upToDate...),
					dcaptest.Revoked{ByPCKCA: []*big.Int{big.NewInt(7), f.pck.SerialNumber}}))
			}},
		{name: "PCK CA revoked", err: attest.ErrChain, msg: fmt.Sprintf("serial %x is revoked by the root CA CRL", f.pki.PCKCA.SerialNumber),
			src: func() dcap.Source {
				return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(upToDate...),
					dcaptest.Revoked{ByRoot: []*big.Int{f.pki.PCKCA.SerialNumber}}))
			}},
		{name: "TCB signing certificate revoked", err: dcap.ErrCollateral, msg: "collateral signing certificate", src: func() dcap.Source {
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(upToDate...),
				dcaptest.Revoked{ByRoot: []*big.Int{f.pki.TCBSigning.SerialNumber}}))
		}},
		{name: "TCB info of another FMSPC", err: dcap.ErrCollateral, msg: "TCB info is for FMSPC 00906ed50001", src: func() dcap.Source {
			tcb := f.tcbInfo(level(platform, 13, dcap.UpToDate))
			tcb.FMSPC[5] = 1
			return dcap.NewStaticSource(f.collateral(t, tcb, f.qeIdentity(upToDate...), dcaptest.Revoked{}))
		}},
		{name: "TCB info of another PCE", err: dcap.ErrCollateral, msg: "PCE-ID 0100", src: func() dcap.Source {
			tcb := f.tcbInfo(level(platform, 13, dcap.UpToDate))
			tcb.PCEID[0] = 1
			return dcap.NewStaticSource(f.collateral(t, tcb, f.qeIdentity(upToDate...), dcaptest.Revoked{}))
		}},
		{name: "TDX TCB info", err: dcap.ErrCollateral, msg: "the TCB info is for TDX", src: func() dcap.Source {
			l := level(platform, 13, dcap.UpToDate)
			l.HasTDX = true
			tcb := f.tcbInfo(l)
			tcb.ID, tcb.TDXModule = "TDX", &dcap.TDXModule{AttributesMask: [8]byte{0xff}}
			return dcap.NewStaticSource(f.collateral(t, tcb, f.qeIdentity(upToDate...), dcaptest.Revoked{}))
		}},
		{name: "TD QE identity", err: dcap.ErrCollateral, msg: "the QE identity is TD_QE", src: func() dcap.Source {
			qe := f.qeIdentity(upToDate...)
			qe.ID = "TD_QE"
			return dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), qe, dcaptest.Revoked{}))
		}},
		{name: "collateral signed by another PKI", err: dcap.ErrCollateral, msg: "TCB info: issuer chain: root \"other SGX Root CA\" is not the trusted root", src: func() dcap.Source {
			c, err := other.Collateral(f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(upToDate...), fakeFrom, fakeTo, dcaptest.Revoked{})
			if err != nil {
				t.Fatal(err)
			}
			c.PCKCRL, c.PCKCRLIssuerChain = f.collateral(t, f.tcbInfo(), f.qeIdentity(upToDate...), dcaptest.Revoked{}).PCKCRL, dcaptest.ChainPEM(f.pki.PCKCA, f.pki.Root)
			c.RootCACRL = f.collateral(t, f.tcbInfo(), f.qeIdentity(upToDate...), dcaptest.Revoked{}).RootCACRL
			return dcap.NewStaticSource(c)
		}},
		{name: "the source fails", err: dcap.ErrCollateral, msg: "collateral for FMSPC 00906ed50000: PCS unreachable", src: func() dcap.Source {
			return errSource{errors.New("PCS unreachable")}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{f.pki.Root}, Collateral: tt.src()})
			c, err := verifyOpts(v, quoteEvidence(quote), attest.Options{Now: at})
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err = %v, want %v about %q", err, tt.err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.TCB.Evaluated || !c.RevocationChecked || c.TCB.Status != tt.want.status || !slices.Equal(c.TCB.Advisories, tt.want.advisories) {
				t.Errorf("TCB %+v, revocation checked %v; want %+v", c.TCB, c.RevocationChecked, tt.want)
			}
		})
	}

	t.Run("revocation names the serial", func(t *testing.T) {
		src := dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(upToDate...),
			dcaptest.Revoked{ByPCKCA: []*big.Int{f.pck.SerialNumber}}))
		_, err := verifyOpts(sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{f.pki.Root}, Collateral: src}), quoteEvidence(quote), attest.Options{Now: at})
		var rev *dcap.RevokedError
		if !errors.As(err, &rev) || rev.Serial.Cmp(f.pck.SerialNumber) != 0 {
			t.Fatalf("err = %v, want a RevokedError for the PCK certificate", err)
		}
	})
	t.Run("stale CRL", func(t *testing.T) {
		c, err := f.pki.Collateral(f.tcbInfo(level(platform, 13, dcap.UpToDate)), f.qeIdentity(upToDate...), fakeFrom, fakeFrom.Add(time.Minute), dcaptest.Revoked{})
		if err != nil {
			t.Fatal(err)
		}
		v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{f.pki.Root}, Collateral: dcap.NewStaticSource(c)})
		if _, err := verifyOpts(v, quoteEvidence(quote), attest.Options{Now: at}); !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), "PCK CRL") || !strings.Contains(err.Error(), "is stale") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestPPIDCertificationData: quotes whose certification data is a PPID
// (types 1–3) verify when the PCK chain comes beside them in Evidence.Certs.
func TestPPIDCertificationData(t *testing.T) {
	f := newFakeIntel(t)
	src := dcap.NewStaticSource(f.collateral(t, f.tcbInfo(level([16]uint8{20, 20, 2, 4, 1, 128, 14}, 13, dcap.UpToDate)),
		f.qeIdentity(qeLevel(8, dcap.UpToDate)), dcaptest.Revoked{}))
	v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{f.pki.Root}, Collateral: src})
	at := fakeFrom.Add(time.Hour)
	certData := func(ppid []byte, pceid [2]byte) []byte {
		d := slices.Concat(ppid, f.ext.TCB.CPUSVN[:], binary.LittleEndian.AppendUint16(nil, f.ext.TCB.PCESVN), pceid[:])
		return d
	}
	withCerts := [][]byte{f.pck.Raw, f.pki.PCKCA.Raw}
	for _, tt := range []struct {
		name     string
		typ      uint16
		data     []byte
		certs    [][]byte
		err      error
		msg      string
		evaluate bool
	}{
		{"type 1 with its PCK chain", sgx.CertDataPPIDCleartext, certData(f.ext.PPID[:], f.ext.PCEID), withCerts, nil, "", true},
		{"type 2 with its PCK chain and root", sgx.CertDataPPIDRSA2048, certData(make([]byte, 256), f.ext.PCEID), append(slices.Clone(withCerts), f.pki.Root.Raw), nil, "", true},
		{"type 3 with its PCK chain", sgx.CertDataPPIDRSA3072, certData(make([]byte, 384), f.ext.PCEID), withCerts, nil, "", false},
		{"type 3 without a PCK certificate", sgx.CertDataPPIDRSA3072, certData(make([]byte, 384), f.ext.PCEID), nil, attest.ErrChain, "supplies no PCK certificate", false},
		{"type 1 of another platform", sgx.CertDataPPIDCleartext, certData(make([]byte, 16), f.ext.PCEID), withCerts, attest.ErrChain, "another platform's", false},
		{"type 2 of another PCE", sgx.CertDataPPIDRSA2048, certData(make([]byte, 256), [2]byte{0, 1}), withCerts, attest.ErrChain, "PCE-ID", false},
		{"type 1 with the CA alone", sgx.CertDataPPIDCleartext, certData(f.ext.PPID[:], f.ext.PCEID), withCerts[1:], attest.ErrChain, "", false},
		{"type 1 with a broken certificate", sgx.CertDataPPIDCleartext, certData(f.ext.PPID[:], f.ext.PCEID), [][]byte{f.pck.Raw[:50]}, attest.ErrMalformed, "PCK chain certificate 0", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			quote := f.ca.quote(t, sgx.ReportBody{MREnclave: [32]byte{2}}, func(q *sgx.Quote) {
				q.Signature.CertDataType, q.Signature.CertData = tt.typ, tt.data
			})
			ev := &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: quote, Certs: tt.certs}
			c, err := verifyOpts(v, ev, attest.Options{Now: at, SkipCollateral: !tt.evaluate})
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err = %v, want %v about %q", err, tt.err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Measurement[0] != 2 || c.TCB.Evaluated != tt.evaluate || tt.evaluate && c.TCB.Status != "UpToDate" {
				t.Errorf("claims %+v", c)
			}
		})
	}
}
