package snp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

// benchCase is one report benchmarked three ways: a warm verification
// through snp.Verifier, the bare ECDSA P-384 check that is its floor, and
// go-sev-guest's plain verify.SnpAttestation.
type benchCase struct {
	name     string
	ev       *attest.Evidence
	verifier *snp.Verifier
	opts     attest.Options
	roots    map[string][]*trust.AMDRootCerts // for go-sev-guest; nil: its embedded roots
}

// benchCases: "real-milan" is go-sev-guest's real Milan report with its
// VCEK; its CRL is not among the vectors, so the getter answers from memory
// that it has none and the verifier allows that. "simulated-milan" is a
// simulated Milan report whose CRL the getter serves from memory, so the
// warm path includes the full revocation check.
func benchCases(b *testing.B) []benchCase {
	real := realVectors[0].evidence(b)
	sim, err := simtee.SNP{}.Attest(context.Background(), [64]byte{1})
	if err != nil {
		b.Fatal(err)
	}
	crl, err := simtee.SNPRevocationList(nil, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	return []benchCase{
		{
			name: "real-milan", ev: real, opts: attest.Options{Now: now},
			verifier: snp.NewVerifier(snp.Config{Simulated: simRoots(), Getter: newGetter(nil), AllowMissingCRL: true}),
		},
		{
			name: "simulated-milan", ev: sim, opts: simulation, roots: simRoots(),
			verifier: snp.NewVerifier(snp.Config{Simulated: simRootsWithCRL(b, nil), Getter: newGetter(map[string][]byte{simtee.SNPCRLURL(): crl})}),
		},
	}
}

func BenchmarkVerifyWarm(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			if _, err := bc.verifier.Verify(ctx, bc.ev, bc.opts); err != nil { // warm the caches
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.verifier.Verify(ctx, bc.ev, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyWarmParallel is BenchmarkVerifyWarm from all Ps at once,
// for the cache's locking.
func BenchmarkVerifyWarmParallel(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			if _, err := bc.verifier.Verify(ctx, bc.ev, bc.opts); err != nil {
				b.Fatal(err)
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := bc.verifier.Verify(ctx, bc.ev, bc.opts); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkBareP384 is the floor: one ecdsa.Verify of the report's
// signature with the VCEK's public key, the digest computed beforehand.
func BenchmarkBareP384(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			cert, err := x509.ParseCertificate(bc.ev.Certs[0])
			if err != nil {
				b.Fatal(err)
			}
			pub := cert.PublicKey.(*ecdsa.PublicKey)
			digest := sha512.Sum384(abi.SignedComponent(bc.ev.Data))
			sig := bc.ev.Data[0x2A0:]
			r, s := abi.AmdBigInt(sig[:0x48]), abi.AmdBigInt(sig[0x48:0x90])
			b.ReportAllocs()
			for b.Loop() {
				if !ecdsa.Verify(pub, digest[:], r, s) {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}

// BenchmarkGoSevGuestPlain is go-sev-guest's verify.SnpAttestation on the
// same report with its VCEK and the same trusted roots, offline, without a
// cache: parse, chain (two RSA-4096 PSS checks), signature.
func BenchmarkGoSevGuestPlain(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			opts := &verify.Options{DisableCertFetching: true, Now: bc.opts.Now, TrustedRoots: bc.roots}
			b.ReportAllocs()
			for b.Loop() {
				r, err := abi.ReportToProto(bc.ev.Data)
				if err != nil {
					b.Fatal(err)
				}
				if err := verify.SnpAttestation(&spb.Attestation{Report: r, CertificateChain: &spb.CertificateChain{VcekCert: bc.ev.Certs[0]}}, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestVerifyConcurrent runs verifications of several reports from many
// goroutines on one Verifier (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	// Simulated reports checked against the preloaded simulated CRL; real
	// ones without a CRL.
	v := snp.NewVerifier(snp.Config{Simulated: simRoots(), AllowMissingCRL: true})
	type job struct {
		ev   *attest.Evidence
		opts attest.Options
	}
	var jobs []job
	for _, rv := range realVectors {
		jobs = append(jobs, job{rv.evidence(t), attest.Options{Now: rv.at}})
	}
	for i := range 4 {
		ev := attestSim(t, simtee.SNP{TCB: simtee.SNPTCB{Bootloader: 1, SNP: uint8(i + 1)}}, [64]byte{byte(i)})
		jobs = append(jobs, job{ev, simulation})
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				j := jobs[(g+i)%len(jobs)]
				if _, err := v.Verify(context.Background(), j.ev, j.opts); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
