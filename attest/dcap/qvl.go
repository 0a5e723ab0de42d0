package dcap

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// The keys of the collateral JSON of the dcap-qvl project
// (github.com/Phala-Network/dcap-qvl, QuoteCollateralV3 as serde writes it).
var qvlKeys = []string{
	"pck_crl_issuer_chain", "root_ca_crl", "pck_crl",
	"tcb_info_issuer_chain", "tcb_info", "tcb_info_signature",
	"qe_identity_issuer_chain", "qe_identity", "qe_identity_signature",
}

// ParseQVLCollateral reads the collateral JSON of the dcap-qvl project: an
// object of exactly the nine string members pck_crl_issuer_chain (PEM),
// root_ca_crl and pck_crl (hex of DER), tcb_info_issuer_chain, tcb_info
// (the inner tcbInfo JSON as a string), tcb_info_signature (hex r||s),
// qe_identity_issuer_chain, qe_identity and qe_identity_signature; newer
// dcap-qvl releases add pck_certificate_chain (one quote's PCK chain,
// evidence rather than collateral), which is accepted as a string and
// dropped. It
// returns the Collateral in its documented, served form: the CRLs as DER,
// and TCB info and QE identity rebuilt as {"tcbInfo":<tcb_info>,
// "signature":"<hex>"} around the exact bytes the signature covers. Nothing
// is verified here. Refusals wrap ErrCollateral.
func ParseQVLCollateral(b []byte) (*Collateral, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: dcap-qvl collateral: %s", ErrCollateral, fmt.Sprintf(format, args...))
	}
	if err := checkJSON(b); err != nil {
		return nil, bad("%v", err)
	}
	f, err := object(b, "collateral", qvlKeys, []string{"pck_certificate_chain"})
	if err != nil {
		return nil, bad("%v", err)
	}
	if f.has("pck_certificate_chain") {
		if _, err := f.str("pck_certificate_chain"); err != nil {
			return nil, bad("%v", err)
		}
	}
	s := make(map[string]string, len(qvlKeys))
	for _, k := range qvlKeys {
		if s[k], err = f.str(k); err != nil {
			return nil, bad("%v", err)
		}
	}
	c := &Collateral{
		PCKCRLIssuerChain:     []byte(s["pck_crl_issuer_chain"]),
		TCBInfoIssuerChain:    []byte(s["tcb_info_issuer_chain"]),
		QEIdentityIssuerChain: []byte(s["qe_identity_issuer_chain"]),
	}
	for k, dst := range map[string]*[]byte{"pck_crl": &c.PCKCRL, "root_ca_crl": &c.RootCACRL} {
		if *dst, err = hex.DecodeString(s[k]); err != nil || len(*dst) == 0 {
			return nil, bad("%s is not hex of a DER CRL", k)
		}
	}
	for _, d := range []struct {
		doc, sig, key string
		dst           *[]byte
	}{
		{"tcb_info", "tcb_info_signature", "tcbInfo", &c.TCBInfo},
		{"qe_identity", "qe_identity_signature", "enclaveIdentity", &c.QEIdentity},
	} {
		doc := s[d.doc]
		if err := checkJSON([]byte(doc)); err != nil || !strings.HasPrefix(doc, "{") || !strings.HasSuffix(doc, "}") {
			return nil, bad("%s is not one JSON object", d.doc)
		}
		sig, err := hex.DecodeString(s[d.sig])
		if err != nil || len(sig) != 64 {
			return nil, bad("%s is not 64 hex-encoded bytes (r||s)", d.sig)
		}
		body, err := json.Marshal(d.key) // the key, quoted
		if err != nil {
			return nil, bad("%v", err)
		}
		body = append([]byte("{"), body...)
		body = append(body, ':')
		body = append(body, doc...)
		body = append(body, `,"signature":"`...)
		body = append(body, hex.EncodeToString(sig)...)
		*d.dst = append(body, `"}`...)
	}
	return c, nil
}

// StaticSource is a Source that serves one Collateral for every request,
// whatever the kind, FMSPC or CA asked for: evaluation refuses collateral
// for another platform. It suits tests, offline verification of one quote
// (trustbound verify --collateral) and simulated platforms.
type StaticSource struct {
	c *Collateral
}

var _ Source = (*StaticSource)(nil)

// NewStaticSource returns a StaticSource serving c.
func NewStaticSource(c *Collateral) *StaticSource { return &StaticSource{c: c} }

// Collateral returns the collateral the source holds.
func (s *StaticSource) Collateral(ctx context.Context, kind Kind, fmspc [6]byte, ca CA) (*Collateral, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s == nil || s.c == nil {
		return nil, fmt.Errorf("%w: the static source holds no collateral", ErrCollateral)
	}
	return s.c, nil
}
