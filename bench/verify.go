package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"embed"
	"fmt"
	"math/big"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevverify "github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	tdxabi "github.com/google/go-tdx-guest/abi"
	tdxverify "github.com/google/go-tdx-guest/verify"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/sgx"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
	"github.com/trustbound/trustbound/attest/tdx"
)

//go:embed testdata/*.dat testdata/*.json
var vectors embed.FS

// Instants at which the vectors verify: the dcap-qvl samples' collateral
// window, and one inside the Azure TDX vector's PCK validity.
var (
	qvlAt   = time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)
	azureAt = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
)

// The FMSPCs and PCK CAs of the Intel vectors.
var (
	tdxFMSPC = [6]byte{0xb0, 0xc0, 0x6f, 0, 0, 0}
	sgxFMSPC = [6]byte{0x00, 0xa0, 0x67, 0x11, 0x00, 0x00}
)

// VerifyResult is one evidence format's verification costs, each the
// median time of one call.
type VerifyResult struct {
	Format string `json:"format"`
	// Vector says what was verified and under which roots.
	Vector string `json:"vector"`
	// WarmNs is trustbound's verification with warm caches.
	WarmNs float64 `json:"warmNs"`
	// BareNs is the signature checks no verifier of the format can avoid,
	// keys parsed and digests' inputs at hand; BareWhat names them.
	BareNs   float64 `json:"bareNs"`
	BareWhat string  `json:"bareWhat"`
	// PlainNs is the plain library call a user would write (0: none
	// exists; PlainWhat then says why).
	PlainNs   float64 `json:"plainNs,omitempty"`
	PlainWhat string  `json:"plainWhat"`
	// ColdNs is a verification with empty caches, its collateral fetched
	// from a loopback fake of the vendor service (0: not measured;
	// ColdWhat says why).
	ColdNs   float64 `json:"coldNs,omitempty"`
	ColdWhat string  `json:"coldWhat"`
	// Ratios: WarmNs/BareNs, PlainNs/WarmNs, ColdNs/WarmNs (0 when a side
	// is missing).
	WarmOverBare  float64 `json:"warmOverBare"`
	PlainOverWarm float64 `json:"plainOverWarm,omitempty"`
	ColdOverWarm  float64 `json:"coldOverWarm,omitempty"`
}

// vcase is one format's measured operations; nil plain or cold is "n/a".
type vcase struct {
	format, vector string
	warm, bare     func() error
	bareWhat       string
	plain          func() error
	plainWhat      string
	cold           func() error
	coldWhat       string
	cleanup        func()
}

func runVerify(ctx context.Context, t timing) ([]VerifyResult, error) {
	builders := []func(context.Context) (*vcase, error){snpCase, azureSNPCase, tdxCase, sgxCase, azureTDXCase}
	var out []VerifyResult
	for _, build := range builders {
		c, err := build(ctx)
		if err != nil {
			return nil, err
		}
		r, err := c.measure(t)
		if c.cleanup != nil {
			c.cleanup()
		}
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", c.format, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (c *vcase) measure(t timing) (VerifyResult, error) {
	r := VerifyResult{Format: c.format, Vector: c.vector, BareWhat: c.bareWhat, PlainWhat: c.plainWhat, ColdWhat: c.coldWhat}
	var err error
	if r.WarmNs, err = t.measure(c.warm); err != nil {
		return r, fmt.Errorf("warm: %w", err)
	}
	if r.BareNs, err = t.measure(c.bare); err != nil {
		return r, fmt.Errorf("bare: %w", err)
	}
	r.WarmOverBare = r.WarmNs / r.BareNs
	if c.plain != nil {
		if r.PlainNs, err = t.measure(c.plain); err != nil {
			return r, fmt.Errorf("plain: %w", err)
		}
		r.PlainOverWarm = r.PlainNs / r.WarmNs
	}
	if c.cold != nil {
		if r.ColdNs, err = t.measure(c.cold); err != nil {
			return r, fmt.Errorf("cold: %w", err)
		}
		r.ColdOverWarm = r.ColdNs / r.WarmNs
	}
	return r, nil
}

// simSNPRoots are the simulated Milan roots; withCRL preloads the
// simulated CRL (warm path), without it the CRL is fetched.
func simSNPRoots(withCRL bool) map[string][]*trust.AMDRootCerts {
	ark, ask := simtee.SNPRoots()
	r := simtee.SNPTrust(ark, ask)
	if !withCRL {
		r = &trust.AMDRootCerts{ProductLine: r.ProductLine, ProductCerts: r.ProductCerts, AskSev: r.AskSev, ArkSev: r.ArkSev}
	}
	return map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {r}}
}

// p384Check is the one ECDSA P-384 verification of an SNP report by its
// VCEK.
func p384Check(report, vcekDER []byte) (func() bool, error) {
	cert, err := x509.ParseCertificate(vcekDER)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("VCEK key is %T", cert.PublicKey)
	}
	signed := sevabi.SignedComponent(report)
	sig := report[0x2A0:]
	r, s := sevabi.AmdBigInt(sig[:0x48]), sevabi.AmdBigInt(sig[0x48:0x90])
	return func() bool {
		d := sha512.Sum384(signed)
		return ecdsa.Verify(pub, d[:], r, s)
	}, nil
}

// p256Check is one ECDSA P-256 verification of msg by key (r‖s).
func p256Check(pub *ecdsa.PublicKey, msg []byte, sig [64]byte) func() bool {
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	return func() bool {
		h := sha256.Sum256(msg)
		return ecdsa.Verify(pub, h[:], r, s)
	}
}

// rsaQuoteCheck is the RSASSA-PKCS1-v1.5/SHA-256 check of a vTPM quote by
// the attestation key the HCL runtime claims name.
func rsaQuoteCheck(hclReport []byte, q azure.TPMQuote) (func() bool, []byte, error) {
	hcl, err := azure.ParseHCLReport(hclReport)
	if err != nil {
		return nil, nil, err
	}
	rc, err := azure.ParseRuntimeClaims(hcl.VarData)
	if err != nil {
		return nil, nil, err
	}
	ak, err := rc.AKPub()
	if err != nil {
		return nil, nil, err
	}
	return func() bool {
		h := sha256.Sum256(q.Message)
		return rsa.VerifyPKCS1v15(ak, crypto.SHA256, h[:], q.Signature) == nil
	}, hcl.HardwareReport, nil
}

func boolErr(ok bool, what string) error {
	if !ok {
		return fmt.Errorf("%s does not verify", what)
	}
	return nil
}

// snpVendor is a loopback fake KDS serving vcekDER at vcekURL and a
// simulated CRL valid around now.
func snpVendor(now time.Time, vcekURL string, vcekDER []byte) (*fakeVendor, error) {
	crl, err := simtee.SNPRevocationList(nil, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	fv := newFakeVendor()
	if err := fv.serveSNP(vcekURL, vcekDER, crl); err != nil {
		fv.close()
		return nil, err
	}
	return fv, nil
}

func snpCase(ctx context.Context) (*vcase, error) {
	now := time.Now()
	ev, err := simtee.SNP{}.Attest(ctx, [64]byte{1})
	if err != nil {
		return nil, err
	}
	opts := attest.Options{Now: now, AllowSimulated: true}
	v := snp.NewVerifier(snp.Config{Simulated: simSNPRoots(true)})
	check, err := p384Check(ev.Data, ev.Certs[0])
	if err != nil {
		return nil, err
	}
	report, err := sevabi.ReportToProto(ev.Data)
	if err != nil {
		return nil, err
	}
	fv, err := snpVendor(now, kds.VCEKCertURL(simtee.SNPProductLine, report.GetChipId(), kds.TCBVersion(report.GetReportedTcb())), ev.Certs[0])
	if err != nil {
		return nil, err
	}
	bare := &attest.Evidence{Format: ev.Format, Data: ev.Data} // no certificates: the VCEK is fetched
	return &vcase{
		format: string(attest.FormatSNPReport), vector: "simulated Milan report (attest/simtee roots), CRL checked",
		warm:     func() error { _, err := v.Verify(ctx, ev, opts); return err },
		bare:     func() error { return boolErr(check(), "report signature") },
		bareWhat: "1× ECDSA P-384",
		plain: func() error {
			r, err := sevabi.ReportToProto(ev.Data)
			if err != nil {
				return err
			}
			return sevverify.SnpAttestation(&spb.Attestation{Report: r}, &sevverify.Options{
				CheckRevocations: true, Getter: sevGetter{fv}, Now: now, TrustedRoots: simSNPRoots(false)})
		},
		plainWhat: "go-sev-guest verify.SnpAttestation, VCEK and CRL fetched from a loopback fake KDS, no cache",
		cold: func() error {
			f, err := fv.fetcher(time.Now)
			if err != nil {
				return err
			}
			cv := snp.NewVerifier(snp.Config{Simulated: simSNPRoots(false), Getter: f})
			_, err = cv.Verify(ctx, bare, opts)
			return err
		},
		coldWhat: "new verifier and empty collateral.Fetcher: VCEK and CRL from a loopback fake KDS",
		cleanup:  fv.close,
	}, nil
}

func azureSNPCase(ctx context.Context) (*vcase, error) {
	now := time.Now()
	ev, err := simtee.AzureSNP{}.Attest(ctx, [64]byte{2})
	if err != nil {
		return nil, err
	}
	opts := attest.Options{Now: now, AllowSimulated: true}
	v := azure.NewVerifier(azure.Config{SNP: snp.NewVerifier(snp.Config{Simulated: simSNPRoots(true)})})
	e, err := azure.ParseEvidence(ev.Data)
	if err != nil {
		return nil, err
	}
	rsaCheck, hw, err := rsaQuoteCheck(e.HCLReport, e.Quote)
	if err != nil {
		return nil, err
	}
	check, err := p384Check(hw, e.VCEK)
	if err != nil {
		return nil, err
	}
	fv, err := snpVendor(now, "https://kdsintf.amd.com/vcek/v1/Milan/unused", e.VCEK)
	if err != nil {
		return nil, err
	}
	return &vcase{
		format: string(attest.FormatAzureSNPVTPM), vector: "simulated Azure CVM (simtee.AzureSNP: attest/simtee AMD roots), CRL checked",
		warm:     func() error { _, err := v.Verify(ctx, ev, opts); return err },
		bare:     func() error { return boolErr(check() && rsaCheck(), "report or quote signature") },
		bareWhat: "1× ECDSA P-384 + 1× RSA-2048 PKCS#1 v1.5",
		plainWhat: "n/a: no plain Go library verifies az-snp-vtpm evidence (Microsoft ships none; " +
			"go-sev-guest sees only the SNP report, not the HCL binding or the vTPM quote)",
		cold: func() error {
			f, err := fv.fetcher(time.Now)
			if err != nil {
				return err
			}
			cv := azure.NewVerifier(azure.Config{SNP: snp.NewVerifier(snp.Config{Simulated: simSNPRoots(false), Getter: f})})
			_, err = cv.Verify(ctx, ev, opts)
			return err
		},
		coldWhat: "new verifier and empty collateral.Fetcher: CRL from a loopback fake KDS (the VCEK travels in the evidence)",
		cleanup:  fv.close,
	}, nil
}

// dcapBare is the two ECDSA P-256 checks of a DCAP quote: the QE report
// by the PCK key and the quote by the attestation key.
func dcapBare(pckDER []byte, attKey [64]byte, signedByPCK []byte, qeSig [64]byte, signedByAK []byte, quoteSig [64]byte) (func() bool, error) {
	pck, err := x509.ParseCertificate(pckDER)
	if err != nil {
		return nil, err
	}
	pckKey, ok := pck.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("PCK key is %T", pck.PublicKey)
	}
	ak, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, attKey[:]...))
	if err != nil {
		return nil, err
	}
	a, b := p256Check(pckKey, signedByPCK, qeSig), p256Check(ak, signedByAK, quoteSig)
	return func() bool { return a() && b() }, nil
}

func readVector(name string) ([]byte, error) { return vectors.ReadFile("testdata/" + name) }

func qvlCollateral(name string) (*dcap.Collateral, error) {
	b, err := readVector(name)
	if err != nil {
		return nil, err
	}
	return dcap.ParseQVLCollateral(b)
}

// intelSpec is one dcap-qvl sample quote, verified at qvlAt with its real
// Intel collateral.
type intelSpec struct {
	format                attest.Format
	vector                string
	quoteFile, collateral string // under testdata/
	// kind, fmspc and ca say where the fake PCS serves the collateral.
	kind  dcap.Kind
	fmspc [6]byte
	ca    dcap.CA
	// bare parses the quote into its two P-256 checks (dcapBare).
	bare func(raw []byte) (func() bool, error)
	// verifier is the format's verifier over a collateral source.
	verifier func(dcap.Source) attest.Verifier
	// plain is the plain library call (nil: none; plainWhat says why).
	plain     func(raw []byte, fv *fakeVendor) func() error
	plainWhat string
}

// intelCase measures a DCAP quote: warm against its static collateral,
// cold against a new verifier fetching it from a loopback fake PCS.
func intelCase(ctx context.Context, sp intelSpec) (*vcase, error) {
	raw, err := readVector(sp.quoteFile)
	if err != nil {
		return nil, err
	}
	col, err := qvlCollateral(sp.collateral)
	if err != nil {
		return nil, err
	}
	check, err := sp.bare(raw)
	if err != nil {
		return nil, err
	}
	ev := &attest.Evidence{Format: sp.format, Data: raw}
	opts := attest.Options{Now: qvlAt}
	v := sp.verifier(dcap.NewStaticSource(col))
	fv := newFakeVendor()
	fv.serveIntel(sp.kind, sp.fmspc, sp.ca, col)
	c := &vcase{
		format: string(sp.format), vector: sp.vector,
		warm:      func() error { _, err := v.Verify(ctx, ev, opts); return err },
		bare:      func() error { return boolErr(check(), "QE report or quote signature") },
		bareWhat:  "2× ECDSA P-256",
		plainWhat: sp.plainWhat,
		cold: func() error {
			f, err := fv.fetcher(func() time.Time { return qvlAt })
			if err != nil {
				return err
			}
			_, err = sp.verifier(f).Verify(ctx, ev, opts)
			return err
		},
		coldWhat: "new verifier and empty collateral.Fetcher: TCB info, QE identity, PCK and root CRLs from a loopback fake PCS",
		cleanup:  fv.close,
	}
	if sp.plain != nil {
		c.plain = sp.plain(raw, fv)
	}
	return c, nil
}

// tdxBare is the two P-256 checks of a TDX quote.
func tdxBare(quote []byte) (func() bool, error) {
	q, err := tdx.ParseQuote(quote)
	if err != nil {
		return nil, err
	}
	s := &q.Signature
	return dcapBare(q.PCKChain[0], s.AttestationKey, q.SignedByPCK, s.QEReportSignature, q.SignedByAttestationKey, s.QuoteSignature)
}

func tdxCase(ctx context.Context) (*vcase, error) {
	roots := x509.NewCertPool()
	roots.AddCert(dcap.IntelSGXRoot())
	return intelCase(ctx, intelSpec{
		format: attest.FormatTDXQuote, vector: "real TDX quote v4 (dcap-qvl sample) with its real Intel collateral, at 2025-07-04",
		quoteFile: "tdx_quote.dat", collateral: "tdx_collateral.json",
		kind: dcap.TDX, fmspc: tdxFMSPC, ca: dcap.PlatformCA,
		bare:     tdxBare,
		verifier: func(s dcap.Source) attest.Verifier { return tdx.NewVerifier(tdx.Config{Collateral: s}) },
		plain: func(raw []byte, fv *fakeVendor) func() error {
			return func() error {
				pq, err := tdxabi.QuoteToProto(raw)
				if err != nil {
					return err
				}
				return tdxverify.TdxQuote(pq, &tdxverify.Options{
					TrustedRoots: roots, GetCollateral: true, CheckRevocations: true, Getter: tdxGetter{fv},
					Now: &tdxverify.TimeSet{PckCertChain: qvlAt, TcbInfo: qvlAt, QeIdentity: qvlAt, PckCrl: qvlAt, RootCaCrl: qvlAt},
				})
			}
		},
		plainWhat: "go-tdx-guest verify.TdxQuote, collateral from a loopback fake PCS, no cache",
	})
}

func sgxCase(ctx context.Context) (*vcase, error) {
	return intelCase(ctx, intelSpec{
		format: attest.FormatSGXQuoteV3, vector: "real SGX quote v3 (dcap-qvl sample) with its real Intel collateral, at 2025-07-04",
		quoteFile: "sgx_quote.dat", collateral: "sgx_collateral.json",
		kind: dcap.SGX, fmspc: sgxFMSPC, ca: dcap.ProcessorCA,
		bare: func(raw []byte) (func() bool, error) {
			q, err := sgx.ParseQuote(raw)
			if err != nil {
				return nil, err
			}
			s := &q.Signature
			return dcapBare(q.PCKChain[0], s.AttestationKey, q.SignedByPCK, s.QEReportSignature, q.SignedByAttestationKey, s.ISVSignature)
		},
		verifier:  func(s dcap.Source) attest.Verifier { return sgx.NewVerifier(sgx.Config{Collateral: s}) },
		plainWhat: "n/a: no plain Go library verifies SGX DCAP quotes with collateral (Intel's QVL is C++, dcap-qvl Rust)",
	})
}

func azureTDXCase(ctx context.Context) (*vcase, error) {
	raw, err := readVector("az_tdx_evidence.json")
	if err != nil {
		return nil, err
	}
	e, err := azure.ParseTDXEvidence(raw)
	if err != nil {
		return nil, err
	}
	rsaCheck, _, err := rsaQuoteCheck(e.HCLReport, e.Quote)
	if err != nil {
		return nil, err
	}
	check, err := tdxBare(e.TDQuote)
	if err != nil {
		return nil, err
	}
	ev := &attest.Evidence{Format: attest.FormatAzureTDXVTPM, Data: raw}
	opts := attest.Options{Now: azureAt, SkipCollateral: true}
	v := azure.NewTDXVerifier(azure.TDXConfig{TDX: tdx.NewVerifier(tdx.Config{})})
	return &vcase{
		format: string(attest.FormatAzureTDXVTPM), vector: "real Azure TDX CVM evidence (trustee vector), at 2026-11-27, without collateral (none for its FMSPC among the vectors)",
		warm:     func() error { _, err := v.Verify(ctx, ev, opts); return err },
		bare:     func() error { return boolErr(check() && rsaCheck(), "TD quote or vTPM quote signature") },
		bareWhat: "2× ECDSA P-256 + 1× RSA-2048 PKCS#1 v1.5",
		plainWhat: "n/a: no plain Go library verifies az-tdx-vtpm evidence (go-tdx-guest sees only the TD quote, " +
			"not the HCL binding or the vTPM quote)",
		cold: func() error {
			_, err := azure.NewTDXVerifier(azure.TDXConfig{TDX: tdx.NewVerifier(tdx.Config{})}).Verify(ctx, ev, opts)
			return err
		},
		coldWhat: "new verifier (empty PCK chain cache), no collateral fetched",
	}, nil
}
