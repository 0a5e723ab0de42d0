package azure_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-sev-guest/verify/trust"
	"github.com/google/go-tpm/tpm2"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

// at is inside the validity of every real VCEK here (the earliest ends 2030).
var at = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifier checks real reports against go-sev-guest's embedded AMD roots
// and simulated ones against simtee's, like attest/formats.
func verifier() *azure.Verifier {
	return azure.NewVerifier(azure.Config{SNP: snp.NewVerifier(snp.Config{
		Simulated: map[string][]*trust.AMDRootCerts{simtee.SNPProductLine: {simtee.SNPTrust(simtee.SNPRoots())}},
	})})
}

// keys are RSA keys made once for the tests that build their own evidence.
var keys = sync.OnceValue(func() []*rsa.PrivateKey {
	var ks []*rsa.PrivateKey
	for _, bits := range []int{2048, 2048, 1024} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		ks = append(ks, k)
	}
	return ks
})

// build describes evidence assembled here, piece by piece, so that tests
// can vary what attest/simtee always does right. Zero values give valid
// evidence: schema 1, SHA-256 binding, all 24 PCRs, nonce "n".
type build struct {
	version   int // 0, 1 or 2
	hashType  uint32
	selection []byte // PCR bitmap; nil means all 24
	nonce     []byte
	userData  string
	ak        *rsa.PrivateKey // signs the quote; nil means keys()[0]
	claimed   *rsa.PublicKey  // the HCLAkPub in the runtime claims; nil means the AK
	runtime   []byte          // var data; nil means claims naming the AK
	magic     tpm2.TPMGenerated
	stType    tpm2.TPMST
	pcrs      [][]byte // presented values; nil means the selected ones of pcrValue
}

func pcrValue(i int) []byte { v := sha256.Sum256([]byte{byte(i)}); return v[:] }

func (b build) evidence(t testing.TB) *attest.Evidence {
	t.Helper()
	ak := b.ak
	if ak == nil {
		ak = keys()[0]
	}
	claimed := b.claimed
	if claimed == nil {
		claimed = &ak.PublicKey
	}
	nonce := b.nonce
	if nonce == nil {
		nonce = []byte("n")
	}
	varData := b.runtime
	if varData == nil {
		var err error
		varData, err = json.Marshal(map[string]any{
			"keys": []map[string]any{{
				"kid": "HCLAkPub", "key_ops": []string{"sign"}, "kty": "RSA",
				"e": base64.RawURLEncoding.EncodeToString([]byte{1, 0, 1}),
				"n": base64.RawURLEncoding.EncodeToString(claimed.N.Bytes()),
			}},
			"vm-configuration": map[string]any{"secure-boot": true, "vmUniqueId": "x", "current-time": 1700000000},
			"user-data":        b.userData,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	hashType := b.hashType
	if hashType == 0 {
		hashType = 1
	}
	snpEv, err := simtee.SNP{}.Attest(context.Background(), hclBinding(hashType, varData))
	if err != nil {
		t.Fatal(err)
	}
	hcl := hclReport(2600, snpEv.Data, 2, hashType, varData)

	sel := b.selection
	if sel == nil {
		sel = []byte{0xff, 0xff, 0xff}
	}
	var selected [][]byte
	for i := range 8 * len(sel) {
		if sel[i/8]&(1<<(i%8)) != 0 {
			selected = append(selected, pcrValue(i))
		}
	}
	digest := sha256.New()
	for _, v := range selected {
		digest.Write(v)
	}
	magic, stType := b.magic, b.stType
	if magic == 0 {
		magic = tpm2.TPMGeneratedValue
	}
	if stType == 0 {
		stType = tpm2.TPMSTAttestQuote
	}
	msg := tpm2.Marshal(&tpm2.TPMSAttest{
		Magic:           magic,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: append([]byte{0, 0xb}, make([]byte, 32)...)},
		ExtraData:       tpm2.TPM2BData{Buffer: nonce},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: sel}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest.Sum(nil)},
		}),
	})
	binary.BigEndian.PutUint16(msg[4:], uint16(stType)) // after marshalling, so that any type can be claimed
	d := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, ak, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	pcrs := b.pcrs
	if pcrs == nil {
		pcrs = selected
	}
	return &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: encode(t, b.version, hcl, snpEv.Certs[0], msg, sig, pcrs)}
}

// hclBinding is the report data by which an HCL report of hashType (1
// SHA-256, 2 SHA-384, 3 SHA-512) binds its var data, computed here
// independently of the package.
func hclBinding(hashType uint32, varData []byte) [64]byte {
	var rd [64]byte
	switch hashType {
	case 2:
		s := sha512.Sum384(varData)
		copy(rd[:], s[:])
	case 3:
		s := sha512.Sum512(varData)
		copy(rd[:], s[:])
	default:
		s := sha256.Sum256(varData)
		copy(rd[:], s[:])
	}
	return rd
}

// hclReport lays out an HCL report of size bytes: header, the hardware
// report, then the IGVM request data (report type 2 for SNP, 4 for TDX;
// hashType; varData).
func hclReport(size int, report []byte, reportType, hashType uint32, varData []byte) []byte {
	hcl := make([]byte, size)
	le := binary.LittleEndian
	copy(hcl, "HCLA")
	le.PutUint32(hcl[4:], 2)
	le.PutUint32(hcl[8:], uint32(1236+len(varData)))
	le.PutUint32(hcl[12:], 2)
	copy(hcl[32:], report)
	le.PutUint32(hcl[1216:], uint32(20+len(varData)))
	le.PutUint32(hcl[1220:], 1)
	le.PutUint32(hcl[1224:], reportType)
	le.PutUint32(hcl[1228:], hashType)
	le.PutUint32(hcl[1232:], uint32(len(varData)))
	copy(hcl[1236:], varData)
	return hcl
}

// encode writes az-snp-vtpm JSON of the given schema.
func encode(t testing.TB, version int, hcl, vcek, msg, sig []byte, pcrs [][]byte) []byte {
	t.Helper()
	var v any
	if version == 0 {
		nums := func(b []byte) []int {
			n := make([]int, len(b))
			for i, c := range b {
				n[i] = int(c)
			}
			return n
		}
		var ps [][]int
		for _, p := range pcrs {
			ps = append(ps, nums(p))
		}
		v = map[string]any{
			"quote":  map[string]any{"signature": nums(sig), "message": nums(msg), "pcrs": ps},
			"report": nums(hcl),
			"vcek":   "-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(vcek) + "\n-----END CERTIFICATE-----\n",
		}
	} else {
		var ps []string
		for _, p := range pcrs {
			ps = append(ps, hex.EncodeToString(p))
		}
		v = map[string]any{
			"version":    version,
			"tpm_quote":  map[string]any{"signature": hex.EncodeToString(sig), "message": hex.EncodeToString(msg), "pcrs": ps},
			"hcl_report": base64.URLEncoding.EncodeToString(hcl),
			"vcek":       base64.URLEncoding.EncodeToString(vcek),
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
