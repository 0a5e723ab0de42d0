package simtee

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustbound/trustbound/attest"
)

// AzureSNP is a simulated Azure confidential VM on SEV-SNP: a paravisor
// that writes an HCL report (runtime claims naming a fresh vTPM attestation
// key, bound into a simulated SNP report at VMPL 0) and a vTPM that quotes
// its PCRs with that key. Attest returns the evidence in the JSON shape of
// the Confidential Containers az-snp-vtpm attester, schema 2, so
// attest/azure verifies it with its real code path and reports it as
// simulated.
type AzureSNP struct {
	// SNP is the simulated SNP guest whose report the paravisor requests.
	// The real paravisor requests it at VMPL 0; a non-zero SNP.VMPL makes
	// evidence that verifiers must refuse.
	SNP SNP
	// PCRs are the vTPM's SHA-256 PCRs 0..23; the quote covers all.
	PCRs [24][32]byte
	// VMUniqueID is the vm-configuration vmUniqueId; empty means a fixed
	// simulated one.
	VMUniqueID string
	// SecureBoot and ConsoleEnabled are the vm-configuration flags of the
	// same names.
	SecureBoot, ConsoleEnabled bool
}

var _ attest.Attester = AzureSNP{}

// TEE reports attest.SEVSNP.
func (AzureSNP) TEE() attest.TEE { return attest.SEVSNP }

// azureNVReportSize is the size of vTPM NV index 0x01400001.
const azureNVReportSize = 2600

// Attest returns az-snp-vtpm evidence whose vTPM quote carries all 64 bytes
// of reportData as its qualifying data (and, as schema 2 promises, whose
// runtime claims carry them as user-data).
func (a AzureSNP) Attest(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ak, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("simtee: generating the vTPM AK: %w", err)
	}
	ek, err := azureEK()
	if err != nil {
		return nil, err
	}

	// The paravisor: runtime claims, bound into the SNP report.
	vmID := a.VMUniqueID
	if vmID == "" {
		vmID = "5D1B7A0E-7C3F-4E52-9C1A-53494D544545"
	}
	varData, err := json.Marshal(map[string]any{
		"keys": []map[string]any{
			azureJWK("HCLAkPub", "sign", &ak.PublicKey),
			azureJWK("HCLEkPub", "encrypt", ek),
		},
		"vm-configuration": map[string]any{
			"console-enabled": a.ConsoleEnabled,
			"secure-boot":     a.SecureBoot,
			"tpm-enabled":     true,
			"vmUniqueId":      vmID,
		},
		"user-data": strings.ToUpper(hex.EncodeToString(reportData[:])),
	})
	if err != nil {
		return nil, fmt.Errorf("simtee: encoding runtime claims: %w", err)
	}
	snpEv, err := a.SNP.Attest(ctx, attest.ReportDataFor(varData))
	if err != nil {
		return nil, err
	}
	hcl := azureNVReport(snpEv.Data, varData)

	// The vTPM: a quote over PCRs 0..23 with the AK.
	akName, err := tpm2.ObjectName(AzureAKPublic(ak.PublicKey.N.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("simtee: AK name: %w", err)
	}
	pcrDigest := sha256.New()
	pcrs := make([]string, len(a.PCRs))
	for i, v := range a.PCRs {
		pcrDigest.Write(v[:])
		pcrs[i] = hex.EncodeToString(v[:])
	}
	msg := tpm2.Marshal(&tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: *akName,
		ExtraData:       tpm2.TPM2BData{Buffer: reportData[:]},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 1_000_000, ResetCount: 1, RestartCount: 0, Safe: true},
		FirmwareVersion: 0x2020031200120003,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
				{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0xff, 0xff, 0xff}},
			}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: pcrDigest.Sum(nil)},
		}),
	})
	d := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, ak, crypto.SHA256, d[:])
	if err != nil {
		return nil, fmt.Errorf("simtee: signing the TPM quote: %w", err)
	}

	data, err := json.Marshal(map[string]any{
		"version": 2,
		"tpm_quote": map[string]any{
			"signature": hex.EncodeToString(sig),
			"message":   hex.EncodeToString(msg),
			"pcrs":      pcrs,
		},
		"hcl_report": base64.URLEncoding.EncodeToString(hcl),
		"vcek":       base64.URLEncoding.EncodeToString(snpEv.Certs[0]),
	})
	if err != nil {
		return nil, fmt.Errorf("simtee: encoding az-snp-vtpm evidence: %w", err)
	}
	return &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data}, nil
}

// AzureHCLReport lays out an HCL report as Azure's paravisor writes it:
// header, hardware report hw of reportType (2: SEV-SNP, 4: TDX, as
// azure.ReportType), IGVM request data, var data; of exactly its report
// size. The vTPM's NV index 0x01400001 holds it zero padded to 2600 bytes
// (what AzureSNP quotes); a test TPM whose NV indices are smaller can take
// it unpadded.
func AzureHCLReport(reportType uint32, hw, varData []byte) []byte {
	const fixed = 32 + 1184 + 20
	size := fixed + len(varData)
	b := make([]byte, size)
	le := binary.LittleEndian
	copy(b, "HCLA")
	le.PutUint32(b[4:], 2)            // version
	le.PutUint32(b[8:], uint32(size)) // report size
	le.PutUint32(b[12:], 2)           // request type: AK certificate
	copy(b[32:], hw)
	le.PutUint32(b[1216:], uint32(20+len(varData))) // data size
	le.PutUint32(b[1220:], 1)                       // request data version
	le.PutUint32(b[1224:], reportType)
	le.PutUint32(b[1228:], 1) // hash type: SHA-256
	le.PutUint32(b[1232:], uint32(len(varData)))
	copy(b[fixed:], varData)
	return b
}

// azureNVReport is the content of NV index 0x01400001: the HCL report of
// an SNP report, zero padded to the index's size.
func azureNVReport(snpReport, varData []byte) []byte {
	b := AzureHCLReport(azureReportTypeSNP, snpReport, varData)
	return append(b, make([]byte, max(0, azureNVReportSize-len(b)))...)
}

// azureReportTypeSNP is the HCL report type of an SNP report.
const azureReportTypeSNP = 2

// AzureAKPublic is the public area of an Azure vTPM attestation key: a
// restricted RSA-2048 RSASSA-SHA256 signing key with modulus n (as a
// creation template: n is the unique field, 256 bytes).
func AzureAKPublic(n []byte) *tpm2.TPMTPublic {
	return &tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgRSA,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, NoDA: true, Restricted: true, SignEncrypt: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTRSAScheme{
				Scheme:  tpm2.TPMAlgRSASSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			KeyBits: 2048,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: n}),
	}
}

// azureJWK is a runtime-claims key: an RSA JWK with unpadded base64url n, e.
func azureJWK(kid, op string, k *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kid":     kid,
		"key_ops": []string{op},
		"kty":     "RSA",
		"e":       base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		"n":       base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
	}
}

// azureEK is the simulated vTPM's endorsement key, one per process: only its
// public half appears in the runtime claims.
var azureEK = sync.OnceValues(func() (*rsa.PublicKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("simtee: generating the vTPM EK: %w", err)
	}
	return &k.PublicKey, nil
})
