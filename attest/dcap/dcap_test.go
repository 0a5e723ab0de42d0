package dcap_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

func TestIntelSGXRoot(t *testing.T) {
	r := dcap.IntelSGXRoot()
	fp := sha256.Sum256(r.Raw)
	if hex.EncodeToString(fp[:]) != "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3" ||
		r.Subject.CommonName != "Intel SGX Root CA" || r.CheckSignatureFrom(r) != nil {
		t.Errorf("root %s, fingerprint %x", r.Subject, fp)
	}
}

// tcbInfoFiles are the real TCB info bodies of testdata (see
// PROVENANCE.md) with facts read from them.
var tcbInfoFiles = []struct {
	file             string
	id, fmspc        string
	levels, modules  int
	firstStatus      dcap.Status
	evaluationNumber uint32
}{
	{"gotdxguest-spr/sample_tcbInfo_response", "TDX", "50806f000000", 2, 0, dcap.UpToDate, 15},
	{"gotdxguest_tcbinfo_v5.json", "TDX", "90c06f000000", 3, 2, dcap.UpToDate, 18},
	{"trustee_tcbInfo.json", "TDX", "00a06d080000", 2, 2, dcap.UpToDate, 17},
	{"oasis_tcb_info_v3_tdx_fmspc_50806F000000.json", "TDX", "50806f000000", 2, 0, dcap.UpToDate, 15},
	{"oasis_tcb_info_v3_tdx_fmspc_C0806F000000.json", "TDX", "c0806f000000", 4, 2, dcap.UpToDate, 17},
}

func TestParseRealTCBInfo(t *testing.T) {
	for _, tt := range tcbInfoFiles {
		t.Run(tt.file, func(t *testing.T) {
			body := readTestdata(t, tt.file)
			ti, err := dcap.ParseTCBInfo(body)
			if err != nil {
				t.Fatal(err)
			}
			if ti.ID != tt.id || hex.EncodeToString(ti.FMSPC[:]) != tt.fmspc || len(ti.TCBLevels) != tt.levels ||
				len(ti.TDXModuleIdentities) != tt.modules || ti.TCBLevels[0].Status != tt.firstStatus ||
				ti.TCBEvaluationDataNumber != tt.evaluationNumber || ti.Version != 3 || ti.TDXModule == nil || !ti.TCBLevels[0].HasTDX {
				t.Errorf("parsed %s %x: %d levels, %d module identities, first %s, evaluation data number %d",
					ti.ID, ti.FMSPC, len(ti.TCBLevels), len(ti.TDXModuleIdentities), ti.TCBLevels[0].Status, ti.TCBEvaluationDataNumber)
			}
			// Signed is the "tcbInfo" value byte for byte.
			start := len(`{"tcbInfo":`)
			end := bytes.LastIndex(body, []byte(`,"signature":"`))
			if !bytes.Equal(ti.Signed, body[start:end]) {
				t.Error("Signed is not the exact tcbInfo value")
			}
		})
	}
}

var qeIdentityFiles = []string{"gotdxguest-spr/sample_qeIdentity_response", "trustee_enclaveIdentity.json",
	"oasis_qe_identity_v2_tdx.json", "oasis_qe_identity_v2_tdx2.json"}

func TestParseRealQEIdentity(t *testing.T) {
	for _, f := range qeIdentityFiles {
		q, err := dcap.ParseQEIdentity(readTestdata(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Every TD QE identity: Intel's TD QE signer, product 2, INIT|PROVISIONKEY.
		if q.ID != "TD_QE" || q.Version != 2 || q.ISVProdID != 2 ||
			hex.EncodeToString(q.MRSigner[:]) != "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5" ||
			q.Attributes != [16]byte{0x11} || q.MiscSelectMask != [4]byte{0xff, 0xff, 0xff, 0xff} || q.TCBLevels[0].Status != dcap.UpToDate {
			t.Errorf("%s: %+v", f, q)
		}
	}
}

func TestParseQVLCollateral(t *testing.T) {
	for _, tt := range []struct {
		file, tcbID, qeID, fmspc string
		levels                   int
	}{
		{"qvl_sgx_collateral.json", "SGX", "QE", "00a067110000", 11},
		{"qvl_tdx_collateral.json", "TDX", "TD_QE", "b0c06f000000", 2},
		{"qvl_tdx_outdated_collateral.json", "TDX", "TD_QE", "90c06f000000", 3},
	} {
		t.Run(tt.file, func(t *testing.T) {
			raw := readTestdata(t, tt.file)
			c, err := dcap.ParseQVLCollateral(raw)
			if err != nil {
				t.Fatal(err)
			}
			var j map[string]string
			if err := json.Unmarshal(raw, &j); err != nil {
				t.Fatal(err)
			}
			ti, err := dcap.ParseTCBInfo(c.TCBInfo)
			if err != nil {
				t.Fatal(err)
			}
			qe, err := dcap.ParseQEIdentity(c.QEIdentity)
			if err != nil {
				t.Fatal(err)
			}
			if ti.ID != tt.tcbID || qe.ID != tt.qeID || hex.EncodeToString(ti.FMSPC[:]) != tt.fmspc || len(ti.TCBLevels) != tt.levels {
				t.Errorf("TCB info %s %x (%d levels), QE identity %s", ti.ID, ti.FMSPC, len(ti.TCBLevels), qe.ID)
			}
			// The signed bytes are dcap-qvl's strings exactly; signatures theirs.
			if string(ti.Signed) != j["tcb_info"] || string(qe.Signed) != j["qe_identity"] ||
				hex.EncodeToString(ti.Signature[:]) != j["tcb_info_signature"] || hex.EncodeToString(qe.Signature[:]) != j["qe_identity_signature"] {
				t.Error("signed documents differ from the collateral's")
			}
			for name, b := range map[string][]byte{"pck": c.PCKCRL, "root": c.RootCACRL} {
				if _, err := dcap.ParseCRL(b); err != nil {
					t.Errorf("%s CRL: %v", name, err)
				}
			}
			for _, ch := range [][]byte{c.PCKCRLIssuerChain, c.TCBInfoIssuerChain, c.QEIdentityIssuerChain} {
				if certs, err := dcap.ParseIssuerChain(ch); err != nil || len(certs) != 2 || !certs[1].Equal(dcap.IntelSGXRoot()) {
					t.Errorf("issuer chain: %d certificates, %v", len(certs), err)
				}
			}
		})
	}
}

func TestParseQVLCollateralRefuses(t *testing.T) {
	var good map[string]string
	if err := json.Unmarshal(readTestdata(t, "qvl_sgx_collateral.json"), &good); err != nil {
		t.Fatal(err)
	}
	enc := func(m map[string]string) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	with := func(k, v string) []byte {
		m := make(map[string]string)
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == "\x00delete" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return enc(m)
	}
	// Newer dcap-qvl releases add the quote's PCK chain: accepted, dropped.
	if _, err := dcap.ParseQVLCollateral(with("pck_certificate_chain", good["pck_crl_issuer_chain"])); err != nil {
		t.Errorf("with pck_certificate_chain: %v", err)
	}
	for name, tt := range map[string]struct {
		b   []byte
		msg string
	}{
		"unknown key":             {with("pck_cert_chain", "x"), `unknown key "pck_cert_chain"`},
		"PCK chain not a string":  {bytes.Replace(enc(good), []byte(`{`), []byte(`{"pck_certificate_chain":1,`), 1), "pck_certificate_chain is not a string"},
		"missing key":             {with("root_ca_crl", "\x00delete"), `no "root_ca_crl"`},
		"CRL not hex":             {with("pck_crl", "zz"), "pck_crl is not hex"},
		"empty CRL":               {with("root_ca_crl", ""), "root_ca_crl is not hex"},
		"short signature":         {with("tcb_info_signature", "abcd"), "tcb_info_signature is not 64"},
		"tcb_info not an object":  {with("tcb_info", `[1]`), "tcb_info is not one JSON object"},
		"tcb_info two values":     {with("qe_identity", `{"a":1} {"b":2}`), "qe_identity is not one JSON object"},
		"tcb_info breaks out":     {with("tcb_info", `{"a":1},"signature":"00"`), "tcb_info is not one JSON object"},
		"not a string":            {bytes.Replace(enc(good), []byte(`"pck_crl":"`), []byte(`"pck_crl":1,"x":"`), 1), "not"},
		"duplicate key":           {append(bytes.TrimSuffix(enc(good), []byte("}")), []byte(`,"pck_crl":"00"}`)...), `duplicate key "pck_crl"`},
		"trailing data":           {append(enc(good), '1'), "not valid JSON"},
		"case-insensitive lookup": {bytes.Replace(enc(good), []byte(`"pck_crl"`), []byte(`"PCK_CRL"`), 1), "unknown key"},
	} {
		_, err := dcap.ParseQVLCollateral(tt.b)
		if !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want ErrCollateral about %q", name, err, tt.msg)
		}
	}
}

// sprCollateral is go-tdx-guest's sample collateral for its SPR quote.
func sprCollateral(t testing.TB) *dcap.Collateral {
	return &dcap.Collateral{
		PCKCRL:                readTestdata(t, "gotdxguest-spr/pckcrl"),
		PCKCRLIssuerChain:     readTestdata(t, "gotdxguest-spr/pckcrl_issuer_chain.pem"),
		RootCACRL:             readTestdata(t, "gotdxguest-spr/rootcrl.der"),
		TCBInfo:               readTestdata(t, "gotdxguest-spr/sample_tcbInfo_response"),
		TCBInfoIssuerChain:    readTestdata(t, "gotdxguest-spr/tcbinfo_issuer_chain.pem"),
		QEIdentity:            readTestdata(t, "gotdxguest-spr/sample_qeIdentity_response"),
		QEIdentityIssuerChain: readTestdata(t, "gotdxguest-spr/qeidentity_issuer_chain.pem"),
	}
}

// qvlTDXAt is inside the dcap-qvl TDX collateral's validity (TCB info
// 2025-06-19T10:16:03Z..2025-07-19T10:16:03Z).
var qvlTDXAt = time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)

func tdxInput(t testing.TB, quoteFile string, c *dcap.Collateral, at time.Time) *dcap.Input {
	q := parseTDQuote(t, readTestdata(t, quoteFile))
	return &dcap.Input{Kind: dcap.TDX, Collateral: c, Now: at, QE: q.qe, TDX: &q.tdx,
		PCKChain: verifiedChain(t, q.chain, dcap.IntelSGXRoot(), at)}
}

// TestQVLTDXUpToDate: the dcap-qvl TDX sample quote with its collateral is
// UpToDate without advisories (dcap-qvl tests/verify_quote.rs).
func TestQVLTDXUpToDate(t *testing.T) {
	c, err := dcap.ParseQVLCollateral(readTestdata(t, "qvl_tdx_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	in := tdxInput(t, "qvl_tdx_quote_v4.dat", c, qvlTDXAt)
	// The quote's facts: TDX module 1.x SVN 6 (TEE_TCB_SVN 06 01 03 00…),
	// Intel's TD QE ISVSVN 6 (the identity lists 4).
	if in.TDX.TEETCBSVN != [16]byte{6, 1, 3} || in.QE.ISVSVN != 6 || in.QE.ISVProdID != 2 {
		t.Fatalf("quote read wrongly: %x, QE %+v", in.TDX.TEETCBSVN, in.QE)
	}
	var e dcap.Evaluator
	r, err := e.Evaluate(in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != dcap.UpToDate || r.Advisories != nil || r.PlatformStatus != dcap.UpToDate || r.TDXModuleStatus != dcap.UpToDate ||
		r.QEStatus != dcap.UpToDate || !r.RevocationChecked || r.TCBLevel.PCESVN != 11 || r.QELevel.ISVSVN != 4 ||
		hex.EncodeToString(r.PCK.FMSPC[:]) != "b0c06f000000" || r.TCBInfo.TCBEvaluationDataNumber != 17 {
		t.Errorf("result %+v", r)
	}
	// Warm: the same verdict from the cache, and the time is still checked.
	if r2, err := e.Evaluate(in); err != nil || r2.Status != dcap.UpToDate {
		t.Errorf("warm: %+v, %v", r2, err)
	}
	for _, at := range []time.Time{time.Date(2025, 7, 19, 10, 16, 4, 0, time.UTC), time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)} {
		late := *in
		late.Now = at
		if _, err := e.Evaluate(&late); !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), "tcbInfo has expired") {
			t.Errorf("at %s: err = %v, want tcbInfo has expired", at, err)
		}
	}
	early := *in
	early.Now = time.Date(2025, 6, 19, 10, 16, 2, 0, time.UTC)
	if _, err := e.Evaluate(&early); !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), "tcbInfo is not yet valid") {
		t.Errorf("before issueDate: err = %v", err)
	}
}

// TestSPRNoMatchingTCBLevel: go-tdx-guest's SPR E4 sample quote with its
// sample collateral fails with "no matching TCB level" (its
// TestNegativeRawQuoteVerifyWithCollateral): the SGX components 3 3 2 2 2 1
// 0 2 are below both levels (5 5 2 2 3 1 0 3).
func TestSPRNoMatchingTCBLevel(t *testing.T) {
	at := time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC)
	_, err := dcap.Evaluate(tdxInput(t, "gotdxguest-spr/quote_v4.dat", sprCollateral(t), at))
	if !errors.Is(err, dcap.ErrNoMatchingTCBLevel) ||
		!strings.Contains(err.Error(), "TDX TCB info for FMSPC 50806f000000 failed TCB status check: no matching TCB level found") {
		t.Fatalf("err = %v", err)
	}
}

func TestTDXCollateralTampered(t *testing.T) {
	orig, err := dcap.ParseQVLCollateral(readTestdata(t, "qvl_tdx_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		edit func(c *dcap.Collateral)
		msg  string
	}{
		{"TCB info module level", func(c *dcap.Collateral) {
			c.TCBInfo = bytes.Replace(c.TCBInfo, []byte(`"isvsvn":4`), []byte(`"isvsvn":3`), 1)
		}, "TCB info is not signed by Intel"},
		{"TD QE identity level", func(c *dcap.Collateral) {
			c.QEIdentity = bytes.Replace(c.QEIdentity, []byte(`"isvsvn":4`), []byte(`"isvsvn":3`), 1)
		}, "QE identity is not signed by Intel"},
		{"SGX collateral for a TD", func(c *dcap.Collateral) {
			s, err := dcap.ParseQVLCollateral(readTestdata(t, "qvl_sgx_collateral.json"))
			if err != nil {
				t.Fatal(err)
			}
			c.TCBInfo = s.TCBInfo
		}, "the TCB info is for SGX, the quote is TDX"},
		{"go-tdx-guest's TCB info", func(c *dcap.Collateral) {
			c.TCBInfo = readTestdata(t, "gotdxguest-spr/sample_tcbInfo_response")
		}, "tcbInfo has expired"},
	} {
		c := *orig
		c.TCBInfo, c.QEIdentity = bytes.Clone(c.TCBInfo), bytes.Clone(c.QEIdentity)
		tt.edit(&c)
		if _, err := dcap.Evaluate(tdxInput(t, "qvl_tdx_quote_v4.dat", &c, qvlTDXAt)); !errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want ErrCollateral about %q", tt.name, err, tt.msg)
		}
	}
}

func TestEvaluateRefusesBadInput(t *testing.T) {
	c, err := dcap.ParseQVLCollateral(readTestdata(t, "qvl_tdx_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	good := tdxInput(t, "qvl_tdx_quote_v4.dat", c, qvlTDXAt)
	for name, edit := range map[string]func(in *dcap.Input){
		"no collateral": func(in *dcap.Input) { in.Collateral = nil },
		"no time":       func(in *dcap.Input) { in.Now = time.Time{} },
		"unknown kind":  func(in *dcap.Input) { in.Kind = "sev" },
		"TDX without the TD report": func(in *dcap.Input) {
			in.TDX = nil
		},
		"SGX with a TD report": func(in *dcap.Input) { in.Kind = dcap.SGX },
		"PCK leaf alone":       func(in *dcap.Input) { in.PCKChain = in.PCKChain[:1] },
		"no SGX extension":     func(in *dcap.Input) { in.PCKChain = in.PCKChain[1:] },
	} {
		in := *good
		edit(&in)
		if _, err := dcap.Evaluate(&in); err == nil {
			t.Errorf("%s: evaluated", name)
		}
	}
	if _, err := dcap.Evaluate(nil); !errors.Is(err, dcap.ErrCollateral) {
		t.Errorf("nil input: %v", err)
	}
}

func TestConverge(t *testing.T) {
	for _, tt := range []struct{ platform, component, want dcap.Status }{
		{dcap.UpToDate, dcap.UpToDate, dcap.UpToDate},
		{dcap.SWHardeningNeeded, dcap.UpToDate, dcap.SWHardeningNeeded},
		{dcap.UpToDate, dcap.OutOfDate, dcap.OutOfDate},
		{dcap.SWHardeningNeeded, dcap.OutOfDate, dcap.OutOfDate},
		{dcap.ConfigurationNeeded, dcap.OutOfDate, dcap.OutOfDateConfigurationNeeded},
		{dcap.ConfigurationAndSWHardeningNeeded, dcap.OutOfDate, dcap.OutOfDateConfigurationNeeded},
		{dcap.OutOfDate, dcap.OutOfDate, dcap.OutOfDate},
		{dcap.OutOfDateConfigurationNeeded, dcap.OutOfDate, dcap.OutOfDateConfigurationNeeded},
		{dcap.Revoked, dcap.OutOfDate, dcap.Revoked},
		{dcap.UpToDate, dcap.Revoked, dcap.Revoked},
		{dcap.ConfigurationNeeded, dcap.Revoked, dcap.Revoked},
	} {
		if got := dcap.Converge(tt.platform, tt.component); got != tt.want {
			t.Errorf("Converge(%s, %s) = %s, want %s", tt.platform, tt.component, got, tt.want)
		}
	}
}

// TestTDXMatch checks Intel's TDX matching rules on the dcap-qvl
// "outdated" TCB info (FMSPC 90c06f000000: TDX_01 levels SVN 6 UpToDate,
// 4 and 2 OutOfDate; TDX_03 level 3 UpToDate).
func TestTDXMatch(t *testing.T) {
	c, err := dcap.ParseQVLCollateral(readTestdata(t, "qvl_tdx_outdated_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	ti, err := dcap.ParseTCBInfo(c.TCBInfo)
	if err != nil {
		t.Fatal(err)
	}
	level0 := dcap.PCKTCB{CompSVN: [16]uint8{3, 3, 2, 2, 4, 1, 0, 5}, PCESVN: 13}
	level1 := dcap.PCKTCB{CompSVN: [16]uint8{2, 2, 2, 2, 3, 1, 0, 5}, PCESVN: 13}
	for _, tt := range []struct {
		name        string
		pck         dcap.PCKTCB
		teeTCBSVN   [16]byte
		mrsigner    byte
		seamAttr    byte
		level       int
		module      string
		moduleLevel dcap.Status
		err         error
		msg         string
	}{
		{name: "module 1.x SVN 6", pck: level0, teeTCBSVN: [16]byte{6, 1, 3}, level: 0, module: "TDX_01", moduleLevel: dcap.UpToDate},
		{name: "module 1.x SVN 5: its identity says OutOfDate", pck: level0, teeTCBSVN: [16]byte{5, 1, 3}, level: 0, module: "TDX_01", moduleLevel: dcap.OutOfDate},
		// Components 0 and 1 are the module's: with version > 0 they are
		// not compared with the level (5, 0), only component 2 onwards.
		{name: "module SVN below the level's component 0 is not compared", pck: level0, teeTCBSVN: [16]byte{4, 1, 3}, level: 0, module: "TDX_01", moduleLevel: dcap.OutOfDate},
		{name: "late microcode below level 0", pck: level0, teeTCBSVN: [16]byte{6, 1, 2}, level: 1, module: "TDX_01", moduleLevel: dcap.UpToDate},
		{name: "SGX components of level 1", pck: level1, teeTCBSVN: [16]byte{6, 1, 3}, level: 1, module: "TDX_01", moduleLevel: dcap.UpToDate},
		{name: "module 3.x", pck: level0, teeTCBSVN: [16]byte{3, 3, 3}, level: 0, module: "TDX_03", moduleLevel: dcap.UpToDate},
		{name: "module version 0 compares every component", pck: level0, teeTCBSVN: [16]byte{5, 0, 3}, level: 0},
		{name: "module version 0 below component 0", pck: level0, teeTCBSVN: [16]byte{4, 0, 3}, err: dcap.ErrNoMatchingTCBLevel, msg: "TEE_TCB_SVN [4 0 3"},
		{name: "module 3.x below its identity", pck: level0, teeTCBSVN: [16]byte{2, 3, 3}, err: dcap.ErrNoMatchingTCBLevel, msg: "TDX module TDX_03 SVN 2"},
		{name: "module 2.x unknown to Intel", pck: level0, teeTCBSVN: [16]byte{6, 2, 3}, err: attest.ErrSignature, msg: "no identity TDX_02"},
		{name: "MRSIGNERSEAM not Intel's", pck: level0, teeTCBSVN: [16]byte{6, 1, 3}, mrsigner: 1, err: attest.ErrSignature, msg: "MRSIGNERSEAM"},
		{name: "SEAMATTRIBUTES not zero", pck: level0, teeTCBSVN: [16]byte{6, 1, 3}, seamAttr: 1, err: attest.ErrSignature, msg: "SEAMATTRIBUTES"},
		{name: "PCESVN below every level", pck: dcap.PCKTCB{CompSVN: level0.CompSVN, PCESVN: 4}, teeTCBSVN: [16]byte{6, 1, 3}, err: dcap.ErrNoMatchingTCBLevel, msg: "PCESVN 4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tdx := &dcap.TDXTCB{TEETCBSVN: tt.teeTCBSVN}
			tdx.MRSignerSEAM[0], tdx.SEAMAttributes[0] = tt.mrsigner, tt.seamAttr
			m, err := ti.Match(tt.pck, tdx)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err = %v, want %v about %q", err, tt.err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Index != tt.level {
				t.Errorf("level %d, want %d", m.Index, tt.level)
			}
			switch {
			case tt.module == "" && (m.Module != nil || m.ModuleLevel != nil):
				t.Errorf("module identity %v applied to module version 0", m.Module.ID)
			case tt.module != "" && (m.Module == nil || m.Module.ID != tt.module || m.ModuleLevel.Status != tt.moduleLevel):
				t.Errorf("module %+v level %+v, want %s %s", m.Module, m.ModuleLevel, tt.module, tt.moduleLevel)
			}
		})
	}
	if _, err := ti.Match(level0, nil); err == nil {
		t.Error("TDX TCB info matched without a TD report")
	}
	// TCB info without module identities (go-tdx-guest's 2023 sample)
	// cannot judge a module of version > 0.
	old, err := dcap.ParseTCBInfo(readTestdata(t, "gotdxguest-spr/sample_tcbInfo_response"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Match(dcap.PCKTCB{CompSVN: [16]uint8{9, 9, 9, 9, 9, 9, 9, 9}, PCESVN: 11}, &dcap.TDXTCB{TEETCBSVN: [16]byte{9, 1, 9}}); !errors.Is(err, dcap.ErrCollateral) {
		t.Errorf("module version 1 without identities: %v", err)
	}
	if m, err := old.Match(dcap.PCKTCB{CompSVN: [16]uint8{9, 9, 9, 9, 9, 9, 9, 9}, PCESVN: 11}, &dcap.TDXTCB{TEETCBSVN: [16]byte{9, 0, 9}}); err != nil || m.Index != 0 {
		t.Errorf("module version 0: %+v, %v", m, err)
	}
}

func TestParseCRLAndChain(t *testing.T) {
	der := readTestdata(t, "gotdxguest-spr/rootcrl.der")
	pemCRL := []byte("-----BEGIN X509 CRL-----\n" + wrap64(der) + "-----END X509 CRL-----\n")
	for name, b := range map[string][]byte{"DER": der, "PEM": pemCRL} {
		crl, err := dcap.ParseCRL(b)
		if err != nil || crl.CheckSignatureFrom(dcap.IntelSGXRoot()) != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"truncated DER":     der[:len(der)-1],
		"PEM then garbage":  append(slices.Clone(pemCRL), "x"...),
		"PEM of a cert":     bytes.ReplaceAll(pemCRL, []byte("X509 CRL"), []byte("CERTIFICATE")),
		"empty":             nil,
		"trailing DER byte": append(slices.Clone(der), 0),
	} {
		if _, err := dcap.ParseCRL(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	chain := readTestdata(t, "gotdxguest-spr/pckcrl_issuer_chain.pem")
	if certs, err := dcap.ParseIssuerChain(chain); err != nil || len(certs) != 2 {
		t.Errorf("issuer chain: %v", err)
	}
	for name, b := range map[string][]byte{
		"garbage between":   bytes.Replace(chain, []byte("-----\n-----BEGIN"), []byte("-----\nx-----BEGIN"), 1),
		"not a CERTIFICATE": bytes.Replace(chain, []byte("BEGIN CERTIFICATE"), []byte("BEGIN X509 CRL"), 1),
		"empty":             []byte("\n"),
		"broken base64":     bytes.Replace(chain, []byte("MIIC"), []byte("M!IC"), 1),
	} {
		if _, err := dcap.ParseIssuerChain(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func wrap64(der []byte) string {
	s := base64Std(der)
	var out strings.Builder
	for len(s) > 64 {
		out.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return out.String() + s + "\n"
}

func TestPCKCAOf(t *testing.T) {
	q := parseTDQuote(t, readTestdata(t, "qvl_tdx_quote_v4.dat"))
	if ca, err := dcap.PCKCAOf(q.chain[0]); err != nil || ca != dcap.PlatformCA {
		t.Errorf("PCK CA %q, %v", ca, err)
	}
	if _, err := dcap.PCKCAOf(q.chain[1]); !errors.Is(err, attest.ErrChain) {
		t.Errorf("a CA's issuer (the root): %v", err)
	}
}

func TestStaticSource(t *testing.T) {
	c := &dcap.Collateral{TCBInfo: []byte("x")}
	got, err := dcap.NewStaticSource(c).Collateral(context.Background(), dcap.TDX, [6]byte{1}, dcap.PlatformCA)
	if err != nil || got != c {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := dcap.NewStaticSource(nil).Collateral(context.Background(), dcap.SGX, [6]byte{}, dcap.ProcessorCA); !errors.Is(err, dcap.ErrCollateral) {
		t.Errorf("empty source: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := dcap.NewStaticSource(c).Collateral(ctx, dcap.SGX, [6]byte{}, dcap.ProcessorCA); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
