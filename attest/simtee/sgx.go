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
	"slices"
	"sync"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/internal/dcapdoc"
)

// The simulated Intel chain and collateral signers: see intel/README.md.
// Only what Attest and SGXCollateral need is embedded (the PCK leaf key,
// the TCB signing key, the CRLs made once); the CA keys stay in the
// repository for regenerating.
//
//go:embed intel/sgx_root_ca.pem intel/sgx_pck_processor_ca.pem intel/sgx_pck.pem intel/sgx_pck.key.pem
//go:embed intel/sgx_tcb_signing.pem intel/sgx_tcb_signing.key.pem intel/sgx_root_ca.crl.pem intel/sgx_pck_processor_ca.crl.pem
var sgxIntelFS embed.FS

// The simulated platform, as its PCK certificate describes it (keep in step
// with attest/simtee/internal/gen-intel; TestSGXEmbeddedPCK checks).
var (
	sgxSimCPUSVN = [16]byte{0x0e, 0x0e, 0x02, 0x04, 0x01, 0x80, 0x0d}
	sgxSimFMSPC  = [6]byte{0x00, 0xc0, 0xff, 0xee, 0x00, 0x00}
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
	// The collateral signers: the TCB signing certificate and key, the
	// issuer chains and the CRLs as served.
	tcbKey                  *ecdsa.PrivateKey
	tcbChainPEM, caChainPEM []byte
	rootCRL, caCRL          []byte
}

var sgxLoad = sync.OnceValues(func() (*sgxChain, error) {
	var (
		ch    sgxChain
		certs = make(map[string]*x509.Certificate)
		pems  = make(map[string][]byte)
	)
	for _, name := range []string{"sgx_pck", "sgx_pck_processor_ca", "sgx_root_ca", "sgx_tcb_signing"} {
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
		pems[name] = pem.EncodeToMemory(blk)
	}
	ch.certPEM = slices.Concat(pems["sgx_pck"], pems["sgx_pck_processor_ca"], pems["sgx_root_ca"], []byte{0}) // Intel's quote provider ends the chain with a NUL
	ch.tcbChainPEM = slices.Concat(pems["sgx_tcb_signing"], pems["sgx_root_ca"])
	ch.caChainPEM = slices.Concat(pems["sgx_pck_processor_ca"], pems["sgx_root_ca"])
	ch.root = certs["sgx_root_ca"]
	var err error
	if ch.pckKey, err = sgxKey("sgx_pck", certs); err != nil {
		return nil, err
	}
	if ch.tcbKey, err = sgxKey("sgx_tcb_signing", certs); err != nil {
		return nil, err
	}
	if ch.rootCRL, err = sgxIntelFS.ReadFile("intel/sgx_root_ca.crl.pem"); err != nil {
		return nil, err
	}
	if ch.caCRL, err = sgxIntelFS.ReadFile("intel/sgx_pck_processor_ca.crl.pem"); err != nil {
		return nil, err
	}
	return &ch, nil
})

// sgxKey reads the embedded key of the named certificate.
func sgxKey(name string, certs map[string]*x509.Certificate) (*ecdsa.PrivateKey, error) {
	b, err := sgxIntelFS.ReadFile("intel/" + name + ".key.pem")
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("intel/%s.key.pem: no private key", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("intel/%s.key.pem: %w", name, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || !ek.PublicKey.Equal(certs[name].PublicKey) {
		return nil, fmt.Errorf("intel/%s.key.pem: not the key of intel/%s.pem", name, name)
	}
	return ek, nil
}

// Simulated collateral: what Intel would publish for the simulated
// platform, signed by the simulated TCB signing certificate.
var (
	// sgxSimQEMRSigner is the simulated quoting enclave's MRSIGNER.
	sgxSimQEMRSigner = sha256.Sum256([]byte("trustbound SIMULATED SGX quoting enclave signer"))
	// sgxSimChainStart and sgxSimChainEnd bound the simulated chain's validity.
	sgxSimChainStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	sgxSimChainEnd   = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
)

// SGXSimulatedAdvisory is the made-up advisory of the older levels of the
// simulated SGX and TDX collateral (TCB info, TDX module and QE identity).
const SGXSimulatedAdvisory = "TRUSTBOUND-SIMULATED-SA-0001"

// sgxCollateral signs TCB info and a QE identity valid from issue to next
// for the simulated platform: its TCB is the first level (UpToDate), an
// older one is OutOfDate; the simulated QE's ISVSVN is UpToDate.
func sgxCollateral(issue, next time.Time) (*dcap.Collateral, error) {
	ch, err := sgxLoad()
	if err != nil {
		return nil, fmt.Errorf("simtee: simulated SGX chain: %w", err)
	}
	old := []string{SGXSimulatedAdvisory}
	tcb := &dcap.TCBInfo{
		ID: dcap.TCBInfoSGX, Version: dcap.TCBInfoVersion, IssueDate: issue, NextUpdate: next,
		FMSPC: sgxSimFMSPC, TCBEvaluationDataNumber: 1,
		TCBLevels: []dcap.TCBLevel{
			{SGXComponents: sgxSimCPUSVN, PCESVN: sgxSimPCESVN, TCBDate: sgxSimChainStart, Status: dcap.UpToDate},
			{TCBDate: sgxSimChainStart.AddDate(-1, 0, 0), Status: dcap.OutOfDate, AdvisoryIDs: old},
		},
	}
	qe := &dcap.QEIdentity{
		ID: dcap.QEIdentitySGX, Version: dcap.QEIdentityVersion, IssueDate: issue, NextUpdate: next,
		TCBEvaluationDataNumber: 1, MRSigner: sgxSimQEMRSigner, ISVProdID: 1,
		MiscSelectMask: [4]byte{0xff, 0xff, 0xff, 0xff},
		// As Intel's: INIT and PROVISIONKEY set, MODE64BIT and XFRM not judged.
		Attributes:     [16]byte{0x11},
		AttributesMask: [16]byte{0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		TCBLevels: []dcap.EnclaveTCBLevel{
			{ISVSVN: sgxSimQESVN, TCBDate: sgxSimChainStart, Status: dcap.UpToDate},
			{ISVSVN: 0, TCBDate: sgxSimChainStart.AddDate(-1, 0, 0), Status: dcap.OutOfDate, AdvisoryIDs: old},
		},
	}
	return ch.collateral(tcb, qe)
}

// collateral signs TCB info and a QE identity with the simulated TCB
// signing key and serves them with the simulated CRLs and issuer chains,
// as a PCS would for a platform of the simulated Processor CA.
func (ch *sgxChain) collateral(tcb *dcap.TCBInfo, qe *dcap.QEIdentity) (*dcap.Collateral, error) {
	tj, err := dcapdoc.MarshalTCBInfo(tcb)
	if err != nil {
		return nil, err
	}
	qj, err := dcapdoc.MarshalQEIdentity(qe)
	if err != nil {
		return nil, err
	}
	c := &dcap.Collateral{
		PCKCRL: ch.caCRL, PCKCRLIssuerChain: ch.caChainPEM, RootCACRL: ch.rootCRL,
		TCBInfoIssuerChain: ch.tcbChainPEM, QEIdentityIssuerChain: ch.tcbChainPEM,
	}
	if c.TCBInfo, err = dcapdoc.Sign("tcbInfo", tj, ch.tcbKey); err != nil {
		return nil, err
	}
	if c.QEIdentity, err = dcapdoc.Sign("enclaveIdentity", qj, ch.tcbKey); err != nil {
		return nil, err
	}
	return c, nil
}

// SGXCollateral returns simulated Intel collateral for the simulated SGX
// platform as a PCS would serve it at now: TCB info and QE identity issued
// at now (to the second) with Intel's 30-day window, the simulated CRLs.
// Quotes of SGX evaluate UpToDate against it, without advisories.
func SGXCollateral(now time.Time) (*dcap.Collateral, error) {
	issue := now.UTC().Truncate(time.Second)
	return sgxCollateral(issue, issue.AddDate(0, 0, 30))
}

var sgxSource = sync.OnceValues(func() (*dcap.Collateral, error) {
	return sgxCollateral(sgxSimChainStart, sgxSimChainEnd)
})

// SGXCollateralSource returns a source of simulated collateral valid for
// as long as the simulated chain (2025-01-01 to 2049-12-31), for
// sgx.Config.SimulatedCollateral: simulated quotes then evaluate UpToDate
// at any time the chain is valid.
func SGXCollateralSource() dcap.Source {
	c, err := sgxSource()
	if err != nil {
		// Embedded at build time and covered by tests.
		panic(fmt.Sprintf("simtee: simulated SGX collateral: %v", err))
	}
	return dcap.NewStaticSource(c)
}

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

	qe, err := sgxQESign(ch.pckKey, sgxReport{
		mrenclave: sha256.Sum256([]byte("trustbound SIMULATED SGX quoting enclave")),
		mrsigner:  sgxSimQEMRSigner,
		prodID:    1,
		svn:       sgxSimQESVN,
	}, signed)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 0, 64+64+384+64+2+len(qe.authData)+6+len(ch.certPEM))
	sig = append(sig, qe.quoteSig...)
	sig = append(sig, qe.attPub...)
	sig = append(sig, qe.report...)
	sig = append(sig, qe.reportSig...)
	sig = binary.LittleEndian.AppendUint16(sig, uint16(len(qe.authData)))
	sig = append(sig, qe.authData...)
	sig = binary.LittleEndian.AppendUint16(sig, 5) // PCK certificate chain
	sig = binary.LittleEndian.AppendUint32(sig, uint32(len(ch.certPEM)))
	sig = append(sig, ch.certPEM...)
	return &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: sgxQuote(signed, sig)}, nil
}

// sgxQESigned is what a simulated quoting enclave signs for a quote.
type sgxQESigned struct {
	attPub    []byte // the fresh attestation key, x || y
	quoteSig  []byte // r || s by the attestation key over the quote's signed range
	authData  []byte // QE authentication data
	report    []byte // the QE report body (384 bytes)
	reportSig []byte // r || s by the PCK key over report
}

// sgxQESign is the simulated quoting enclave of SGX and TDX quotes: it
// makes a fresh attestation key, signs signed (the quote's header and
// body) with it, and issues its own report qe, whose report data binds
// the attestation key and the QE authentication data, signed by pck.
func sgxQESign(pck *ecdsa.PrivateKey, qe sgxReport, signed []byte) (*sgxQESigned, error) {
	attKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("simtee: attestation key: %w", err)
	}
	attPub, err := attKey.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		return nil, err
	}
	s := &sgxQESigned{attPub: attPub[1:], authData: make([]byte, 32), report: make([]byte, 384)}
	for i := range s.authData {
		s.authData[i] = byte(i)
	}
	h := sha256.New()
	h.Write(s.attPub)
	h.Write(s.authData)
	copy(qe.reportData[:], h.Sum(nil))
	qe.flags = sgxFlagInit | sgxFlagMode64Bit | sgxFlagProvisionKey
	sgxPutReport(s.report, qe)
	if s.quoteSig, err = sgxSignRS(attKey, signed); err != nil {
		return nil, err
	}
	if s.reportSig, err = sgxSignRS(pck, s.report); err != nil {
		return nil, err
	}
	return s, nil
}

// sgxQuote returns the quote of signed (header and body) and its signature
// data sig: signed, the length of sig, sig.
func sgxQuote(signed, sig []byte) []byte {
	quote := make([]byte, 0, len(signed)+4+len(sig))
	quote = append(quote, signed...)
	quote = binary.LittleEndian.AppendUint32(quote, uint32(len(sig)))
	return append(quote, sig...)
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
