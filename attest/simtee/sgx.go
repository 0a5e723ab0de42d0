package simtee

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"sync"

	"github.com/trustbound/trustbound/attest"
)

// The simulated Intel chain: see intel/README.md. Only what Attest needs is
// embedded; the CA keys stay in the repository for regenerating the leaf.
//
//go:embed intel/sgx_root_ca.pem intel/sgx_pck_processor_ca.pem intel/sgx_pck.pem intel/sgx_pck.key.pem
var sgxIntelFS embed.FS

// The simulated platform, as its PCK certificate describes it (keep in step
// with attest/simtee/internal/gen-intel; TestSGXEmbeddedPCK checks).
var (
	sgxSimCPUSVN = [16]byte{0x0e, 0x0e, 0x02, 0x04, 0x01, 0x80, 0x0d}
	// sgxSimIntelQEVendorID is the QE vendor ID of Intel's quoting enclave,
	// which the simulated QE reports as it stands in for it.
	sgxSimIntelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}
)

const (
	sgxSimPCESVN = 13
	sgxSimQESVN  = 8
	// ATTRIBUTES: FLAGS INIT|MODE64BIT (|DEBUG), XFRM x87|SSE|AVX.
	sgxFlagInit         = 1 << 0
	sgxFlagDebug        = 1 << 1
	sgxFlagMode64Bit    = 1 << 2
	sgxFlagProvisionKey = 1 << 4
	sgxXFRM             = 0x7
)

type sgxChain struct {
	root    *x509.Certificate
	pckKey  *ecdsa.PrivateKey
	certPEM []byte // leaf, PCK Processor CA, root, as Intel's quote provider lays them out
}

var sgxLoad = sync.OnceValues(func() (*sgxChain, error) {
	var (
		ch    sgxChain
		certs = make(map[string]*x509.Certificate)
	)
	for _, name := range []string{"sgx_pck", "sgx_pck_processor_ca", "sgx_root_ca"} {
		b, err := sgxIntelFS.ReadFile("intel/" + name + ".pem")
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("intel/%s.pem: no certificate", name)
		}
		if certs[name], err = x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, fmt.Errorf("intel/%s.pem: %w", name, err)
		}
		ch.certPEM = append(ch.certPEM, pem.EncodeToMemory(blk)...)
	}
	ch.certPEM = append(ch.certPEM, 0) // Intel's quote provider ends the chain with a NUL
	ch.root = certs["sgx_root_ca"]
	b, err := sgxIntelFS.ReadFile("intel/sgx_pck.key.pem")
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("intel/sgx_pck.key.pem: no private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("intel/sgx_pck.key.pem: %w", err)
	}
	var ok bool
	if ch.pckKey, ok = k.(*ecdsa.PrivateKey); !ok || !ch.pckKey.PublicKey.Equal(certs["sgx_pck"].PublicKey) {
		return nil, fmt.Errorf("intel/sgx_pck.key.pem: not the key of intel/sgx_pck.pem")
	}
	return &ch, nil
})

// SGXRoot returns the simulated Intel SGX root CA ("trustbound SIMULATED SGX
// Root CA"), to configure as a simulated root of the SGX verifier.
func SGXRoot() *x509.Certificate {
	ch, err := sgxLoad()
	if err != nil {
		// Embedded at build time and covered by tests.
		panic(fmt.Sprintf("simtee: embedded simulated SGX chain: %v", err))
	}
	return ch.root
}

// SGX is a simulated SGX enclave. Its Attest mints a DCAP quote v3 in the
// real layout: the simulated quoting enclave's report is signed by the
// simulated PCK key and binds a fresh attestation key, which signs the
// enclave's report; the certification data is the simulated PCK chain.
type SGX struct {
	MREnclave, MRSigner [32]byte
	ProductID, SVN      uint16
	Debug               bool
	ConfigID            [64]byte
	ConfigSVN           uint16
	ISVExtProdID        [16]byte
	ISVFamilyID         [16]byte
}

var _ attest.Attester = SGX{}

// TEE returns attest.SGX.
func (SGX) TEE() attest.TEE { return attest.SGX }

// Attest returns an attest.FormatSGXQuoteV3 quote binding reportData.
func (s SGX) Attest(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch, err := sgxLoad()
	if err != nil {
		return nil, fmt.Errorf("simtee: simulated SGX chain: %w", err)
	}
	attKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("simtee: attestation key: %w", err)
	}
	attPub, err := attKey.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		return nil, err
	}

	// Header (48) and ISV enclave report body (384), little-endian.
	signed := make([]byte, 48+384)
	binary.LittleEndian.PutUint16(signed[0:], 3) // version
	binary.LittleEndian.PutUint16(signed[2:], 2) // ECDSA-256-with-P-256
	binary.LittleEndian.PutUint32(signed[4:], 0) // TEE type SGX
	binary.LittleEndian.PutUint16(signed[8:], sgxSimQESVN)
	binary.LittleEndian.PutUint16(signed[10:], sgxSimPCESVN)
	copy(signed[12:28], sgxSimIntelQEVendorID[:])
	flags := uint64(sgxFlagInit | sgxFlagMode64Bit)
	if s.Debug {
		flags |= sgxFlagDebug
	}
	sgxPutReport(signed[48:], sgxReport{
		mrenclave: s.MREnclave, mrsigner: s.MRSigner, flags: flags,
		configID: s.ConfigID, prodID: s.ProductID, svn: s.SVN, configSVN: s.ConfigSVN,
		extProdID: s.ISVExtProdID, familyID: s.ISVFamilyID, reportData: reportData,
	})

	// The simulated quoting enclave: its report data binds the attestation
	// key and its authentication data.
	authData := make([]byte, 32)
	for i := range authData {
		authData[i] = byte(i)
	}
	var qeReportData [64]byte
	h := sha256.New()
	h.Write(attPub[1:])
	h.Write(authData)
	copy(qeReportData[:], h.Sum(nil))
	qeReport := make([]byte, 384)
	sgxPutReport(qeReport, sgxReport{
		mrenclave:  sha256.Sum256([]byte("trustbound SIMULATED SGX quoting enclave")),
		mrsigner:   sha256.Sum256([]byte("trustbound SIMULATED SGX quoting enclave signer")),
		flags:      sgxFlagInit | sgxFlagMode64Bit | sgxFlagProvisionKey,
		prodID:     1,
		svn:        sgxSimQESVN,
		reportData: qeReportData,
	})

	isvSig, err := sgxSignRS(attKey, signed)
	if err != nil {
		return nil, err
	}
	qeSig, err := sgxSignRS(ch.pckKey, qeReport)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 0, 64+64+384+64+2+len(authData)+6+len(ch.certPEM))
	sig = append(sig, isvSig...)
	sig = append(sig, attPub[1:]...)
	sig = append(sig, qeReport...)
	sig = append(sig, qeSig...)
	sig = binary.LittleEndian.AppendUint16(sig, uint16(len(authData)))
	sig = append(sig, authData...)
	sig = binary.LittleEndian.AppendUint16(sig, 5) // PCK certificate chain
	sig = binary.LittleEndian.AppendUint32(sig, uint32(len(ch.certPEM)))
	sig = append(sig, ch.certPEM...)

	quote := make([]byte, 0, len(signed)+4+len(sig))
	quote = append(quote, signed...)
	quote = binary.LittleEndian.AppendUint32(quote, uint32(len(sig)))
	quote = append(quote, sig...)
	return &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: quote}, nil
}

type sgxReport struct {
	mrenclave, mrsigner [32]byte
	flags               uint64
	configID            [64]byte
	prodID, svn         uint16
	configSVN           uint16
	extProdID, familyID [16]byte
	reportData          [64]byte
}

// sgxPutReport writes an SGX report body at its spec offsets into b[:384];
// reserved bytes stay zero.
func sgxPutReport(b []byte, r sgxReport) {
	copy(b[0:16], sgxSimCPUSVN[:])                      // CPUSVN
	binary.LittleEndian.PutUint32(b[16:], 0)            // MISCSELECT
	copy(b[32:48], r.extProdID[:])                      // ISVEXTPRODID
	binary.LittleEndian.PutUint64(b[48:], r.flags)      // ATTRIBUTES.FLAGS
	binary.LittleEndian.PutUint64(b[56:], sgxXFRM)      // ATTRIBUTES.XFRM
	copy(b[64:96], r.mrenclave[:])                      // MRENCLAVE
	copy(b[128:160], r.mrsigner[:])                     // MRSIGNER
	copy(b[192:256], r.configID[:])                     // CONFIGID
	binary.LittleEndian.PutUint16(b[256:], r.prodID)    // ISVPRODID
	binary.LittleEndian.PutUint16(b[258:], r.svn)       // ISVSVN
	binary.LittleEndian.PutUint16(b[260:], r.configSVN) // CONFIGSVN
	copy(b[304:320], r.familyID[:])                     // ISVFAMILYID
	copy(b[320:384], r.reportData[:])                   // REPORTDATA
}

// sgxSignRS signs SHA-256(msg) and returns r||s, 32 bytes each, big-endian.
func sgxSignRS(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		return nil, fmt.Errorf("simtee: sign: %w", err)
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}
