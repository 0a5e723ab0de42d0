package dcap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest"
)

// TCB info IDs and the only version read.
const (
	TCBInfoSGX     = "SGX"
	TCBInfoTDX     = "TDX"
	TCBInfoVersion = 3
)

// maxLevels bounds the TCB levels (and module identities) of one document;
// Intel's longest lists hold a few dozen.
const maxLevels = 1024

// ParseTCBInfo reads a TCB info body as Intel PCS v4 serves it,
// {"tcbInfo":{…},"signature":"<hex>"}, strictly: exact keys, no duplicates,
// version 3, ID SGX or TDX (TDX levels must carry tdxtcbcomponents and the
// document a tdxModule), known statuses, 16 components per list. It does
// not verify the signature or the dates. Refusals wrap ErrCollateral.
func ParseTCBInfo(body []byte) (*TCBInfo, error) {
	signed, sig, err := signedBody(body, "tcbInfo")
	if err != nil {
		return nil, fmt.Errorf("%w: TCB info: %w", ErrCollateral, err)
	}
	t, err := parseTCBInfo(signed)
	if err != nil {
		return nil, fmt.Errorf("%w: TCB info: %w", ErrCollateral, err)
	}
	t.Signed, t.Signature = bytes.Clone(signed), sig
	return t, nil
}

func parseTCBInfo(raw json.RawMessage) (*TCBInfo, error) {
	f, err := object(raw, "tcbInfo",
		[]string{"id", "version", "issueDate", "nextUpdate", "fmspc", "pceId", "tcbType", "tcbEvaluationDataNumber", "tcbLevels"},
		[]string{"tdxModule", "tdxModuleIdentities"})
	if err != nil {
		return nil, err
	}
	t := &TCBInfo{}
	if t.ID, err = f.str("id"); err != nil {
		return nil, err
	}
	if t.ID != TCBInfoSGX && t.ID != TCBInfoTDX {
		return nil, fmt.Errorf("tcbInfo.id is %q, want %q or %q", t.ID, TCBInfoSGX, TCBInfoTDX)
	}
	v, err := f.uint("version", 1<<31)
	if err != nil {
		return nil, err
	}
	if t.Version = int(v); t.Version != TCBInfoVersion {
		return nil, fmt.Errorf("tcbInfo.version is %d, only %d is supported", t.Version, TCBInfoVersion)
	}
	if t.IssueDate, err = f.date("issueDate"); err != nil {
		return nil, err
	}
	if t.NextUpdate, err = f.date("nextUpdate"); err != nil {
		return nil, err
	}
	if !t.NextUpdate.After(t.IssueDate) {
		return nil, fmt.Errorf("tcbInfo.nextUpdate %s is not after issueDate %s", t.NextUpdate.Format(time.RFC3339), t.IssueDate.Format(time.RFC3339))
	}
	if err := f.hexBytes("fmspc", t.FMSPC[:]); err != nil {
		return nil, err
	}
	if err := f.hexBytes("pceId", t.PCEID[:]); err != nil {
		return nil, err
	}
	tt, err := f.uint("tcbType", 1<<31)
	if err != nil {
		return nil, err
	}
	if t.TCBType = int(tt); t.TCBType != 0 {
		return nil, fmt.Errorf("tcbInfo.tcbType is %d, only 0 is defined", t.TCBType)
	}
	n, err := f.uint("tcbEvaluationDataNumber", 1<<32-1)
	if err != nil {
		return nil, err
	}
	t.TCBEvaluationDataNumber = uint32(n)

	tdx := t.ID == TCBInfoTDX
	switch {
	case tdx && !f.has("tdxModule"):
		return nil, fmt.Errorf("TDX tcbInfo has no tdxModule")
	case !tdx && (f.has("tdxModule") || f.has("tdxModuleIdentities")):
		return nil, fmt.Errorf("SGX tcbInfo has TDX module fields")
	}
	if tdx {
		m, err := object(f.raw("tdxModule"), "tcbInfo.tdxModule", []string{"mrsigner", "attributes", "attributesMask"}, nil)
		if err != nil {
			return nil, err
		}
		t.TDXModule = &TDXModule{}
		if err := parseModule(m, t.TDXModule); err != nil {
			return nil, err
		}
	}
	if f.has("tdxModuleIdentities") {
		ids, err := f.array("tdxModuleIdentities")
		if err != nil {
			return nil, err
		}
		if len(ids) > maxLevels {
			return nil, fmt.Errorf("tcbInfo has %d TDX module identities", len(ids))
		}
		for i, raw := range ids {
			what := fmt.Sprintf("tcbInfo.tdxModuleIdentities[%d]", i)
			m, err := object(raw, what, []string{"id", "mrsigner", "attributes", "attributesMask", "tcbLevels"}, nil)
			if err != nil {
				return nil, err
			}
			var id TDXModuleIdentity
			if id.ID, err = m.str("id"); err != nil {
				return nil, err
			}
			if !validModuleID(id.ID) {
				return nil, fmt.Errorf("%s.id is %q, want TDX_ and two hex digits", what, id.ID)
			}
			for _, other := range t.TDXModuleIdentities {
				if strings.EqualFold(other.ID, id.ID) {
					return nil, fmt.Errorf("%s.id %q appears twice", what, id.ID)
				}
			}
			if err := parseModule(m, &id.TDXModule); err != nil {
				return nil, err
			}
			if id.TCBLevels, err = enclaveLevels(m, "tcbLevels"); err != nil {
				return nil, err
			}
			t.TDXModuleIdentities = append(t.TDXModuleIdentities, id)
		}
	}

	levels, err := f.array("tcbLevels")
	if err != nil {
		return nil, err
	}
	if len(levels) == 0 || len(levels) > maxLevels {
		return nil, fmt.Errorf("tcbInfo has %d TCB levels", len(levels))
	}
	for i, raw := range levels {
		l, err := parseTCBLevel(raw, fmt.Sprintf("tcbInfo.tcbLevels[%d]", i), tdx)
		if err != nil {
			return nil, err
		}
		t.TCBLevels = append(t.TCBLevels, l)
	}
	return t, nil
}

func validModuleID(id string) bool {
	if len(id) != 6 || !strings.HasPrefix(id, "TDX_") {
		return false
	}
	for _, c := range id[4:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

func parseModule(m *fields, dst *TDXModule) error {
	if err := m.hexBytes("mrsigner", dst.MRSigner[:]); err != nil {
		return err
	}
	if err := m.hexBytes("attributes", dst.Attributes[:]); err != nil {
		return err
	}
	return m.hexBytes("attributesMask", dst.AttributesMask[:])
}

func parseTCBLevel(raw json.RawMessage, what string, tdx bool) (TCBLevel, error) {
	var l TCBLevel
	f, err := object(raw, what, []string{"tcb", "tcbDate", "tcbStatus"}, []string{"advisoryIDs"})
	if err != nil {
		return l, err
	}
	tcbKeys := []string{"sgxtcbcomponents", "pcesvn"}
	if tdx {
		tcbKeys = append(tcbKeys, "tdxtcbcomponents")
	}
	tcb, err := object(f.raw("tcb"), what+".tcb", tcbKeys, nil)
	if err != nil {
		return l, err
	}
	if err := components(tcb, "sgxtcbcomponents", &l.SGXComponents); err != nil {
		return l, err
	}
	pcesvn, err := tcb.uint("pcesvn", 0xffff)
	if err != nil {
		return l, err
	}
	l.PCESVN = uint16(pcesvn)
	if tdx {
		if err := components(tcb, "tdxtcbcomponents", &l.TDXComponents); err != nil {
			return l, err
		}
		l.HasTDX = true
	}
	if l.TCBDate, err = f.date("tcbDate"); err != nil {
		return l, err
	}
	if l.Status, err = status(f, "tcbStatus", platformStatuses); err != nil {
		return l, err
	}
	if f.has("advisoryIDs") {
		if l.AdvisoryIDs, err = f.strings("advisoryIDs"); err != nil {
			return l, err
		}
	}
	return l, nil
}

// components reads the 16 {"svn":n[,"category":…][,"type":…]} of a TCB.
func components(tcb *fields, key string, dst *[16]uint8) error {
	elems, err := tcb.array(key)
	if err != nil {
		return err
	}
	if len(elems) != len(dst) {
		return fmt.Errorf("%s has %d components, want %d", tcb.name(key), len(elems), len(dst))
	}
	for i, e := range elems {
		c, err := object(e, fmt.Sprintf("%s[%d]", tcb.name(key), i), []string{"svn"}, []string{"category", "type"})
		if err != nil {
			return err
		}
		for _, k := range []string{"category", "type"} {
			if c.has(k) {
				if _, err := c.str(k); err != nil {
					return err
				}
			}
		}
		svn, err := c.uint("svn", 0xff)
		if err != nil {
			return err
		}
		dst[i] = uint8(svn)
	}
	return nil
}

func status(f *fields, key string, valid []Status) (Status, error) {
	s, err := f.str(key)
	if err != nil {
		return "", err
	}
	if !slices.Contains(valid, Status(s)) {
		return "", fmt.Errorf("%s is %q, not a status Intel defines here", f.name(key), s)
	}
	return Status(s), nil
}

// enclaveLevels reads the tcbLevels of a QE or TDX module identity.
func enclaveLevels(f *fields, key string) ([]EnclaveTCBLevel, error) {
	elems, err := f.array(key)
	if err != nil {
		return nil, err
	}
	if len(elems) == 0 || len(elems) > maxLevels {
		return nil, fmt.Errorf("%s has %d TCB levels", f.name(key), len(elems))
	}
	out := make([]EnclaveTCBLevel, 0, len(elems))
	for i, e := range elems {
		what := fmt.Sprintf("%s[%d]", f.name(key), i)
		lf, err := object(e, what, []string{"tcb", "tcbDate", "tcbStatus"}, []string{"advisoryIDs"})
		if err != nil {
			return nil, err
		}
		tcb, err := object(lf.raw("tcb"), what+".tcb", []string{"isvsvn"}, nil)
		if err != nil {
			return nil, err
		}
		var l EnclaveTCBLevel
		svn, err := tcb.uint("isvsvn", 0xffff)
		if err != nil {
			return nil, err
		}
		l.ISVSVN = uint16(svn)
		if l.TCBDate, err = lf.date("tcbDate"); err != nil {
			return nil, err
		}
		if l.Status, err = status(lf, "tcbStatus", enclaveStatuses); err != nil {
			return nil, err
		}
		if lf.has("advisoryIDs") {
			if l.AdvisoryIDs, err = lf.strings("advisoryIDs"); err != nil {
				return nil, err
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// Match is a platform's TCB level.
type Match struct {
	// Level is the matched level and Index its position in TCBLevels.
	Level TCBLevel
	Index int
	// SGXLevel is the first level whose SGX components and PCESVN the PCK
	// certificate's TCB meets, whatever its TDX components (Intel's "SGX
	// TCB level", which its TD relaunch check consults); Level for SGX.
	SGXLevel TCBLevel
	// Module is the TDX module identity that applied and ModuleLevel its
	// matched level (TDX with TEE_TCB_SVN[1] > 0 only).
	Module      *TDXModuleIdentity
	ModuleLevel *EnclaveTCBLevel
}

// Match finds the platform's TCB level as Intel's quote verification
// library does: the first level (in the document's order) whose 16 SGX
// components and PCESVN the PCK certificate's TCB meets or exceeds and, for
// TDX, whose TDX components TEE_TCB_SVN meets or exceeds, skipping
// components 0 and 1 when TEE_TCB_SVN[1] (the TDX module's major version)
// is not 0: that module is then evaluated against the TDX module identity
// "TDX_<major version as two hex digits>", whose levels match on
// TEE_TCB_SVN[0]. It also checks the TD report's MRSIGNERSEAM and
// SEAMATTRIBUTES against that identity (or tdxModule for module version 0):
// MRSIGNERSEAM equal, SEAMATTRIBUTES zero and equal to the attributes.
// tdx must be nil for SGX TCB info and non-nil for TDX.
// Refusals wrap ErrNoMatchingTCBLevel, attest.ErrSignature for a TDX module
// that is not Intel's, or ErrCollateral for TCB info without the module
// identities a TD of module version > 0 needs.
func (t *TCBInfo) Match(pck PCKTCB, tdx *TDXTCB) (*Match, error) {
	isTDX := t.ID == TCBInfoTDX
	switch {
	case isTDX && tdx == nil:
		return nil, fmt.Errorf("dcap: TDX TCB info needs the TD report's TCB")
	case !isTDX && tdx != nil:
		return nil, fmt.Errorf("dcap: SGX TCB info cannot evaluate a TD")
	}
	m := &Match{Index: -1}
	sgxMet := false
	for i, l := range t.TCBLevels {
		if !meets(pck.CompSVN[:], l.SGXComponents[:]) || pck.PCESVN < l.PCESVN {
			continue
		}
		if !sgxMet {
			m.SGXLevel, sgxMet = l, true
		}
		if isTDX {
			from := 0
			if tdx.TEETCBSVN[1] > 0 {
				from = 2 // the module's SVN and version are judged by its identity
			}
			if !meets(tdx.TEETCBSVN[from:], l.TDXComponents[from:]) {
				continue
			}
		}
		m.Level, m.Index = l, i
		break
	}
	if m.Index < 0 {
		what := "SGX"
		if isTDX {
			what = "TDX"
		}
		detail := fmt.Sprintf("PCK TCB components %s, PCESVN %d", svns(pck.CompSVN[:]), pck.PCESVN)
		if isTDX && sgxMet {
			detail = fmt.Sprintf("TEE_TCB_SVN %s (the SGX components meet a level)", svns(tdx.TEETCBSVN[:]))
		}
		return nil, fmt.Errorf("%s TCB info for FMSPC %x failed TCB status check: %w for %s: the platform is older than every level Intel lists (TCB not supported)",
			what, t.FMSPC, ErrNoMatchingTCBLevel, detail)
	}
	if isTDX {
		if err := t.matchModule(tdx, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// matchModule checks the TDX module against tdxModule or, for a module
// major version above 0, its identity, and matches the identity's level.
func (t *TCBInfo) matchModule(tdx *TDXTCB, m *Match) error {
	want := *t.TDXModule
	version, svn := tdx.TEETCBSVN[1], tdx.TEETCBSVN[0]
	if version > 0 {
		if len(t.TDXModuleIdentities) == 0 {
			return fmt.Errorf("%w: the TD's TDX module is major version %d but the TCB info for FMSPC %x lists no tdxModuleIdentities (fetch current TCB info)",
				ErrCollateral, version, t.FMSPC)
		}
		if m.Module = t.moduleIdentity(version); m.Module == nil {
			return fmt.Errorf("%w: TDX module major version %d has no identity %s in the TCB info for FMSPC %x: the TDX module is not one Intel lists",
				attest.ErrSignature, version, moduleID(version), t.FMSPC)
		}
		want = m.Module.TDXModule
	}
	if tdx.MRSignerSEAM != want.MRSigner {
		return fmt.Errorf("%w: TD report MRSIGNERSEAM %x is not the TDX module signer %x Intel lists: the TDX module is not Intel's",
			attest.ErrSignature, tdx.MRSignerSEAM, want.MRSigner)
	}
	if tdx.SEAMAttributes != ([8]byte{}) || tdx.SEAMAttributes != want.Attributes {
		return fmt.Errorf("%w: TD report SEAMATTRIBUTES %x, want zero and equal to the TDX module attributes %x Intel lists",
			attest.ErrSignature, tdx.SEAMAttributes, want.Attributes)
	}
	if m.Module == nil {
		return nil
	}
	for i := range m.Module.TCBLevels {
		if l := &m.Module.TCBLevels[i]; uint16(svn) >= l.ISVSVN {
			m.ModuleLevel = l
			return nil
		}
	}
	return fmt.Errorf("TDX module %s SVN %d: %w in its identity (TCB not supported)", m.Module.ID, svn, ErrNoMatchingTCBLevel)
}

// moduleID is the ID of the TDX module identity of a major version.
func moduleID(version uint8) string { return fmt.Sprintf("TDX_%02X", version) }

// moduleIdentity returns the TDX module identity of a major version, or
// nil (IDs compare case-insensitively, as Intel's QVL does).
func (t *TCBInfo) moduleIdentity(version uint8) *TDXModuleIdentity {
	id := moduleID(version)
	for i := range t.TDXModuleIdentities {
		if strings.EqualFold(t.TDXModuleIdentities[i].ID, id) {
			return &t.TDXModuleIdentities[i]
		}
	}
	return nil
}

// meets reports whether every have[i] >= want[i].
func meets(have, want []uint8) bool {
	for i := range want {
		if have[i] < want[i] {
			return false
		}
	}
	return true
}

func svns(b []uint8) string {
	parts := make([]string, len(b))
	for i, v := range b {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
