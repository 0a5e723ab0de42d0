package azure

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/trustbound/trustbound/attest"
)

// MaxEvidenceSize bounds the az-snp-vtpm JSON. Real evidence is 8 KB (schema
// 1 and 2) to 37 KB (schema 0, which writes bytes as arrays of numbers).
const MaxEvidenceSize = 256 << 10

// PCRCount is the number of PCRs of the Azure vTPM.
const PCRCount = 24

// Evidence is the JSON evidence of the Confidential Containers az-snp-vtpm
// attester, decoded. Schema 0 has no version field and writes bytes as JSON
// arrays of numbers and the VCEK as PEM; schemas 1 and 2 write the HCL
// report and the VCEK (DER) as padded URL-safe base64 and the quote as hex.
// Schema 2 also promises that the runtime claims' user-data holds the
// nonce of the quote.
type Evidence struct {
	// Version is the schema: 0, 1 or 2.
	Version int
	// HCLReport is the HCL report as read from vTPM NV index 0x01400001.
	HCLReport []byte
	// VCEK is the DER VCEK certificate of the SNP report.
	VCEK []byte
	// Quote is the vTPM quote over the PCRs.
	Quote TPMQuote
}

// TPMQuote is a vTPM quote as the evidence carries it.
type TPMQuote struct {
	// Signature is the raw RSASSA-PKCS1-v1_5 signature by the AK (the
	// signature field of the TPMT_SIGNATURE, without its header).
	Signature []byte
	// Message is the signed TPMS_ATTEST structure.
	Message []byte
	// PCRs are the values of the PCRs the quote selects, in PCR order.
	PCRs [][]byte
}

// ParseEvidence decodes az-snp-vtpm JSON strictly: exact, case-sensitive
// field names, no unknown or duplicate fields, no data after the JSON
// value, canonical base64 and hex, at most MaxEvidenceSize bytes, PCR values
// of 32 bytes (the SHA-256 bank). Errors wrap attest.ErrMalformed.
func ParseEvidence(data []byte) (*Evidence, error) {
	top, versioned, err := probeEvidence(data, "az-snp-vtpm evidence")
	if err != nil {
		return nil, err
	}
	if versioned {
		return parseEvidenceV1(top)
	}
	return parseEvidenceV0(top)
}

// probeEvidence checks that data, the evidence named what, is of at most
// MaxEvidenceSize bytes, not empty, strict JSON and an object, and reports
// whether it has a "version" member (schema 0 has none). It returns the
// object's members.
func probeEvidence(data []byte, what string) (top map[string]json.RawMessage, versioned bool, err error) {
	if len(data) > MaxEvidenceSize {
		return nil, false, fmt.Errorf("%w: %s is %d bytes, more than the %d allowed", attest.ErrMalformed, what, len(data), MaxEvidenceSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, false, fmt.Errorf("%w: %s is empty", attest.ErrMalformed, what)
	}
	top, err = scanJSON(data)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s is not strict JSON: %w", attest.ErrMalformed, what, err)
	}
	if top == nil {
		return nil, false, fmt.Errorf("%w: %s is not a JSON object", attest.ErrMalformed, what)
	}
	_, versioned = top["version"]
	return top, versioned, nil
}

// parseEvidenceV0 decodes {"quote":{"signature","message","pcrs"},"report","vcek"}.
func parseEvidenceV0(top map[string]json.RawMessage) (*Evidence, error) {
	m, err := members(top, "az-snp-vtpm evidence (schema 0, without a version)", []string{"quote", "report", "vcek"}, nil)
	if err != nil {
		return nil, err
	}
	e := &Evidence{Version: 0}
	if e.HCLReport, err = jsonBytes(m["report"], "report"); err != nil {
		return nil, err
	}
	vcekPEM, err := jsonString(m["vcek"], "vcek")
	if err != nil {
		return nil, err
	}
	if e.VCEK, err = decodeCertPEM(vcekPEM); err != nil {
		return nil, err
	}
	if e.Quote, err = tpmQuote(m["quote"], "quote", jsonBytes); err != nil {
		return nil, err
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

// parseEvidenceV1 decodes {"version":1|2,"tpm_quote":{…hex…},"hcl_report","vcek"}.
func parseEvidenceV1(top map[string]json.RawMessage) (*Evidence, error) {
	m, err := members(top, "az-snp-vtpm evidence (schema 1 or 2)", []string{"version", "tpm_quote", "hcl_report", "vcek"}, nil)
	if err != nil {
		return nil, err
	}
	e := &Evidence{}
	switch string(m["version"]) {
	case "1":
		e.Version = 1
	case "2":
		e.Version = 2
	default:
		return nil, fmt.Errorf("%w: az-snp-vtpm evidence version %s is not supported (want 1 or 2, or no version for schema 0)", attest.ErrMalformed, m["version"])
	}
	if e.HCLReport, err = base64URL(m["hcl_report"], "hcl_report"); err != nil {
		return nil, err
	}
	if e.VCEK, err = base64URL(m["vcek"], "vcek"); err != nil {
		return nil, err
	}
	if e.Quote, err = tpmQuote(m["tpm_quote"], "tpm_quote", hexString); err != nil {
		return nil, err
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

// tpmQuote decodes {"signature","message","pcrs"} with decode for each
// byte string: jsonBytes for schema 0, hexString for the later schemas.
func tpmQuote(raw json.RawMessage, what string, decode func(json.RawMessage, string) ([]byte, error)) (TPMQuote, error) {
	var q TPMQuote
	m, err := object(raw, what, []string{"signature", "message", "pcrs"}, nil)
	if err != nil {
		return q, err
	}
	if q.Signature, err = decode(m["signature"], what+".signature"); err != nil {
		return q, err
	}
	if q.Message, err = decode(m["message"], what+".message"); err != nil {
		return q, err
	}
	pcrs, err := jsonArray(m["pcrs"], what+".pcrs")
	if err != nil {
		return q, err
	}
	for i, p := range pcrs {
		v, err := decode(p, fmt.Sprintf("%s.pcrs[%d]", what, i))
		if err != nil {
			return q, err
		}
		q.PCRs = append(q.PCRs, v)
	}
	return q, nil
}

// check bounds the decoded fields.
func (e *Evidence) check() error {
	switch {
	case len(e.HCLReport) == 0:
		return fmt.Errorf("%w: the evidence has no HCL report", attest.ErrMalformed)
	case len(e.Quote.Message) == 0 || len(e.Quote.Signature) == 0:
		return fmt.Errorf("%w: the evidence's TPM quote has no message or no signature", attest.ErrMalformed)
	case len(e.Quote.Signature) > 512:
		return fmt.Errorf("%w: the TPM quote signature is %d bytes, longer than an RSA-4096 signature", attest.ErrMalformed, len(e.Quote.Signature))
	case len(e.Quote.PCRs) == 0 || len(e.Quote.PCRs) > PCRCount:
		return fmt.Errorf("%w: the evidence has %d PCR values, want 1 to %d", attest.ErrMalformed, len(e.Quote.PCRs), PCRCount)
	}
	for i, p := range e.Quote.PCRs {
		if len(p) != 32 {
			return fmt.Errorf("%w: PCR value %d is %d bytes, want 32 (SHA-256 bank)", attest.ErrMalformed, i, len(p))
		}
	}
	return nil
}

// decodeCertPEM returns the DER of the one CERTIFICATE block in s.
func decodeCertPEM(s string) ([]byte, error) {
	blk, rest := pem.Decode([]byte(s))
	// pem.Decode skips anything before the block: refuse it.
	if !strings.HasPrefix(s, "-----BEGIN ") || blk == nil || blk.Type != "CERTIFICATE" || len(blk.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: vcek is not exactly one PEM CERTIFICATE block", attest.ErrMalformed)
	}
	return blk.Bytes, nil
}

// base64URL decodes a JSON string of padded, canonical URL-safe base64 (what
// serde_with's Base64<UrlSafe> writes).
func base64URL(raw json.RawMessage, what string) ([]byte, error) {
	s, err := jsonString(raw, what)
	if err != nil {
		return nil, err
	}
	b, err := base64.URLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not padded URL-safe base64: %w", attest.ErrMalformed, what, err)
	}
	if base64.URLEncoding.EncodeToString(b) != s { // the decoder skips line breaks
		return nil, fmt.Errorf("%w: %s is not canonical padded URL-safe base64", attest.ErrMalformed, what)
	}
	return b, nil
}

// hexString decodes a JSON string of hex digits.
func hexString(raw json.RawMessage, what string) ([]byte, error) {
	s, err := jsonString(raw, what)
	if err != nil {
		return nil, err
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not hex: %w", attest.ErrMalformed, what, err)
	}
	return b, nil
}
