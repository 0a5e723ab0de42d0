// Package azure verifies Azure confidential-VM evidence: the paravisor's HCL
// report with the SNP report (az-snp-vtpm) or the TDREPORT and its TD quote
// (az-tdx-vtpm) inside, the runtime claims it binds, and a vTPM quote over
// the PCRs signed by the attestation key those claims name.
package azure

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/trustbound/trustbound/attest"
)

// Config holds what a Verifier depends on.
type Config struct {
	// SNP verifies the SNP report inside the HCL report (an
	// attest.FormatSNPReport verifier, attest/snp). Its roots, simulated
	// roots and collateral are the ones the Azure evidence is held to.
	SNP attest.Verifier
}

// Verifier verifies attest.FormatAzureSNPVTPM evidence. It is safe for
// concurrent use if its SNP verifier is.
type Verifier struct {
	snp attest.Verifier
	hcl *hclCache // parsed HCL reports (cache.go)
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a verifier that checks the inner SNP report with
// cfg.SNP.
func NewVerifier(cfg Config) *Verifier { return &Verifier{snp: cfg.SNP, hcl: newHCLCache()} }

// Format reports attest.FormatAzureSNPVTPM.
func (v *Verifier) Format() attest.Format { return attest.FormatAzureSNPVTPM }

// Verify checks az-snp-vtpm evidence (ev.Data is the JSON; ev.Certs must be
// empty, the VCEK travels inside) in this order:
//
//  1. framing of the JSON and the HCL report (attest.ErrMalformed; an HCL
//     report holding a TDREPORT is refused: TDX CVMs send az-tdx-vtpm
//     evidence, which TDXVerifier checks);
//  2. the SNP report, with the VCEK, by the SNP verifier under the same
//     Options (its errors: attest.ErrChain, ErrSignature, ErrSimulated, …);
//  3. that the report was requested at VMPL 0, the paravisor's level, and
//     that its report data is the hash of the var data, zero padded
//     (attest.ErrBinding); then the framing of the var data's runtime claims
//     and their HCLAkPub (attest.ErrMalformed);
//  4. that HCLAkPub from the var data signed the quote (attest.ErrSignature),
//     then the quote's framing: TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, one
//     SHA-256 PCR selection (attest.ErrMalformed);
//  5. that the quote's PCR digest is the hash of the PCR values presented
//     (attest.ErrBinding) and, for schema 2, that the var data's user-data
//     holds the quote's qualifying data (attest.ErrBinding).
//
// The claims are the SNP report's, with Format az-snp-vtpm, ReportData the
// quote's qualifying data (the nonce the workload bound; the SNP report data
// binds the var data instead), PCRs the quoted PCRs, Runtime the var data,
// and Platform entries for the HCL report, the quote and vm-configuration.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	if err := checkRequest(ctx, ev, attest.FormatAzureSNPVTPM, opts); err != nil {
		return nil, err
	}
	if v.snp == nil {
		return nil, errors.New("azure: no SNP verifier configured (azure.Config.SNP)")
	}
	if len(ev.Certs) != 0 {
		return nil, fmt.Errorf("%w: az-snp-vtpm evidence carries its VCEK inside; Evidence.Certs must be empty", attest.ErrMalformed)
	}

	// 1. Framing.
	e, err := ParseEvidence(ev.Data)
	if err != nil {
		return nil, err
	}
	p, keep, err := parseHCL(v.hcl, e.HCLReport, ReportTypeSNP)
	if err != nil {
		return nil, err
	}
	hcl := p.hcl

	// 2. The SNP report.
	c, err := v.snp.Verify(ctx, &attest.Evidence{
		Format: attest.FormatSNPReport,
		Data:   hcl.HardwareReport,
		Certs:  [][]byte{e.VCEK},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("the SNP report in the HCL report: %w", err)
	}
	if c == nil {
		return nil, errors.New("azure: the SNP verifier returned no claims")
	}

	// 3. The paravisor's binding of the var data; 4. the quote's signature,
	// then its contents; 5. PCRs and, for schema 2, user-data.
	if c.VMPL == nil || *c.VMPL != 0 {
		return nil, fmt.Errorf("%w: the SNP report was requested at VMPL %s, not 0: only the paravisor at VMPL 0 binds the runtime claims", attest.ErrBinding, vmplString(c.VMPL))
	}
	t, err := verifyVTPM(p, "SNP", c.ReportData, e.Quote)
	if err != nil {
		return nil, err
	}
	if e.Version == 2 && !userDataMatches(t.rc.UserData, t.q.Attest.ExtraData.Buffer) {
		return nil, fmt.Errorf("%w: schema 2 evidence, but the runtime claims' user-data is not the TPM quote's qualifying data zero padded to 64 bytes", attest.ErrBinding)
	}
	keep()
	return t.claims(c, attest.FormatAzureSNPVTPM, "snp_report_data", e.Version, hcl), nil
}

// checkRequest makes the checks every Verify starts with: ctx not done,
// evidence of format f, a verification time.
func checkRequest(ctx context.Context, ev *attest.Evidence, f attest.Format, opts attest.Options) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ev == nil {
		return fmt.Errorf("%w: no evidence", attest.ErrMalformed)
	}
	if ev.Format != f {
		return fmt.Errorf("%w: evidence format %q is not %q", attest.ErrMalformed, ev.Format, f)
	}
	if opts.Now.IsZero() {
		return errors.New("azure: verification time not set (attest.Options.Now)")
	}
	return nil
}

// vtpm is the vTPM half of Azure CVM evidence, verified.
type vtpm struct {
	rc   *RuntimeClaims
	q    *Quote
	pcrs map[int]attest.Hex
}

// verifyVTPM verifies the vTPM half of Azure CVM evidence, the same for
// every TEE once its hardware report (named hw) is verified and has given
// reportData: that reportData is the hash of hcl's var data, zero padded
// (attest.ErrBinding); the framing of the runtime claims and their HCLAkPub
// (attest.ErrMalformed); that HCLAkPub signed the TPM quote
// (attest.ErrSignature); the quote's framing (attest.ErrMalformed); and that
// its PCR digest is the hash of the PCR values presented (attest.ErrBinding).
func verifyVTPM(p *hclParsed, hw string, reportData []byte, tq TPMQuote) (*vtpm, error) {
	hcl := p.hcl
	want := hcl.ReportData()
	if subtle.ConstantTimeCompare(want[:], reportData) != 1 {
		return nil, fmt.Errorf("%w: the %s report data is not the %v of the HCL runtime claims, zero padded: the runtime claims were altered", attest.ErrBinding, hw, hcl.HashType)
	}
	rc, ak, err := p.runtime()
	if err != nil {
		return nil, err
	}
	if err := CheckSignature(ak, tq.Message, tq.Signature); err != nil {
		return nil, err
	}
	q, err := ParseQuote(tq.Message)
	if err != nil {
		return nil, err
	}
	pcrs, err := q.CheckPCRs(tq.PCRs)
	if err != nil {
		return nil, err
	}
	return &vtpm{rc: rc, q: q, pcrs: pcrs}, nil
}

func vmplString(p *uint32) string {
	if p == nil {
		return "unknown"
	}
	return strconv.FormatUint(uint64(*p), 10)
}

// claims turns the hardware report's claims c into the Azure CVM's, of
// format f: ReportData becomes the TPM quote's qualifying data (the nonce
// the workload bound) and the hardware report data, which binds the var
// data, moves to Platform[hwReportDataKey].
func (t *vtpm) claims(c *attest.Claims, f attest.Format, hwReportDataKey string, version int, hcl *HCLReport) *attest.Claims {
	q, rc := t.q, t.rc
	hwReportData := c.ReportData
	c.Format = f
	c.ReportData = bytes.Clone(q.Attest.ExtraData.Buffer)
	c.PCRs = t.pcrs
	c.Runtime = json.RawMessage(bytes.Clone(hcl.VarData))
	if c.Platform == nil {
		c.Platform = map[string]string{}
	}
	p := c.Platform
	p[hwReportDataKey] = hex.EncodeToString(hwReportData)
	p["evidence_version"] = strconv.Itoa(version)
	p["hcl_version"] = strconv.FormatUint(uint64(hcl.Version), 10)
	p["hcl_request_type"] = strconv.FormatUint(uint64(hcl.RequestType), 10)
	p["hcl_report_type"] = hcl.ReportType.String()
	p["hcl_hash_type"] = hcl.HashType.String()
	p["tpm_pcr_bank"] = "sha256"
	p["tpm_qualified_signer"] = hex.EncodeToString(q.Attest.QualifiedSigner.Buffer)
	p["tpm_firmware_version"] = fmt.Sprintf("%#016x", q.Attest.FirmwareVersion)
	p["tpm_clock"] = strconv.FormatUint(q.Attest.ClockInfo.Clock, 10)
	p["tpm_reset_count"] = strconv.FormatUint(uint64(q.Attest.ClockInfo.ResetCount), 10)
	p["tpm_restart_count"] = strconv.FormatUint(uint64(q.Attest.ClockInfo.RestartCount), 10)
	if rc.UserData != "" {
		p["user_data"] = strings.ToLower(rc.UserData)
	}
	// vm-configuration members, snake_cased ("secure-boot" → secure_boot,
	// "vmUniqueId" → vm_unique_id), in a fixed order; a name taken already
	// keeps its original spelling under a prefix.
	for _, k := range slices.Sorted(maps.Keys(rc.VMConfiguration)) {
		name := snakeCase(k)
		if _, taken := p[name]; taken {
			name = "vm_configuration." + k
		}
		p[name] = jsonScalar(rc.VMConfiguration[k])
	}
	return c
}

// snakeCase turns kebab-case and camelCase names into snake_case.
func snakeCase(s string) string {
	var b strings.Builder
	prevLower := false
	for _, r := range s {
		switch {
		case r == '-':
			b.WriteByte('_')
			prevLower = false
		case unicode.IsUpper(r):
			if prevLower {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			prevLower = false
		default:
			b.WriteRune(r)
			prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		}
	}
	return b.String()
}

// jsonScalar renders a JSON value as a claim string: strings unquoted,
// everything else (booleans, numbers, objects) as its compact JSON.
func jsonScalar(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}
