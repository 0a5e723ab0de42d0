package azure

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/tdx"
)

// TDXEvidence is the JSON evidence of the Confidential Containers
// az-tdx-vtpm attester, decoded. Schema 0 has no version field and writes
// bytes as JSON arrays of numbers; schema 1 writes the HCL report and the TD
// quote as padded URL-safe base64 and the TPM quote as hex.
type TDXEvidence struct {
	// Version is the schema: 0 or 1.
	Version int
	// HCLReport is the HCL report as read from vTPM NV index 0x01400001,
	// with the TDREPORT in its hardware report area.
	HCLReport []byte
	// TDQuote is the TD quote Azure's IMDS made of that TDREPORT (as IMDS
	// returns it: zero padded).
	TDQuote []byte
	// Quote is the vTPM quote over the PCRs.
	Quote TPMQuote
}

// ParseTDXEvidence decodes az-tdx-vtpm JSON strictly, as ParseEvidence
// does az-snp-vtpm JSON: exact, case-sensitive field names, no unknown or
// duplicate fields, no data after the JSON value, canonical base64 and
// hex, at most MaxEvidenceSize bytes, a TD quote of at most
// tdx.MaxQuoteSize bytes, PCR values of 32 bytes. Errors wrap
// attest.ErrMalformed.
func ParseTDXEvidence(data []byte) (*TDXEvidence, error) {
	top, versioned, err := probeEvidence(data, "az-tdx-vtpm evidence")
	if err != nil {
		return nil, err
	}
	e := &TDXEvidence{}
	if !versioned {
		// Schema 0: {"tpm_quote":{"signature","message","pcrs"},"hcl_report","td_quote"}, bytes as numbers.
		m, err := members(top, "az-tdx-vtpm evidence (schema 0, without a version)", []string{"tpm_quote", "hcl_report", "td_quote"}, nil)
		if err != nil {
			return nil, err
		}
		if e.HCLReport, err = jsonBytes(m["hcl_report"], "hcl_report"); err != nil {
			return nil, err
		}
		if e.TDQuote, err = jsonBytes(m["td_quote"], "td_quote"); err != nil {
			return nil, err
		}
		if e.Quote, err = tpmQuote(m["tpm_quote"], "tpm_quote", jsonBytes); err != nil {
			return nil, err
		}
	} else {
		// Schema 1: {"version":1,"tpm_quote":{…hex…},"hcl_report","td_quote"}.
		m, err := members(top, "az-tdx-vtpm evidence (schema 1)", []string{"version", "tpm_quote", "hcl_report", "td_quote"}, nil)
		if err != nil {
			return nil, err
		}
		if string(m["version"]) != "1" {
			return nil, fmt.Errorf("%w: az-tdx-vtpm evidence version %s is not supported (want 1, or no version for schema 0)", attest.ErrMalformed, m["version"])
		}
		e.Version = 1
		if e.HCLReport, err = base64URL(m["hcl_report"], "hcl_report"); err != nil {
			return nil, err
		}
		if e.TDQuote, err = base64URL(m["td_quote"], "td_quote"); err != nil {
			return nil, err
		}
		if e.Quote, err = tpmQuote(m["tpm_quote"], "tpm_quote", hexString); err != nil {
			return nil, err
		}
	}
	if err = (&Evidence{Version: e.Version, HCLReport: e.HCLReport, Quote: e.Quote}).check(); err != nil {
		return nil, err
	}
	if len(e.TDQuote) == 0 || len(e.TDQuote) > tdx.MaxQuoteSize {
		return nil, fmt.Errorf("%w: the TD quote is %d bytes, want 1 to %d", attest.ErrMalformed, len(e.TDQuote), tdx.MaxQuoteSize)
	}
	return e, nil
}

// TDXConfig holds what a TDXVerifier depends on.
type TDXConfig struct {
	// TDX verifies the TD quote (an attest.FormatTDXQuote verifier,
	// attest/tdx). Its roots, simulated roots and collateral are the ones
	// the Azure evidence is held to.
	TDX attest.Verifier
}

// TDXVerifier verifies attest.FormatAzureTDXVTPM evidence. It is safe for
// concurrent use if its TDX verifier is.
type TDXVerifier struct {
	tdx    attest.Verifier
	hcl    *hclCache   // parsed HCL reports (cache.go)
	quotes *quoteCache // parsed TD quotes (cache.go)
}

var _ attest.Verifier = (*TDXVerifier)(nil)

// NewTDXVerifier returns a verifier that checks the TD quote with cfg.TDX.
func NewTDXVerifier(cfg TDXConfig) *TDXVerifier {
	return &TDXVerifier{tdx: cfg.TDX, hcl: newHCLCache(), quotes: newQuoteCache()}
}

// Format reports attest.FormatAzureTDXVTPM.
func (v *TDXVerifier) Format() attest.Format { return attest.FormatAzureTDXVTPM }

// Verify checks az-tdx-vtpm evidence (ev.Data is the JSON; ev.Certs must be
// empty, the PCK chain travels in the TD quote) in this order:
//
//  1. framing of the JSON, the HCL report (which must hold a TDREPORT),
//     the TDREPORT and the TD quote (attest.ErrMalformed);
//  2. the TD quote by the TDX verifier under the same Options (its
//     errors: attest.ErrChain, ErrSignature, ErrSimulated, collateral…);
//  3. that the TD quote is the quote of the HCL report's TDREPORT: the same
//     report data, and every other field the two share (TEE_TCB_SVN,
//     MRSEAM, MRSIGNERSEAM, attributes, XFAM, MRTD, MRCONFIGID, MROWNER,
//     MROWNERCONFIG, RTMRs; for a TD report 1.5 quote also TEE_TCB_SVN2
//     and MRSERVICETD) (attest.ErrBinding);
//  4. that the (quote-signed) report data is the hash of the HCL var data,
//     zero padded (attest.ErrBinding); then the framing of the runtime
//     claims and their HCLAkPub (attest.ErrMalformed);
//  5. that HCLAkPub signed the TPM quote (attest.ErrSignature), the
//     quote's framing (attest.ErrMalformed), and that its PCR digest is the
//     hash of the PCR values presented (attest.ErrBinding).
//
// The claims are the TD quote's, with Format az-tdx-vtpm, ReportData the
// TPM quote's qualifying data (the nonce the workload bound; the TD's own
// report data binds the var data and is in Platform "td_report_data"),
// PCRs the quoted PCRs, Runtime the var data, and Platform entries for the
// HCL report, the TPM quote and vm-configuration.
func (v *TDXVerifier) Verify(ctx context.Context, ev *attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	if err := checkRequest(ctx, ev, attest.FormatAzureTDXVTPM, opts); err != nil {
		return nil, err
	}
	if v.tdx == nil {
		return nil, errors.New("azure: no TDX verifier configured (azure.TDXConfig.TDX)")
	}
	if len(ev.Certs) != 0 {
		return nil, fmt.Errorf("%w: az-tdx-vtpm evidence carries its PCK chain in the TD quote; Evidence.Certs must be empty", attest.ErrMalformed)
	}

	// 1. Framing.
	e, err := ParseTDXEvidence(ev.Data)
	if err != nil {
		return nil, err
	}
	p, keepHCL, err := parseHCL(v.hcl, e.HCLReport, ReportTypeTDX)
	if err != nil {
		return nil, err
	}
	hcl, report := p.hcl, p.td
	tdq, keepQuote, err := parseTDQuote(v.quotes, e.TDQuote)
	if err != nil {
		return nil, fmt.Errorf("the TD quote: %w", err)
	}

	// 2. The TD quote.
	c, err := v.tdx.Verify(ctx, &attest.Evidence{Format: attest.FormatTDXQuote, Data: e.TDQuote}, opts)
	if err != nil {
		return nil, fmt.Errorf("the TD quote: %w", err)
	}
	if c == nil {
		return nil, errors.New("azure: the TDX verifier returned no claims")
	}
	if subtle.ConstantTimeCompare(c.ReportData, tdq.Body.ReportData[:]) != 1 {
		return nil, errors.New("azure: the TDX verifier's claims are not those of the TD quote")
	}

	// 3. The TD quote is the quote of the TDREPORT.
	if subtle.ConstantTimeCompare(tdq.Body.ReportData[:], report.ReportData[:]) != 1 {
		return nil, fmt.Errorf("%w: the TD quote's report data is not the TDREPORT's: the TD quote was made for another TDREPORT", attest.ErrBinding)
	}
	if err := report.MatchesQuote(tdq); err != nil {
		return nil, fmt.Errorf("the TD quote and the HCL report's TDREPORT: %w", err)
	}

	// 4. The paravisor's binding of the var data; 5. the TPM quote.
	t, err := verifyVTPM(p, "TD", c.ReportData, e.Quote)
	if err != nil {
		return nil, err
	}
	keepHCL()
	keepQuote()
	return t.claims(c, attest.FormatAzureTDXVTPM, "td_report_data", e.Version, hcl), nil
}
