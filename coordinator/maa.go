package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
)

// The Azure Attestation (MAA) compatible surface: POST /attest/{type} with
// Azure's request and response shapes, so code written for Azure
// Attestation can point at trustbound.

// maaData is Azure's runtimeData / initTimeData: base64url data and its type.
type maaData struct {
	Data     string `json:"data"`
	DataType string `json:"dataType"` // "Binary" or "JSON"
}

// maaRequest is the union of Azure's attest request bodies.
type maaRequest struct {
	Quote                     string   `json:"quote,omitempty"`  // SgxEnclave, TdxVm
	Report                    string   `json:"report,omitempty"` // OpenEnclave, SevSnpVm
	RuntimeData               *maaData `json:"runtimeData,omitempty"`
	InitTimeData              *maaData `json:"initTimeData,omitempty"`
	DraftPolicyForAttestation string   `json:"draftPolicyForAttestation,omitempty"`
	Nonce                     string   `json:"nonce,omitempty"`
	// Evidence is trustbound's extension for AzureGuest: the Confidential
	// Containers az-snp-vtpm / az-tdx-vtpm JSON evidence, base64url.
	Evidence string `json:"evidence,omitempty"`
}

// maaSNPReport is the JSON inside a SevSnpVm request's report.
type maaSNPReport struct {
	SnpReport     string `json:"SnpReport"`
	VcekCertChain string `json:"VcekCertChain"`
	Endorsements  string `json:"Endorsements,omitempty"`
}

// decodeB64 accepts base64url with or without padding, as Azure's clients
// send both.
func decodeB64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%s is not base64url: %w", field, err)
	}
	return b, nil
}

func (d *maaData) bytes(field string) ([]byte, error) {
	if d == nil {
		return nil, nil
	}
	if d.DataType != "" && d.DataType != "Binary" && d.DataType != "JSON" {
		return nil, fmt.Errorf("%s.dataType must be Binary or JSON, got %q", field, d.DataType)
	}
	b, err := decodeB64(field+".data", d.Data)
	if err != nil {
		return nil, err
	}
	if d.DataType == "JSON" && !json.Valid(b) {
		return nil, fmt.Errorf("%s has dataType JSON but is not JSON", field)
	}
	return b, nil
}

// oeHeaderSize is the Open Enclave report header before the SGX quote:
// version (u32, 1), report type (u32, 2 = SGX remote), report size (u64).
const oeHeaderSize = 16

// maaTypes are the attestation types of POST /attest/{type}, with the
// one request member each takes its evidence from.
var maaTypes = map[string]string{
	"SgxEnclave":  "quote",
	"OpenEnclave": "report",
	"SevSnpVm":    "report",
	"TdxVm":       "quote",
	"AzureGuest":  "evidence",
}

// maaEvidence turns an Azure attest request into evidence for the registry.
// The evidence member of another type is refused, not ignored.
func maaEvidence(kind string, req *maaRequest) (*attest.Evidence, error) {
	if want, ok := maaTypes[kind]; ok {
		set := map[string]bool{"quote": req.Quote != "", "report": req.Report != "", "evidence": req.Evidence != ""}
		for _, member := range []string{"quote", "report", "evidence"} {
			if set[member] && member != want {
				return nil, fmt.Errorf("%s takes its evidence in %q, not %q", kind, want, member)
			}
		}
		if !set[want] && want != "evidence" { // AzureGuest explains itself below
			return nil, fmt.Errorf("%s requires %q", kind, want)
		}
	}
	switch kind {
	case "SgxEnclave":
		q, err := decodeB64("quote", req.Quote)
		if err != nil {
			return nil, err
		}
		return &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: q}, nil
	case "OpenEnclave":
		r, err := decodeB64("report", req.Report)
		if err != nil {
			return nil, err
		}
		if len(r) < oeHeaderSize || binary.LittleEndian.Uint32(r) != 1 || binary.LittleEndian.Uint32(r[4:]) != 2 ||
			binary.LittleEndian.Uint64(r[8:]) != uint64(len(r)-oeHeaderSize) {
			return nil, errors.New("report is not an Open Enclave SGX remote report (header version 1, type 2, size of the quote)")
		}
		return &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: r[oeHeaderSize:]}, nil
	case "TdxVm":
		q, err := decodeB64("quote", req.Quote)
		if err != nil {
			return nil, err
		}
		return &attest.Evidence{Format: attest.FormatTDXQuote, Data: q}, nil
	case "SevSnpVm":
		raw, err := decodeB64("report", req.Report)
		if err != nil {
			return nil, err
		}
		var r maaSNPReport
		if err := api.DecodeStrict(raw, &r); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		rep, err := decodeB64("report.SnpReport", r.SnpReport)
		if err != nil {
			return nil, err
		}
		chain, err := decodeB64("report.VcekCertChain", r.VcekCertChain)
		if err != nil {
			return nil, err
		}
		ev := &attest.Evidence{Format: attest.FormatSNPReport, Data: rep}
		for rest := chain; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				if len(bytes.TrimSpace(rest)) != 0 {
					return nil, errors.New("report.VcekCertChain: trailing data after the PEM certificates")
				}
				break
			}
			if blk.Type != "CERTIFICATE" {
				return nil, fmt.Errorf("report.VcekCertChain: PEM block %q", blk.Type)
			}
			ev.Certs = append(ev.Certs, blk.Bytes)
		}
		return ev, nil
	case "AzureGuest":
		if req.Evidence == "" {
			return nil, errors.New("AzureGuest takes the Confidential Containers az-snp-vtpm or az-tdx-vtpm JSON evidence in \"evidence\" (base64url); Azure's TPM AttestationInfo protocol is not supported")
		}
		raw, err := decodeB64("evidence", req.Evidence)
		if err != nil {
			return nil, err
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("evidence: %w", err)
		}
		if _, tdx := probe["td_quote"]; tdx {
			return &attest.Evidence{Format: attest.FormatAzureTDXVTPM, Data: raw}, nil
		}
		return &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: raw}, nil
	}
	return nil, fmt.Errorf("unknown attestation type %q (SgxEnclave, OpenEnclave, SevSnpVm, TdxVm, AzureGuest)", kind)
}

// maaBinding checks Azure's binding rules: SHA-256(runtimeData) is the
// first 32 bytes of the report data (the rest zero, as Azure's attesters
// write it), and SHA-256(initTimeData) is the SNP HOST_DATA / TDX
// MRCONFIGID / SGX CONFIGID.
func maaBinding(c *attest.Claims, runtime, initTime []byte) error {
	if runtime != nil {
		if err := attest.BindsRuntimeData(c.ReportData, runtime); err != nil {
			return fmt.Errorf("runtimeData: %w", err)
		}
	}
	if initTime != nil {
		h := sha256.Sum256(initTime)
		want := make([]byte, len(c.HostData))
		copy(want, h[:])
		if len(c.HostData) < len(h) || !bytes.Equal(want, c.HostData) {
			return fmt.Errorf("%w: SHA-256(initTimeData) is not the evidence's host data", attest.ErrBinding)
		}
	}
	return nil
}
