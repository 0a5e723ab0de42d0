// Package dcapdoc writes Intel DCAP collateral documents — TCB info and
// QE identities as the "tcbInfo" and "enclaveIdentity" JSON values Intel
// signs, and the signed bodies Intel serves — so that attest/dcap's real
// code verifies them. It is shared by the test fake (attest/dcap/dcaptest)
// and the simulated Intel of attest/simtee, which signs its collateral at
// run time; it signs with whatever key it is given and vouches for nothing.
package dcapdoc

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest/dcap"
)

// Sign returns the body Intel serves for a signed document:
// {"<key>":<doc>,"signature":"<hex r||s>"}, signed by k over doc's bytes.
func Sign(key string, doc []byte, k *ecdsa.PrivateKey) ([]byte, error) {
	h := sha256.Sum256(doc)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		return nil, err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	k0, _ := json.Marshal(key)
	out := append([]byte("{"), k0...)
	out = append(out, ':')
	out = append(out, doc...)
	out = append(out, `,"signature":"`...)
	out = append(out, hex.EncodeToString(sig[:])...)
	return append(out, `"}`...), nil
}

// The JSON shapes of Intel's documents, in Intel's key order.
type (
	svnJSON struct {
		SVN uint8 `json:"svn"`
	}
	tcbJSON struct {
		SGX    []svnJSON `json:"sgxtcbcomponents"`
		PCESVN uint16    `json:"pcesvn"`
		TDX    []svnJSON `json:"tdxtcbcomponents,omitempty"`
	}
	levelJSON struct {
		TCB         tcbJSON  `json:"tcb"`
		TCBDate     string   `json:"tcbDate"`
		TCBStatus   string   `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
	}
	isvJSON struct {
		ISVSVN uint16 `json:"isvsvn"`
	}
	enclaveLevelJSON struct {
		TCB         isvJSON  `json:"tcb"`
		TCBDate     string   `json:"tcbDate"`
		TCBStatus   string   `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
	}
	moduleJSON struct {
		MRSigner       string `json:"mrsigner"`
		Attributes     string `json:"attributes"`
		AttributesMask string `json:"attributesMask"`
	}
	moduleIDJSON struct {
		ID             string             `json:"id"`
		MRSigner       string             `json:"mrsigner"`
		Attributes     string             `json:"attributes"`
		AttributesMask string             `json:"attributesMask"`
		TCBLevels      []enclaveLevelJSON `json:"tcbLevels"`
	}
	tcbInfoJSON struct {
		ID                      string         `json:"id"`
		Version                 int            `json:"version"`
		IssueDate               string         `json:"issueDate"`
		NextUpdate              string         `json:"nextUpdate"`
		FMSPC                   string         `json:"fmspc"`
		PCEID                   string         `json:"pceId"`
		TCBType                 int            `json:"tcbType"`
		TCBEvaluationDataNumber uint32         `json:"tcbEvaluationDataNumber"`
		TDXModule               *moduleJSON    `json:"tdxModule,omitempty"`
		TDXModuleIdentities     []moduleIDJSON `json:"tdxModuleIdentities,omitempty"`
		TCBLevels               []levelJSON    `json:"tcbLevels"`
	}
	qeIdentityJSON struct {
		ID                      string             `json:"id"`
		Version                 int                `json:"version"`
		IssueDate               string             `json:"issueDate"`
		NextUpdate              string             `json:"nextUpdate"`
		TCBEvaluationDataNumber uint32             `json:"tcbEvaluationDataNumber"`
		MiscSelect              string             `json:"miscselect"`
		MiscSelectMask          string             `json:"miscselectMask"`
		Attributes              string             `json:"attributes"`
		AttributesMask          string             `json:"attributesMask"`
		MRSigner                string             `json:"mrsigner"`
		ISVProdID               uint16             `json:"isvprodid"`
		TCBLevels               []enclaveLevelJSON `json:"tcbLevels"`
	}
)

func date(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func up(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func svnList(c [16]uint8) []svnJSON {
	out := make([]svnJSON, len(c))
	for i, v := range c {
		out[i].SVN = v
	}
	return out
}

func enclaveLevels(ls []dcap.EnclaveTCBLevel) []enclaveLevelJSON {
	out := make([]enclaveLevelJSON, len(ls))
	for i, l := range ls {
		out[i] = enclaveLevelJSON{isvJSON{l.ISVSVN}, date(l.TCBDate), string(l.Status), l.AdvisoryIDs}
	}
	return out
}

// MarshalTCBInfo writes t (its Signed and Signature ignored) as the
// "tcbInfo" JSON value Intel signs.
func MarshalTCBInfo(t *dcap.TCBInfo) ([]byte, error) {
	j := tcbInfoJSON{
		ID: t.ID, Version: t.Version, IssueDate: date(t.IssueDate), NextUpdate: date(t.NextUpdate),
		FMSPC: up(t.FMSPC[:]), PCEID: up(t.PCEID[:]), TCBType: t.TCBType, TCBEvaluationDataNumber: t.TCBEvaluationDataNumber,
	}
	if m := t.TDXModule; m != nil {
		j.TDXModule = &moduleJSON{up(m.MRSigner[:]), up(m.Attributes[:]), up(m.AttributesMask[:])}
	}
	for _, id := range t.TDXModuleIdentities {
		j.TDXModuleIdentities = append(j.TDXModuleIdentities, moduleIDJSON{id.ID, up(id.MRSigner[:]), up(id.Attributes[:]),
			up(id.AttributesMask[:]), enclaveLevels(id.TCBLevels)})
	}
	for _, l := range t.TCBLevels {
		lj := levelJSON{TCB: tcbJSON{SGX: svnList(l.SGXComponents), PCESVN: l.PCESVN},
			TCBDate: date(l.TCBDate), TCBStatus: string(l.Status), AdvisoryIDs: l.AdvisoryIDs}
		if l.HasTDX {
			lj.TCB.TDX = svnList(l.TDXComponents)
		}
		j.TCBLevels = append(j.TCBLevels, lj)
	}
	return json.Marshal(j)
}

// MarshalQEIdentity writes q (its Signed and Signature ignored) as the
// "enclaveIdentity" JSON value Intel signs.
func MarshalQEIdentity(q *dcap.QEIdentity) ([]byte, error) {
	return json.Marshal(qeIdentityJSON{
		ID: q.ID, Version: q.Version, IssueDate: date(q.IssueDate), NextUpdate: date(q.NextUpdate),
		TCBEvaluationDataNumber: q.TCBEvaluationDataNumber,
		MiscSelect:              up(q.MiscSelect[:]), MiscSelectMask: up(q.MiscSelectMask[:]),
		Attributes: up(q.Attributes[:]), AttributesMask: up(q.AttributesMask[:]),
		MRSigner: up(q.MRSigner[:]), ISVProdID: q.ISVProdID, TCBLevels: enclaveLevels(q.TCBLevels),
	})
}
