package sgx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/sgx"
)

// BenchmarkVerify compares one full verification of the dcap-qvl quote
// with warm collateral (PCK chain, QE identity, TCB level, revocation) with
// the two ECDSA P-256 verifications no verifier can skip: the QE report by
// the PCK key and the quote by the attestation key.
func BenchmarkVerify(b *testing.B) {
	quote := readTestdata(b, "qvl_sgx_quote_v3.dat")
	q, err := sgx.ParseQuote(quote)
	if err != nil {
		b.Fatal(err)
	}
	pck, err := x509.ParseCertificate(q.PCKChain[0])
	if err != nil {
		b.Fatal(err)
	}
	pckKey := pck.PublicKey.(*ecdsa.PublicKey)
	attKey, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, q.Signature.AttestationKey[:]...))
	if err != nil {
		b.Fatal(err)
	}
	check := func(k *ecdsa.PublicKey, msg []byte, sig [64]byte) bool {
		h := sha256.Sum256(msg)
		return ecdsa.Verify(k, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	b.Run("bare-2xP256", func(b *testing.B) {
		for b.Loop() {
			if !check(pckKey, q.SignedByPCK, q.Signature.QEReportSignature) || !check(attKey, q.SignedByAttestationKey, q.Signature.ISVSignature) {
				b.Fatal("signature")
			}
		}
	})
	v := sgx.NewVerifier(sgx.Config{Collateral: dcap.NewStaticSource(qvlCollateral(b))})
	ev := quoteEvidence(quote)
	opts := attest.Options{Now: qvlAt}
	if _, err := v.Verify(context.Background(), ev, opts); err != nil {
		b.Fatal(err)
	}
	b.Run("full-warm-collateral", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Verify(context.Background(), ev, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
