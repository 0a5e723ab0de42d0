package collateral

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest/dcap"
)

// qvlCollateral is the collateral JSON layout of github.com/Phala-Network/dcap-qvl
// (its QuoteCollateralV3 as in its sample/*_collateral.json): issuer chains
// as PEM strings, CRLs and signatures as hex strings (a JSON array of
// bytes is accepted too), tcb_info and qe_identity as the raw JSON text of
// the signed object, without its {"tcbInfo":…,"signature":…} envelope.
type qvlCollateral struct {
	PCKCRLIssuerChain     string   `json:"pck_crl_issuer_chain"`
	RootCACRL             qvlBytes `json:"root_ca_crl"`
	PCKCRL                qvlBytes `json:"pck_crl"`
	TCBInfoIssuerChain    string   `json:"tcb_info_issuer_chain"`
	TCBInfo               string   `json:"tcb_info"`
	TCBInfoSignature      qvlBytes `json:"tcb_info_signature"`
	QEIdentityIssuerChain string   `json:"qe_identity_issuer_chain"`
	QEIdentity            string   `json:"qe_identity"`
	QEIdentitySignature   qvlBytes `json:"qe_identity_signature"`
	// PCKCertificateChain is written by newer dcap-qvl releases: the PCK
	// chain of one quote, evidence rather than collateral; it is accepted
	// and not kept.
	PCKCertificateChain *string `json:"pck_certificate_chain,omitempty"`
}

// qvlBytes is bytes written as a hex string or a JSON array of bytes.
type qvlBytes []byte

func (b *qvlBytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		d, err := hex.DecodeString(s)
		if err != nil {
			return fmt.Errorf("not hex: %v", err)
		}
		*b = d
		return nil
	}
	var a []int
	if err := json.Unmarshal(data, &a); err != nil {
		return errors.New("neither a hex string nor an array of bytes")
	}
	d := make([]byte, len(a))
	for i, v := range a {
		if v < 0 || v > 255 {
			return fmt.Errorf("array element %d is %d, not a byte", i, v)
		}
		d[i] = byte(v)
	}
	*b = d
	return nil
}

// isQVL reports whether data looks like dcap-qvl collateral rather than a
// bundle: a JSON object with tcb_info and no format.
func isQVL(data []byte) bool {
	var probe struct {
		Format  json.RawMessage `json:"format"`
		TCBInfo json.RawMessage `json:"tcb_info"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Format == nil && probe.TCBInfo != nil
}

// parseQVL strictly decodes dcap-qvl collateral and returns it as the
// entries PCS would have served, filed under their PCS URLs:
//
//   - the TCB info body {"tcbInfo":<tcb_info>,"signature":"<hex>"} at the
//     TCB info URL of the kind ("id": "SGX" or "TDX") and FMSPC of
//     tcb_info, with tcb_info_issuer_chain as TCB-Info-Issuer-Chain;
//   - {"enclaveIdentity":<qe_identity>,"signature":"<hex>"} at the QE
//     identity URL of that kind (its "id" must be QE for SGX, TD_QE for
//     TDX), with qe_identity_issuer_chain as
//     SGX-Enclave-Identity-Issuer-Chain;
//   - the DER pck_crl at the PCK CRL URL of the CA that issued it, with
//     pck_crl_issuer_chain as SGX-PCK-CRL-Issuer-Chain;
//   - the DER root_ca_crl at the Intel SGX Root CA CRL URL.
//
// The signatures are written as lower-case hex, as PCS writes them. Each
// entry counts as fetched when it was issued (issueDate, thisUpdate).
func parseQVL(data []byte) ([]*entry, error) {
	var c qvlCollateral
	if err := api.DecodeStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%w: dcap-qvl collateral: %v", ErrMalformed, err)
	}
	es, err := qvlEntries(&c)
	if err != nil {
		return nil, fmt.Errorf("%w: dcap-qvl collateral: %w", ErrMalformed, err)
	}
	for _, e := range es {
		k, err := classify(e.url)
		if err != nil {
			return nil, fmt.Errorf("%w: dcap-qvl collateral: %w", ErrMalformed, err)
		}
		if err := validateEntry(k, e.url, e.body, e.headers); err != nil {
			return nil, fmt.Errorf("dcap-qvl collateral: %w", err)
		}
	}
	return es, nil
}

func qvlEntries(c *qvlCollateral) ([]*entry, error) {
	for name, v := range map[string]int{
		"pck_crl_issuer_chain": len(c.PCKCRLIssuerChain), "root_ca_crl": len(c.RootCACRL), "pck_crl": len(c.PCKCRL),
		"tcb_info_issuer_chain": len(c.TCBInfoIssuerChain), "tcb_info": len(c.TCBInfo), "tcb_info_signature": len(c.TCBInfoSignature),
		"qe_identity_issuer_chain": len(c.QEIdentityIssuerChain), "qe_identity": len(c.QEIdentity), "qe_identity_signature": len(c.QEIdentitySignature),
	} {
		if v == 0 {
			return nil, fmt.Errorf("%s is missing or empty", name)
		}
	}

	tcb, tcbIssued, err := qvlSigned(c.TCBInfo, "tcb_info")
	if err != nil {
		return nil, err
	}
	var tee dcap.Kind
	switch tcb.ID {
	case idSGX:
		tee = dcap.SGX
	case idTDX:
		tee = dcap.TDX
	default:
		return nil, fmt.Errorf(`tcb_info "id" is %q, want %q or %q (TCB info v3)`, tcb.ID, idSGX, idTDX)
	}
	var fmspc [6]byte
	if len(tcb.FMSPC) != 12 {
		return nil, fmt.Errorf("tcb_info fmspc %q is not 6 bytes of hex", tcb.FMSPC)
	}
	if _, err := hex.Decode(fmspc[:], []byte(tcb.FMSPC)); err != nil {
		return nil, fmt.Errorf("tcb_info fmspc %q is not 6 bytes of hex", tcb.FMSPC)
	}

	qe, qeIssued, err := qvlSigned(c.QEIdentity, "qe_identity")
	if err != nil {
		return nil, err
	}
	if want := map[dcap.Kind]string{dcap.SGX: idQE, dcap.TDX: idTDQE}[tee]; qe.ID != want {
		return nil, fmt.Errorf(`qe_identity "id" is %q, want %q for %s TCB info`, qe.ID, want, tcb.ID)
	}

	pckCRL := derOf(c.PCKCRL, "X509 CRL")
	crl, err := parseCRL(pckCRL)
	if err != nil {
		return nil, fmt.Errorf("pck_crl: %v", err)
	}
	var ca dcap.CA
	switch crl.Issuer.CommonName {
	case cnProcessorCA:
		ca = dcap.ProcessorCA
	case cnPlatformCA:
		ca = dcap.PlatformCA
	default:
		return nil, fmt.Errorf("pck_crl is issued by %q, not a PCK CA", crl.Issuer.CommonName)
	}
	rootCRL := derOf(c.RootCACRL, "X509 CRL")
	root, err := parseCRL(rootCRL)
	if err != nil {
		return nil, fmt.Errorf("root_ca_crl: %v", err)
	}

	return []*entry{
		newEntryHeaders(tcbInfoURL(tee, fmspc), signedBody(fieldTCBInfo, c.TCBInfo, c.TCBInfoSignature),
			map[string]string{hdrTCBInfoChain: c.TCBInfoIssuerChain}, tcbIssued),
		newEntryHeaders(qeIdentityURL(tee), signedBody(fieldIdentity, c.QEIdentity, c.QEIdentitySignature),
			map[string]string{hdrQEIdentityChain: c.QEIdentityIssuerChain}, qeIssued),
		newEntryHeaders(pckCRLURL(ca), pckCRL, map[string]string{hdrPCKCRLChain: c.PCKCRLIssuerChain}, crl.ThisUpdate),
		newEntryHeaders(rootCACRLURL, rootCRL, nil, root.ThisUpdate),
	}, nil
}

// qvlSigned reads the head of a raw tcb_info or qe_identity: exactly one
// JSON object, nothing around it (it is signed byte for byte).
func qvlSigned(raw, name string) (signedHead, time.Time, error) {
	var h signedHead
	b := []byte(raw)
	if !json.Valid(b) || len(bytes.TrimSpace(b)) != len(b) {
		return h, time.Time{}, fmt.Errorf("%s is not exactly one JSON object", name)
	}
	if _, err := parseHead(b, &h); err != nil {
		return h, time.Time{}, fmt.Errorf("%s: %v", name, err)
	}
	issued, err := time.Parse(time.RFC3339, h.IssueDate)
	if err != nil {
		return h, time.Time{}, fmt.Errorf("%s issueDate: %v", name, err)
	}
	return h, issued, nil
}

// signedBody is the body PCS serves for a signed object:
// {"<field>":<raw>,"signature":"<hex>"}.
func signedBody(field, raw string, sig []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(raw) + 2*len(sig) + 40)
	b.WriteString(`{"`)
	b.WriteString(field)
	b.WriteString(`":`)
	b.WriteString(raw)
	b.WriteString(`,"signature":"`)
	b.WriteString(hex.EncodeToString(sig))
	b.WriteString(`"}`)
	return b.Bytes()
}
