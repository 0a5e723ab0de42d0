// Package snp checks that raw AMD SEV-SNP reports are genuine (strict
// framing, VCEK/VLEK chain to AMD's roots, signature, AMD revocation list)
// and returns their claims, flagged when simulated; it takes collateral only
// through an injected Getter and appraises nothing.
package snp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/internal/boundedcache"
)

// Config says which AMD roots a Verifier trusts, by product line ("Milan",
// "Genoa", "Turin"), and where its collateral comes from. The Verifier keeps
// the maps and root sets: do not change them after.
type Config struct {
	// Roots are the genuine AMD roots. Nil means the ARK/ASK and ARK/ASVK
	// bundles go-sev-guest embeds, so VCEK- and VLEK-signed reports verify.
	// A root set's CRL field, when set, is the AMD CRL of its chain: it is
	// used while fresh, before the Getter is asked.
	Roots map[string][]*trust.AMDRootCerts
	// Simulated roots are tried only after Roots fail. Evidence that chains
	// to them is simulated: refused with attest.ErrSimulated unless the
	// verification allows simulation, and then flagged Claims.Simulated.
	// simtee.SNPTrust gives the simulated chain with its simulated CRL
	// preloaded. A simulated root set without one has its CRL fetched from
	// the Getter at the KDS URL the simulated ASK names, AMD's own: a real
	// getter serves AMD's CRL there, which the simulated ARK did not sign,
	// and simulated evidence is then refused with ErrCollateral.
	Simulated map[string][]*trust.AMDRootCerts
	// Getter serves VCEK certificates missing from the evidence and the
	// AMD CRLs, by their AMD KDS URLs. Nil means no network and no cache:
	// the VCEK must be in the evidence and the CRL preloaded on the roots.
	// VLEKs are never fetched: the host must supply them.
	Getter Getter
	// AllowMissingCRL accepts evidence whose AMD CRL cannot be had or is
	// stale; its claims then say RevocationChecked false. It is the
	// operator's explicit choice: by default such evidence is refused with
	// ErrCollateral. A CRL that does not verify, or that revokes the chain,
	// is refused regardless.
	AllowMissingCRL bool
}

// Verifier verifies attest.FormatSNPReport evidence. It is safe for
// concurrent use. It caches verified certificate chains (by the SHA-256 of
// the VCEK or VLEK, checking their validity window on every use) and
// verified CRLs (by their SHA-256, checking freshness on every use), so
// that a warm verification costs a parse, a cache lookup and one ECDSA
// P-384 verification. Simulated chains, which anyone can mint, are cached
// only for verifications that allow simulation, and apart from real ones,
// so that they cannot evict them.
type Verifier struct {
	roots, simulated map[string][]*trust.AMDRootCerts
	getter           Getter
	allowMissingCRL  bool
	// productLines are the lines tried, in order, to fetch the VCEK of a
	// version 2 report, which does not say its product line.
	productLines []string
	chains       *boundedcache.Cache[chainKey, *endorsement] // chains to Roots
	simChains    *boundedcache.Cache[chainKey, *endorsement] // chains to Simulated
	crls         *boundedcache.Cache[crlKey, *revocations]
}

var _ attest.Verifier = (*Verifier)(nil)

// Bounds of the Verifier's caches. A chain entry is a few kilobytes (the
// parsed certificates are shared with the root set), so the chain cache
// stays within a few tens of megabytes at its bound. Simulated chains have
// their own small cache (see Verifier.verifiedEndorsement).
const (
	maxCachedChains          = 4096
	maxCachedSimulatedChains = 16
	maxCachedCRLs            = 256
)

// chainKey identifies a chain verification: the certificate, the role it
// was verified for and the product line the report named ("" for version
// 2). The root sets are the Verifier's own.
type chainKey struct {
	digest      [sha256.Size]byte
	key         abi.ReportSigner
	productLine string
}

// NewVerifier returns a verifier trusting cfg's roots.
func NewVerifier(cfg Config) *Verifier {
	roots := cfg.Roots
	if roots == nil {
		roots = embeddedRoots()
	}
	v := &Verifier{
		roots:           roots,
		simulated:       cfg.Simulated,
		getter:          cfg.Getter,
		allowMissingCRL: cfg.AllowMissingCRL,
		chains:          boundedcache.New[chainKey, *endorsement](maxCachedChains),
		simChains:       boundedcache.New[chainKey, *endorsement](maxCachedSimulatedChains),
		crls:            boundedcache.New[crlKey, *revocations](maxCachedCRLs),
	}
	for _, m := range []map[string][]*trust.AMDRootCerts{roots, cfg.Simulated} {
		for line := range m {
			if !slices.Contains(v.productLines, line) {
				v.productLines = append(v.productLines, line)
			}
		}
	}
	// The commonest first, then the rest in a stable order.
	order := map[string]int{"Milan": 0, "Genoa": 1, "Turin": 2}
	slices.SortFunc(v.productLines, func(a, b string) int {
		oa, ka := order[a]
		ob, kb := order[b]
		switch {
		case ka && kb:
			return oa - ob
		case ka:
			return -1
		case kb:
			return 1
		}
		return strings.Compare(a, b)
	})
	return v
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

// Verify checks, in order:
//   - the report's framing (attest.ErrMalformed);
//   - that its product line is supported: Turin is not (attest.ErrChain);
//   - the VCEK or VLEK: ev.Certs[0], or for a VCEK missing there the one
//     the Getter serves at its KDS URL (ErrCollateral when it cannot be
//     had), and its chain to the trusted ARK (attest.ErrChain, or
//     attest.ErrSimulated);
//   - the report signature (attest.ErrSignature);
//   - that the certificate is the one for the report's chip and
//     REPORTED_TCB (attest.ErrChain);
//   - unless opts.SkipCollateral, AMD's CRL for the chain: signed by the
//     ARK, not stale at opts.Now (else ErrCollateral, unless
//     Config.AllowMissingCRL), and revoking neither the ASK/ASVK nor the
//     VCEK/VLEK (attest.ErrChain); the same for the CRL of the sibling
//     chain (ASVK for a VCEK, ASK for a VLEK) when the Getter has it. A
//     CRL issued after opts.Now counts: AMD revokes for good, so verifying
//     at a past time takes AMD's current CRL.
//
// ev.Certs[1:] are ignored: roots come from the Config. The claims say
// RevocationChecked, and TCB.Evaluated, only when the CRL was checked.
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
		if !slices.Contains([]string{"Milan", "Genoa", "Turin"}, productLine) {
			// A model go-sev-guest does not name (e.g. family 0x19 model
			// 0xA0 of the Genoa line): as for a version 2 report, the
			// certificate names the line, and its chain must verify to
			// that line's trusted roots.
			productLine = ""
		}
	}
	if err := supported(productLine); err != nil {
		return nil, err
	}

	ek, err := v.endorsementFor(ctx, ev, report, key, productLine, opts)
	if err != nil {
		return nil, err
	}
	if ek.simulated && !opts.AllowSimulated {
		return nil, fmt.Errorf("%w: the %v certificate chains to the simulated AMD roots of attest/simtee", attest.ErrSimulated, key)
	}
	if err := supported(ek.productLine); err != nil { // a version 2 report: the certificate names the line
		return nil, err
	}

	if err := checkSignature(ev.Data, ek.pub); err != nil {
		hint := "the report was altered or signed by another key"
		if berr := checkBinding(report, key, ek.exts); berr != nil {
			hint = berr.Error() + ": the certificate of another chip or TCB was sent, or the report was altered"
		}
		return nil, fmt.Errorf("%w: SNP report signature does not verify with the %v: %s", attest.ErrSignature, key, hint)
	}
	if err := checkBinding(report, key, ek.exts); err != nil {
		return nil, fmt.Errorf("%w: %w; %s", attest.ErrChain, err, whereToGet(key, ek.productLine, report))
	}

	checked := false
	if !opts.SkipCollateral {
		if checked, err = v.checkRevocation(ctx, ek, key, opts.Now); err != nil {
			return nil, err
		}
	}
	return claims(report, key, ek, checked), nil
}

// endorsementFor returns the verified VCEK or VLEK for the report: the
// evidence's, or a fetched VCEK.
func (v *Verifier) endorsementFor(ctx context.Context, ev *attest.Evidence, r *spb.Report, key abi.ReportSigner, productLine string, opts attest.Options) (*endorsement, error) {
	var der []byte
	fetched := false // der came from the getter
	if len(ev.Certs) > 0 {
		der = ev.Certs[0]
	}
	if len(der) == 0 {
		switch {
		case key == abi.VlekReportSigner:
			return nil, fmt.Errorf("%w: no VLEK certificate in the evidence: %s", attest.ErrChain, whereToGet(key, productLine, r))
		case opts.SkipCollateral:
			return nil, fmt.Errorf("%w: no VCEK in the evidence, and collateral is skipped: %s", ErrCollateral, whereToGet(key, productLine, r))
		case v.getter == nil:
			return nil, fmt.Errorf("%w: no VCEK in the evidence and no collateral getter to fetch it: %s", ErrCollateral, whereToGet(key, productLine, r))
		}
		var err error
		if der, productLine, err = v.fetchVCEK(ctx, r, productLine); err != nil {
			return nil, err
		}
		fetched = true
	}
	ek, productLine, err := v.verifiedEndorsement(der, key, productLine, opts)
	if err != nil {
		if fetched {
			v.invalidate(vcekURL(productLine, r))
		}
		return nil, fmt.Errorf("%w: %v certificate not trusted at %s: %w; %s",
			attest.ErrChain, key, opts.Now.UTC().Format(time.RFC3339), err, whereToGet(key, productLine, r))
	}
	return ek, nil
}

// verifiedEndorsement is verifyEndorsement behind the chain caches. A
// simulated chain is cached only when opts allows simulation (Verify
// refuses it otherwise), and in its own small cache: anyone can mint
// simulated VCEKs, and they must not evict the real chains.
func (v *Verifier) verifiedEndorsement(der []byte, key abi.ReportSigner, productLine string, opts attest.Options) (*endorsement, string, error) {
	k := chainKey{digest: sha256.Sum256(der), key: key, productLine: productLine}
	if e, ok := v.chains.Get(k); ok && e.validAt(opts.Now) {
		return e, e.productLine, nil
	}
	if opts.AllowSimulated {
		if e, ok := v.simChains.Get(k); ok && e.validAt(opts.Now) {
			return e, e.productLine, nil
		}
	}
	e, line, err := verifyEndorsement(der, key, productLine, v.roots, v.simulated, opts.Now)
	switch {
	case err != nil:
		return nil, line, err
	case !e.simulated:
		v.chains.Put(k, e)
	case opts.AllowSimulated:
		v.simChains.Put(k, e)
	}
	return e, line, nil
}

// supported refuses the product lines this verifier cannot check. Turin's
// VCEK has an 8-byte hwID and an FMC SPL that go-sev-guest v0.15.0 does not
// read, and its TCB_VERSION has another layout, so its endorsement key
// could not be bound to the report.
func supported(productLine string) error {
	if productLine == "Turin" {
		return fmt.Errorf("%w: Turin (product line from CPUID family 0x1A) is not supported by go-sev-guest v0.15.0: "+
			"its VCEK extensions cannot be read", attest.ErrChain)
	}
	return nil
}

// checkSignature verifies the report's ECDSA P-384 SHA-384 signature over
// its first 0x2A0 bytes with the endorsement key: what go-sev-guest's
// verify.SnpReportSignature does. Package verify is not imported because it
// registers a global command-line flag. ParseReport has checked that R and
// S fit in 384 bits.
func checkSignature(raw []byte, pub *ecdsa.PublicKey) error {
	digest := sha512.Sum384(abi.SignedComponent(raw))
	r := abi.AmdBigInt(raw[offSignature : offSignature+p384ScalarSize])
	s := abi.AmdBigInt(raw[offSignature+sigComponentSize : offSignature+sigComponentSize+p384ScalarSize])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return errors.New("ECDSA P-384 verification failed")
	}
	return nil
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
	return "send the VCEK AMD KDS issued for this chip and REPORTED_TCB: " + vcekURL(productLine, r)
}

// vcekURL is the AMD KDS URL of the VCEK for the report's CHIP_ID and
// REPORTED_TCB on productLine.
func vcekURL(productLine string, r *spb.Report) string {
	return kds.VCEKCertURL(productLine, r.GetChipId(), kds.TCBVersion(r.GetReportedTcb()))
}

// claims are the report's facts. revocationChecked says the chain was
// checked against AMD's CRL; only then is the TCB evaluated: the VCEK or
// VLEK AMD issued for REPORTED_TCB, not revoked. AMD publishes no TCB status
// (Status stays empty): the appraisal's minTCB is the floor.
func claims(r *spb.Report, key abi.ReportSigner, ek *endorsement, revocationChecked bool) *attest.Claims {
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
		TEE:               attest.SEVSNP,
		VMPL:              &vmpl,
		MigrationAgent:    policy.MigrateMA,
		Format:            attest.FormatSNPReport,
		Simulated:         ek.simulated,
		Measurement:       clone(r.GetMeasurement()),
		Signer:            signer,
		SVN:               r.GetGuestSvn(),
		Debug:             policy.Debug,
		HostData:          clone(r.GetHostData()),
		ReportData:        clone(r.GetReportData()),
		RevocationChecked: revocationChecked,
		TCB: attest.TCB{
			Evaluated:  revocationChecked,
			Components: tcbComponents(ek.productLine, r.GetReportedTcb()),
		},
		Platform: platform,
	}
}

// tcbComponents splits a TCB_VERSION into its security patch levels. Turin
// (Zen 5) moved the fields and added the FMC level (Verify refuses Turin
// for now: see supported).
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
