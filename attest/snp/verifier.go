// Package snp checks that raw AMD SEV-SNP reports are genuine (strict
// framing, VCEK/VLEK chain, signature) and returns their claims, flagged when
// simulated; it fetches no collateral, checks no revocation, appraises nothing.
package snp

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
)

// Config says which AMD roots a Verifier trusts, by product line ("Milan",
// "Genoa", "Turin"). The Verifier keeps the maps: do not change them after.
type Config struct {
	// Roots are the genuine AMD roots. Nil means the ARK/ASK and ARK/ASVK
	// bundles go-sev-guest embeds, so VCEK- and VLEK-signed reports verify.
	Roots map[string][]*trust.AMDRootCerts
	// Simulated roots are tried only after Roots fail. Evidence that chains
	// to them is simulated: refused with attest.ErrSimulated unless the
	// verification allows simulation, and then flagged Claims.Simulated.
	Simulated map[string][]*trust.AMDRootCerts
}

// Verifier verifies attest.FormatSNPReport evidence. It is safe for
// concurrent use.
type Verifier struct {
	roots, simulated map[string][]*trust.AMDRootCerts
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a verifier trusting cfg's roots.
func NewVerifier(cfg Config) *Verifier {
	roots := cfg.Roots
	if roots == nil {
		roots = embeddedRoots()
	}
	return &Verifier{roots: roots, simulated: cfg.Simulated}
}

// embeddedRoots parses the AMD KDS cert_chain bundles go-sev-guest embeds.
// The VLEK bundles are not in trust.DefaultRootCerts, hence our own copy.
func embeddedRoots() map[string][]*trust.AMDRootCerts {
	m := map[string][]*trust.AMDRootCerts{}
	for _, b := range []struct {
		productLine string
		bundle      []byte
	}{
		{"Milan", trust.AskArkMilanVcekBytes},
		{"Milan", trust.AskArkMilanVlekBytes},
		{"Genoa", trust.AskArkGenoaVcekBytes},
		{"Genoa", trust.AskArkGenoaVlekBytes},
		{"Turin", trust.AskArkTurinVcekBytes},
		{"Turin", trust.AskArkTurinVlekBytes},
	} {
		r := trust.AMDRootCertsProduct(b.productLine)
		// The Turin VLEK bundle ends in a blank line, which the strict
		// bundle parser refuses.
		if err := r.FromKDSCertBytes(bytes.TrimSpace(b.bundle)); err != nil {
			panic(fmt.Sprintf("snp: go-sev-guest's embedded %s roots: %v", b.productLine, err)) // constant data
		}
		m[b.productLine] = append(m[b.productLine], r)
	}
	return m
}

// Format reports attest.FormatSNPReport.
func (v *Verifier) Format() attest.Format { return attest.FormatSNPReport }

// Verify checks, in order, the report's framing (attest.ErrMalformed), the
// chain of the VCEK or VLEK in ev.Certs[0] (attest.ErrChain, or
// attest.ErrSimulated), the report signature (attest.ErrSignature), and that
// the certificate is the one for the report's chip and REPORTED_TCB
// (attest.ErrChain). ev.Certs[1:] are ignored: roots come from the Config.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ev == nil {
		return nil, fmt.Errorf("%w: no evidence", attest.ErrMalformed)
	}
	if ev.Format != attest.FormatSNPReport {
		return nil, fmt.Errorf("%w: evidence format %q is not %q", attest.ErrMalformed, ev.Format, attest.FormatSNPReport)
	}
	if opts.Now.IsZero() {
		return nil, errors.New("snp: verification time not set (attest.Options.Now)")
	}

	report, err := ParseReport(ev.Data)
	if err != nil {
		return nil, err
	}
	info, err := abi.ParseSignerInfo(report.GetSignerInfo())
	if err != nil { // ParseReport checked it
		return nil, fmt.Errorf("%w: %w", attest.ErrMalformed, err)
	}
	key := info.SigningKey
	if key != abi.VcekReportSigner && key != abi.VlekReportSigner {
		return nil, fmt.Errorf("%w: report SIGNING_KEY is %v: the report is not signed by a VCEK or VLEK", attest.ErrSignature, key)
	}
	productLine := ""
	if fms := report.GetCpuid1EaxFms(); fms != 0 {
		productLine = kds.ProductLineFromFms(fms)
	}

	if len(ev.Certs) == 0 || len(ev.Certs[0]) == 0 {
		return nil, fmt.Errorf("%w: no %v certificate in the evidence: %s", attest.ErrChain, key, whereToGet(key, productLine, report))
	}
	ek, productLine, err := verifyEndorsement(ev.Certs[0], key, productLine, v.roots, v.simulated, opts.Now)
	if err != nil {
		return nil, fmt.Errorf("%w: %v certificate not trusted at %s: %w; %s",
			attest.ErrChain, key, opts.Now.UTC().Format(time.RFC3339), err, whereToGet(key, productLine, report))
	}
	if ek.simulated && !opts.AllowSimulated {
		return nil, fmt.Errorf("%w: the %v certificate chains to the simulated AMD roots of attest/simtee", attest.ErrSimulated, key)
	}

	if err := checkSignature(ev.Data, ek.cert); err != nil {
		return nil, fmt.Errorf("%w: SNP report signature does not verify with the %v: the report was altered or signed by another key: %w",
			attest.ErrSignature, key, err)
	}

	if err := checkBinding(report, key, ek.exts); err != nil {
		return nil, fmt.Errorf("%w: %w; %s", attest.ErrChain, err, whereToGet(key, ek.productLine, report))
	}
	return claims(report, key, ek), nil
}

// checkSignature verifies the report's ECDSA P-384 SHA-384 signature over
// its first 0x2A0 bytes with the endorsement key: what go-sev-guest's
// verify.SnpReportSignature does. Package verify is not imported because it
// registers a global command-line flag.
func checkSignature(raw []byte, ek *x509.Certificate) error {
	der, err := abi.ReportToSignatureDER(raw)
	if err != nil {
		return err
	}
	return ek.CheckSignature(x509.ECDSAWithSHA384, abi.SignedComponent(raw), der)
}

// checkBinding checks that the endorsement key certificate is the one AMD
// issued for the report's chip and REPORTED_TCB.
func checkBinding(r *spb.Report, key abi.ReportSigner, exts *kds.Extensions) error {
	if got, want := uint64(exts.TCBVersion), r.GetReportedTcb(); got != want {
		return fmt.Errorf("the %v certificate is for TCB %#016x but the report's REPORTED_TCB is %#016x", key, got, want)
	}
	// A masked CHIP_ID is all zeros; a VLEK carries no hwID.
	if key == abi.VcekReportSigner && !allZero(r.GetChipId()) && !bytes.Equal(r.GetChipId(), exts.HWID) {
		return fmt.Errorf("the VCEK is for chip %s but the report's CHIP_ID is %s",
			hex.EncodeToString(exts.HWID), hex.EncodeToString(r.GetChipId()))
	}
	return nil
}

// whereToGet tells the operator where the right certificate comes from.
func whereToGet(key abi.ReportSigner, productLine string, r *spb.Report) string {
	if key == abi.VlekReportSigner {
		return "the VLEK comes from the cloud provider, in the certificate table of the extended report"
	}
	if productLine == "" || allZero(r.GetChipId()) {
		return "send the VCEK AMD KDS issued for this chip and REPORTED_TCB (from the extended report's certificate table or https://kdsintf.amd.com)"
	}
	return "send the VCEK AMD KDS issued for this chip and REPORTED_TCB: " +
		kds.VCEKCertURL(productLine, r.GetChipId(), kds.TCBVersion(r.GetReportedTcb()))
}

func claims(r *spb.Report, key abi.ReportSigner, ek *endorsement) *attest.Claims {
	policy, _ := abi.ParseSnpPolicy(r.GetPolicy()) // ParseReport checked it
	info, _ := abi.ParseSignerInfo(r.GetSignerInfo())

	var signer attest.Hex
	switch {
	case info.AuthorKeyEn:
		signer = clone(r.GetAuthorKeyDigest())
	case !allZero(r.GetIdKeyDigest()):
		signer = clone(r.GetIdKeyDigest())
	}
	hexOf := hex.EncodeToString
	platform := map[string]string{
		"version":            strconv.FormatUint(uint64(r.GetVersion()), 10),
		"vmpl":               strconv.FormatUint(uint64(r.GetVmpl()), 10),
		"policy":             fmt.Sprintf("%#x", r.GetPolicy()),
		"abi_major":          strconv.Itoa(int(policy.ABIMajor)),
		"abi_minor":          strconv.Itoa(int(policy.ABIMinor)),
		"smt_allowed":        strconv.FormatBool(policy.SMT),
		"migration_allowed":  strconv.FormatBool(policy.MigrateMA),
		"single_socket":      strconv.FormatBool(policy.SingleSocket),
		"family_id":          hexOf(r.GetFamilyId()),
		"image_id":           hexOf(r.GetImageId()),
		"id_key_digest":      hexOf(r.GetIdKeyDigest()),
		"author_key_digest":  hexOf(r.GetAuthorKeyDigest()),
		"author_key_en":      strconv.FormatBool(info.AuthorKeyEn),
		"report_id":          hexOf(r.GetReportId()),
		"report_id_ma":       hexOf(r.GetReportIdMa()),
		"chip_id":            hexOf(r.GetChipId()),
		"signer":             strings.ToLower(key.String()), // "vcek" or "vlek"
		"product_line":       ek.productLine,
		"platform_info":      fmt.Sprintf("%#x", r.GetPlatformInfo()),
		"current_tcb":        fmt.Sprintf("%#016x", r.GetCurrentTcb()),
		"committed_tcb":      fmt.Sprintf("%#016x", r.GetCommittedTcb()),
		"launch_tcb":         fmt.Sprintf("%#016x", r.GetLaunchTcb()),
		"reported_tcb":       fmt.Sprintf("%#016x", r.GetReportedTcb()),
		"current_firmware":   fmt.Sprintf("%d.%d.%d", r.GetCurrentMajor(), r.GetCurrentMinor(), r.GetCurrentBuild()),
		"committed_firmware": fmt.Sprintf("%d.%d.%d", r.GetCommittedMajor(), r.GetCommittedMinor(), r.GetCommittedBuild()),
	}
	if r.GetVersion() >= abi.ReportVersion3 {
		family, model, stepping := abi.FmsFromCpuid1Eax(r.GetCpuid1EaxFms())
		platform["cpuid_family"] = fmt.Sprintf("%#x", family)
		platform["cpuid_model"] = fmt.Sprintf("%#x", model)
		platform["cpuid_stepping"] = fmt.Sprintf("%#x", stepping)
	}
	if r.GetVersion() >= abi.ReportVersion4 {
		platform["launch_mit_vector"] = fmt.Sprintf("%#x", r.GetLaunchMitVector())
		platform["current_mit_vector"] = fmt.Sprintf("%#x", r.GetCurrentMitVector())
	}
	if key == abi.VlekReportSigner {
		platform["csp_id"] = ek.exts.CspID
	}
	vmpl := r.GetVmpl()
	return &attest.Claims{
		TEE:            attest.SEVSNP,
		VMPL:           &vmpl,
		MigrationAgent: policy.MigrateMA,
		Format:         attest.FormatSNPReport,
		Simulated:      ek.simulated,
		Measurement:    clone(r.GetMeasurement()),
		Signer:         signer,
		SVN:            r.GetGuestSvn(),
		Debug:          policy.Debug,
		HostData:       clone(r.GetHostData()),
		ReportData:     clone(r.GetReportData()),
		TCB: attest.TCB{
			Evaluated:  false,
			Components: tcbComponents(ek.productLine, r.GetReportedTcb()),
		},
		Platform: platform,
	}
}

// tcbComponents splits a TCB_VERSION into its security patch levels. Turin
// (Zen 5) moved the fields and added the FMC level.
func tcbComponents(productLine string, tcb uint64) map[string]uint64 {
	b := func(i int) uint64 { return (tcb >> (8 * i)) & 0xff }
	if productLine == "Turin" {
		return map[string]uint64{"fmc": b(0), "bootloader": b(1), "tee": b(2), "snp": b(3), "microcode": b(7)}
	}
	return map[string]uint64{"bootloader": b(0), "tee": b(1), "snp": b(6), "microcode": b(7)}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func clone(b []byte) attest.Hex { return bytes.Clone(b) }
