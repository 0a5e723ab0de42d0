package snp

import (
	"bytes"
	"context"
	"encoding/pem"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest/simtee"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseCertTable: the GHCB certificate table parser never panics, and
// what it accepts is a set of non-overlapping, non-empty pieces of the blob
// after its rows, with nothing but zeros between them and nothing after.
//
//	go test -run=NONE -fuzz=FuzzParseCertTable -fuzztime=1m -fuzzminimizetime=100x ./attest/snp/
func FuzzParseCertTable(f *testing.F) {
	sim, err := simtee.SNP{}.Attest(context.Background(), [64]byte{})
	if err != nil {
		f.Fatal(err)
	}
	table := func(certs ...[]byte) []byte {
		guids := []string{abi.VcekGUID, abi.AskGUID, abi.ArkGUID, abi.VlekGUID}
		var rows, data []byte
		off := (len(certs) + 1) * abi.CertTableEntrySize
		for i, c := range certs {
			r := make([]byte, abi.CertTableEntrySize)
			g := mustGUID(guids[i])
			copy(r, g[:])
			r[16], r[17], r[18], r[19] = byte(off), byte(off>>8), byte(off>>16), byte(off>>24)
			r[20], r[21], r[22], r[23] = byte(len(c)), byte(len(c)>>8), byte(len(c)>>16), byte(len(c)>>24)
			rows = append(rows, r...)
			data = append(data, c...)
			off += len(c)
		}
		return append(append(rows, make([]byte, abi.CertTableEntrySize)...), data...)
	}
	f.Add(table(sim.Certs...))
	f.Add(table(readFile(f, "gosevguest-milan-vcek.der")))
	f.Add(table(readFile(f, "trustee-milan-vlek.der"), []byte{1}))
	f.Add([]byte{})
	f.Add(make([]byte, abi.CertTableEntrySize))
	f.Add(table([]byte{1, 2, 3}, []byte{4}))
	f.Fuzz(func(t *testing.T, aux []byte) {
		certs, err := parseCertTable(aux)
		if err != nil {
			return
		}
		if len(aux) == 0 {
			if len(certs) != 0 {
				t.Fatal("certificates from an empty blob")
			}
			return
		}
		header := (len(certs) + 1) * abi.CertTableEntrySize
		covered := make([]bool, len(aux))
		for g, c := range certs {
			if len(c) == 0 {
				t.Fatalf("%s: empty", g)
			}
			i := bytes.Index(aux[header:], c)
			if i < 0 {
				t.Fatalf("%s: not in the data area", g)
			}
		}
		// Re-derive the ranges from the rows to check coverage.
		for i := range len(certs) {
			r := aux[i*abi.CertTableEntrySize:]
			off := int(uint32(r[16]) | uint32(r[17])<<8 | uint32(r[18])<<16 | uint32(r[19])<<24)
			n := int(uint32(r[20]) | uint32(r[21])<<8 | uint32(r[22])<<16 | uint32(r[23])<<24)
			for j := off; j < off+n; j++ {
				if covered[j] {
					t.Fatalf("byte %d covered twice", j)
				}
				covered[j] = true
			}
		}
		end := header
		for j := header; j < len(aux); j++ {
			if covered[j] {
				end = j + 1
			} else if aux[j] != 0 {
				t.Fatalf("uncovered byte %d is %#x", j, aux[j])
			}
		}
		if end != len(aux) {
			t.Fatalf("blob ends at %d, its last certificate at %d", len(aux), end)
		}
	})
}

// FuzzCRL: CRL parsing and verification against the simulated ARK never
// panic; a CRL that verifies has a revocation set.
//
//	go test -run=NONE -fuzz=FuzzCRL -fuzztime=1m -fuzzminimizetime=100x ./attest/snp/
func FuzzCRL(f *testing.F) {
	ark, ask := simtee.SNPRoots()
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for _, serials := range [][]*big.Int{nil, {ask.SerialNumber}} {
		der, err := simtee.SNPRevocationList(serials, now, now.Add(time.Hour))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	}
	f.Add([]byte("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		crl, err := parseCRL(b)
		if err != nil {
			return
		}
		revs, err := verifyCRL(crl, ark)
		if err != nil {
			return
		}
		if revs.revoked == nil {
			t.Fatal("verified CRL without a revocation set")
		}
		_ = revs.freshAt(now)
	})
}

// FuzzEndorsementCert: VCEK/VLEK certificate parsing and chain checking
// never panic, and what verifies carries its whole chain and a window.
//
//	go test -run=NONE -fuzz=FuzzEndorsementCert -fuzztime=1m -fuzzminimizetime=100x ./attest/snp/
func FuzzEndorsementCert(f *testing.F) {
	sim, err := simtee.SNP{}.Attest(context.Background(), [64]byte{})
	if err != nil {
		f.Fatal(err)
	}
	for _, der := range [][]byte{
		sim.Certs[0], sim.Certs[1],
		readFile(f, "gosevguest-milan-vcek.der"), readFile(f, "trustee-milan-vcek.der"), readFile(f, "trustee-milan-vlek.der"),
		readFile(f, "trustee-vcek-invalid-legacy.der"), readFile(f, "trustee-vcek-invalid-new.der"),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sim.Certs[0]}),
	} {
		f.Add(der, false)
		f.Add(der, true)
	}
	roots := embeddedRoots()
	simulated := map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}}
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, der []byte, vlek bool) {
		key := abi.VcekReportSigner
		if vlek {
			key = abi.VlekReportSigner
		}
		for _, line := range []string{"", "Milan"} {
			e, _, err := verifyEndorsement(der, key, line, roots, simulated, at)
			if err != nil {
				if e != nil {
					t.Fatal("endorsement with an error")
				}
				continue
			}
			if e.pub == nil || e.exts == nil || e.intermediate == nil || e.ark == nil || e.roots == nil ||
				e.notAfter.Before(e.notBefore) || !e.validAt(at) {
				t.Fatalf("incomplete endorsement %+v", e)
			}
		}
	})
}
