package dcap

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trustbound/trustbound/attest"
)

// Enclave identity IDs and the only version read.
const (
	QEIdentitySGX     = "QE"
	QEIdentityTDX     = "TD_QE"
	QEIdentityVersion = 2
)

// ParseQEIdentity reads a QE identity body as Intel PCS v4 serves it,
// {"enclaveIdentity":{…},"signature":"<hex>"}, strictly: exact keys, no
// duplicates, version 2, ID QE or TD_QE, known statuses. It does not verify
// the signature or the dates. Refusals wrap ErrCollateral.
func ParseQEIdentity(body []byte) (*QEIdentity, error) {
	signed, sig, err := signedBody(body, "enclaveIdentity")
	if err != nil {
		return nil, fmt.Errorf("%w: QE identity: %w", ErrCollateral, err)
	}
	q, err := parseQEIdentity(signed)
	if err != nil {
		return nil, fmt.Errorf("%w: QE identity: %w", ErrCollateral, err)
	}
	q.Signed, q.Signature = bytes.Clone(signed), sig
	return q, nil
}

func parseQEIdentity(raw json.RawMessage) (*QEIdentity, error) {
	f, err := object(raw, "enclaveIdentity",
		[]string{"id", "version", "issueDate", "nextUpdate", "tcbEvaluationDataNumber", "miscselect", "miscselectMask",
			"attributes", "attributesMask", "mrsigner", "isvprodid", "tcbLevels"}, nil)
	if err != nil {
		return nil, err
	}
	q := &QEIdentity{}
	if q.ID, err = f.str("id"); err != nil {
		return nil, err
	}
	if q.ID != QEIdentitySGX && q.ID != QEIdentityTDX {
		return nil, fmt.Errorf("enclaveIdentity.id is %q, want %q or %q", q.ID, QEIdentitySGX, QEIdentityTDX)
	}
	v, err := f.uint("version", 1<<31)
	if err != nil {
		return nil, err
	}
	if q.Version = int(v); q.Version != QEIdentityVersion {
		return nil, fmt.Errorf("enclaveIdentity.version is %d, only %d is supported", q.Version, QEIdentityVersion)
	}
	if q.IssueDate, err = f.date("issueDate"); err != nil {
		return nil, err
	}
	if q.NextUpdate, err = f.date("nextUpdate"); err != nil {
		return nil, err
	}
	if !q.NextUpdate.After(q.IssueDate) {
		return nil, fmt.Errorf("enclaveIdentity.nextUpdate %s is not after issueDate %s", q.NextUpdate.Format(time.RFC3339), q.IssueDate.Format(time.RFC3339))
	}
	n, err := f.uint("tcbEvaluationDataNumber", 1<<32-1)
	if err != nil {
		return nil, err
	}
	q.TCBEvaluationDataNumber = uint32(n)
	for key, dst := range map[string][]byte{
		"miscselect": q.MiscSelect[:], "miscselectMask": q.MiscSelectMask[:],
		"attributes": q.Attributes[:], "attributesMask": q.AttributesMask[:],
		"mrsigner": q.MRSigner[:],
	} {
		if err := f.hexBytes(key, dst); err != nil {
			return nil, err
		}
	}
	prod, err := f.uint("isvprodid", 0xffff)
	if err != nil {
		return nil, err
	}
	q.ISVProdID = uint16(prod)
	if q.TCBLevels, err = enclaveLevels(f, "tcbLevels"); err != nil {
		return nil, err
	}
	return q, nil
}

// Check compares the QE report with the identity as Intel's quote
// verification library does — MISCSELECT and ATTRIBUTES under their masks,
// MRSIGNER and ISVPRODID equal — and returns the QE's TCB level: the first
// whose ISVSVN the report's meets. A mismatch wraps attest.ErrSignature (the
// quoting enclave is not Intel's); an ISVSVN below every level wraps
// ErrNoMatchingTCBLevel.
func (q *QEIdentity) Check(r QEReport) (*EnclaveTCBLevel, error) {
	var misc [4]byte
	binary.LittleEndian.PutUint32(misc[:], r.MiscSelect)
	for i := range misc {
		if misc[i]&q.MiscSelectMask[i] != q.MiscSelect[i] {
			return nil, fmt.Errorf("%w: the quoting enclave is not Intel's: QE report MISCSELECT %x under mask %x is not %x (%s identity)",
				attest.ErrSignature, misc, q.MiscSelectMask, q.MiscSelect, q.ID)
		}
	}
	for i := range r.Attributes {
		if r.Attributes[i]&q.AttributesMask[i] != q.Attributes[i] {
			return nil, fmt.Errorf("%w: the quoting enclave is not Intel's: QE report ATTRIBUTES %x under mask %x are not %x (%s identity)",
				attest.ErrSignature, r.Attributes, q.AttributesMask, q.Attributes, q.ID)
		}
	}
	if r.MRSigner != q.MRSigner {
		return nil, fmt.Errorf("%w: the quoting enclave is not Intel's: QE report MRSIGNER %x, Intel's %s identity says %x",
			attest.ErrSignature, r.MRSigner, q.ID, q.MRSigner)
	}
	if r.ISVProdID != q.ISVProdID {
		return nil, fmt.Errorf("%w: the quoting enclave is not Intel's: QE report ISVPRODID %d, Intel's %s identity says %d",
			attest.ErrSignature, r.ISVProdID, q.ID, q.ISVProdID)
	}
	for i := range q.TCBLevels {
		if l := &q.TCBLevels[i]; r.ISVSVN >= l.ISVSVN {
			return l, nil
		}
	}
	return nil, fmt.Errorf("quoting enclave ISVSVN %d: %w in Intel's %s identity (TCB not supported)", r.ISVSVN, ErrNoMatchingTCBLevel, q.ID)
}
