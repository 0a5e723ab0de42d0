package tdx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	tdxverify "github.com/google/go-tdx-guest/verify"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/tdx"
)

// The three benchmarks verify the dcap-qvl TDX quote at 2025-07-04, inside
// its collateral's window:
//
//   - BenchmarkVerifyWarm: this package's full verification (parse, PCK
//     chain, QE report, attestation key, quote signature, collateral
//     signatures and CRLs, TCB evaluation) with warm caches;
//   - BenchmarkBareP256x2: only the two ECDSA P-256 verifications no cache
//     can save (the QE report by the PCK key, the quote by the attestation
//     key), keys parsed beforehand;
//   - BenchmarkGoTdxGuestPlain: go-tdx-guest's verify.TdxQuote with the
//     same collateral through its Getter (parse, chains, collateral and
//     TCB status, revocation), which caches nothing.

func BenchmarkVerifyWarm(b *testing.B) {
	src := &source{kind: dcap.TDX, fmspc: qvlFMSPC, ca: dcap.PlatformCA, c: qvlCollateral(b, "dcap-qvl-tdx_quote_collateral.json")}
	v := tdx.NewVerifier(tdx.Config{Collateral: src})
	ev := evidence(readTestdata(b, "dcap-qvl-tdx_quote"))
	opts := attest.Options{Now: qvlAt}
	ctx := context.Background()
	c, err := v.Verify(ctx, ev, opts) // warm the caches
	if err != nil || c.TCB.Status != "UpToDate" {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareP256x2(b *testing.B) {
	q := mustParse(b, readTestdata(b, "dcap-qvl-tdx_quote"))
	pck, err := x509.ParseCertificate(q.PCKChain[0])
	if err != nil {
		b.Fatal(err)
	}
	pckKey := pck.PublicKey.(*ecdsa.PublicKey)
	attKey, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, q.Signature.AttestationKey[:]...))
	if err != nil {
		b.Fatal(err)
	}
	s := &q.Signature
	qeR, qeS := new(big.Int).SetBytes(s.QEReportSignature[:32]), new(big.Int).SetBytes(s.QEReportSignature[32:])
	qR, qS := new(big.Int).SetBytes(s.QuoteSignature[:32]), new(big.Int).SetBytes(s.QuoteSignature[32:])
	b.ReportAllocs()
	for b.Loop() {
		h1 := sha256.Sum256(q.SignedByPCK)
		h2 := sha256.Sum256(q.SignedByAttestationKey)
		if !ecdsa.Verify(pckKey, h1[:], qeR, qeS) || !ecdsa.Verify(attKey, h2[:], qR, qS) {
			b.Fatal("signature")
		}
	}
}

// pcsGetter serves one platform's collateral at Intel PCS URLs, as
// go-tdx-guest's verify package asks for it: bodies, and issuer chains in
// URL-escaped PEM headers.
type pcsGetter struct {
	c *dcap.Collateral
}

func (g *pcsGetter) Get(u string) (map[string][]string, []byte, error) {
	hdr := func(k string, chain []byte) map[string][]string {
		return map[string][]string{k: {url.QueryEscape(string(chain))}}
	}
	switch {
	case strings.Contains(u, "/tcb?fmspc="):
		return hdr(pcs.TcbInfoIssuerChainPhrase, g.c.TCBInfoIssuerChain), g.c.TCBInfo, nil
	case strings.HasSuffix(u, "/qe/identity"):
		return hdr(pcs.SgxQeIdentityIssuerChainPhrase, g.c.QEIdentityIssuerChain), g.c.QEIdentity, nil
	case strings.Contains(u, "/pckcrl?"):
		return hdr(pcs.SgxPckCrlIssuerChainPhrase, g.c.PCKCRLIssuerChain), g.c.PCKCRL, nil
	case strings.HasSuffix(u, "IntelSGXRootCA.der"):
		return nil, g.c.RootCACRL, nil
	}
	return nil, nil, &url.Error{Op: "GET", URL: u, Err: errNotFound}
}

var errNotFound = errorString("404")

type errorString string

func (e errorString) Error() string { return string(e) }

func goTdxGuestOptions(g *pcsGetter, at time.Time) *tdxverify.Options {
	roots := x509.NewCertPool()
	roots.AddCert(dcap.IntelSGXRoot())
	return &tdxverify.Options{
		TrustedRoots:     roots,
		GetCollateral:    true,
		CheckRevocations: true,
		Getter:           g,
		Now:              &tdxverify.TimeSet{PckCertChain: at, TcbInfo: at, QeIdentity: at, PckCrl: at, RootCaCrl: at},
	}
}

func BenchmarkGoTdxGuestPlain(b *testing.B) {
	raw := readTestdata(b, "dcap-qvl-tdx_quote")
	g := &pcsGetter{c: qvlCollateral(b, "dcap-qvl-tdx_quote_collateral.json")}
	b.ReportAllocs()
	for b.Loop() {
		q, err := abi.QuoteToProto(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := tdxverify.TdxQuote(q, goTdxGuestOptions(g, qvlAt)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGoTdxGuestAgrees: the benchmark's go-tdx-guest setup verifies the
// dcap-qvl quote at 2025-07-04 and refuses it now, as this package does,
// so the benchmarks compare like with like.
func TestGoTdxGuestAgrees(t *testing.T) {
	raw := readTestdata(t, "dcap-qvl-tdx_quote")
	g := &pcsGetter{c: qvlCollateral(t, "dcap-qvl-tdx_quote_collateral.json")}
	q, err := abi.QuoteToProto(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := tdxverify.TdxQuote(q, goTdxGuestOptions(g, qvlAt)); err != nil {
		t.Fatalf("go-tdx-guest at 2025-07-04: %v", err)
	}
	if err := tdxverify.TdxQuote(q, goTdxGuestOptions(g, at)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("go-tdx-guest now: %v", err)
	}
	// Its v4-only abi cannot read the version 5 quotes this package verifies.
	if _, err := abi.QuoteToProto(readTestdata(t, "gotdxguest-quote_v5_sample.dat")); err == nil {
		t.Error("go-tdx-guest reads a version 5 quote now: its support may replace this package's own v5 decoder")
	}
	// The issuer chains it gets are the PEM ones of the collateral.
	if blk, _ := pem.Decode(g.c.TCBInfoIssuerChain); blk == nil {
		t.Fatal("TCB info issuer chain is not PEM")
	}
}
