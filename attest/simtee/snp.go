package simtee

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee/internal/amdca"
)

// The simulated AMD chain; see amd/README.md. The private keys are public.
var (
	//go:embed amd/ark.pem
	snpARKPEM []byte
	//go:embed amd/ark-key.pem
	snpARKKeyPEM []byte
	//go:embed amd/ask.pem
	snpASKPEM []byte
	//go:embed amd/ask-key.pem
	snpASKKeyPEM []byte
	//go:embed amd/vcek.pem
	snpVCEKPEM []byte
	//go:embed amd/vcek-key.pem
	snpVCEKKeyPEM []byte
)

// SNPProductLine is the AMD product line of the simulated SNP platform, the
// key under which its roots go into a verifier's root map.
const SNPProductLine = "Milan"

// snpDefaultPolicy allows SMT and sets the reserved bit 17 that must be one;
// ABI minimum 0.0, no debug, no migration agent.
const snpDefaultPolicy = 1<<16 | 1<<17

const snpPolicyDebugBit = 19

// SNPTCB is a set of AMD security patch levels (TCB_VERSION, Milan layout).
type SNPTCB struct {
	Bootloader, TEE, SNP, Microcode uint8
}

// SNP is a simulated AMD SEV-SNP guest on a simulated Milan B0 chip. Its
// zero value is a usable non-debug guest with an all-zero measurement.
// Attest mints a real 1184-byte version-3 attestation report signed by the
// simulated VCEK, so attest/snp verifies it with its real code path and
// reports it as simulated.
type SNP struct {
	// Measurement is the launch digest, HostData what the host bound at
	// launch.
	Measurement [48]byte
	HostData    [32]byte
	// FamilyID and ImageID are the ID block's values.
	FamilyID, ImageID [16]byte
	// IDKeyDigest and AuthorKeyDigest are the SHA-384 digests of the ID
	// block's keys; a non-zero AuthorKeyDigest sets AUTHOR_KEY_EN.
	IDKeyDigest, AuthorKeyDigest [48]byte
	GuestSVN                     uint32
	// VMPL is the privilege level the report is requested at, 0..3.
	VMPL uint32
	// Policy is the guest policy; zero means 0x30000 (SMT allowed, reserved
	// bit 17 set). Debug additionally sets the DEBUG bit 19.
	Policy uint64
	Debug  bool
	// TCB is the platform TCB reported as current, committed, launch and
	// reported TCB. Zero means the TCB of the pre-generated VCEK (bl=4 tee=0
	// snp=22 ucode=213); any other value gets a VCEK issued for it.
	TCB SNPTCB
}

var _ attest.Attester = SNP{}

// TEE reports attest.SEVSNP.
func (SNP) TEE() attest.TEE { return attest.SEVSNP }

// Attest returns the report binding reportData, with the VCEK, ASK and ARK
// certificates (DER) in Evidence.Certs.
func (s SNP) Attest(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.VMPL > 3 {
		return nil, fmt.Errorf("simtee: VMPL %d out of range 0..3", s.VMPL)
	}
	policy := s.Policy
	if policy == 0 {
		policy = snpDefaultPolicy
	}
	if s.Debug {
		policy |= 1 << snpPolicyDebugBit
	}
	if _, err := abi.ParseSnpPolicy(policy); err != nil {
		return nil, fmt.Errorf("simtee: guest policy %#x: %w", policy, err)
	}
	ca, err := snpAuthority()
	if err != nil {
		return nil, err
	}
	tcb := amdca.TCB(s.TCB)
	if s.TCB == (SNPTCB{}) {
		tcb = amdca.DefaultTCB
	}
	vcekDER := ca.vcekDER
	if tcb != amdca.DefaultTCB {
		if vcekDER, err = ca.issueVCEK(tcb); err != nil {
			return nil, err
		}
	}
	tcbv, err := kds.ComposeTCBParts(kds.TCBParts{BlSpl: tcb.Bootloader, TeeSpl: tcb.TEE, SnpSpl: tcb.SNP, UcodeSpl: tcb.Microcode})
	if err != nil {
		return nil, fmt.Errorf("simtee: %w", err)
	}
	tcbVersion := uint64(tcbv)

	var authorKeyEn bool
	if s.AuthorKeyDigest != ([48]byte{}) {
		authorKeyEn = true
	}
	reportID := sha256.Sum256(append([]byte("trustbound simulated SEV-SNP REPORT_ID"), s.Measurement[:]...))
	reportIDMA := [32]byte{}
	for i := range reportIDMA {
		reportIDMA[i] = 0xff // no migration agent
	}
	chipID := amdca.ChipID
	report := &spb.Report{
		Version:         abi.ReportVersion3,
		GuestSvn:        s.GuestSVN,
		Policy:          policy,
		FamilyId:        s.FamilyID[:],
		ImageId:         s.ImageID[:],
		Vmpl:            s.VMPL,
		SignatureAlgo:   abi.SignEcdsaP384Sha384,
		CurrentTcb:      tcbVersion,
		PlatformInfo:    1, // SMT enabled
		SignerInfo:      abi.ComposeSignerInfo(abi.SignerInfo{SigningKey: abi.VcekReportSigner, AuthorKeyEn: authorKeyEn}),
		ReportData:      reportData[:],
		Measurement:     s.Measurement[:],
		HostData:        s.HostData[:],
		IdKeyDigest:     s.IDKeyDigest[:],
		AuthorKeyDigest: s.AuthorKeyDigest[:],
		ReportId:        reportID[:],
		ReportIdMa:      reportIDMA[:],
		ReportedTcb:     tcbVersion,
		Cpuid1EaxFms:    abi.FmsToCpuid1Eax(amdca.Family, amdca.Model, amdca.Stepping),
		ChipId:          chipID[:],
		CommittedTcb:    tcbVersion,
		CurrentMajor:    1,
		CurrentMinor:    55,
		CurrentBuild:    21,
		CommittedMajor:  1,
		CommittedMinor:  55,
		CommittedBuild:  21,
		LaunchTcb:       tcbVersion,
		Signature:       make([]byte, abi.SignatureSize),
	}
	raw, err := abi.ReportToAbiBytes(report)
	if err != nil {
		return nil, fmt.Errorf("simtee: encoding SNP report: %w", err)
	}
	digest := sha512.Sum384(abi.SignedComponent(raw))
	r, sig, err := ecdsa.Sign(rand.Reader, ca.vcekKey, digest[:])
	if err != nil {
		return nil, fmt.Errorf("simtee: signing SNP report: %w", err)
	}
	if err := abi.SetSignature(r, sig, raw); err != nil {
		return nil, fmt.Errorf("simtee: signing SNP report: %w", err)
	}
	return &attest.Evidence{
		Format: attest.FormatSNPReport,
		Data:   raw,
		Certs:  [][]byte{vcekDER, ca.askDER, ca.arkDER},
	}, nil
}

// SNPRoots returns fresh copies of the simulated ARK and ASK, for a
// verifier's simulated root set. Never trust them as real AMD roots.
func SNPRoots() (ark, ask *x509.Certificate) {
	ca, err := snpAuthority()
	if err != nil {
		panic(err) // the embedded chain is part of the build; tests load it
	}
	ark, err = x509.ParseCertificate(ca.arkDER)
	if err != nil {
		panic(err)
	}
	ask, err = x509.ParseCertificate(ca.askDER)
	if err != nil {
		panic(err)
	}
	return ark, ask
}

// SNPTrust wraps a simulated ARK and ASK (from SNPRoots) as go-sev-guest
// root certificates of SNPProductLine, for snp.Config.Simulated. When ark is
// the simulated ARK, the root set carries the simulated AMD CRL (empty,
// valid from 2024-01-01 to 2050-01-01) in its CRL field, so that a verifier
// checks simulated chains for revocation without any collateral source; set
// CRL to another SNPRevocationList, or to nil to have the verifier fetch it
// from its getter at SNPCRLURL.
func SNPTrust(ark, ask *x509.Certificate) *trust.AMDRootCerts {
	r := trust.AMDRootCertsProduct(SNPProductLine)
	r.ProductCerts = &trust.ProductCerts{Ark: ark, Ask: ask}
	if ca, err := snpAuthority(); err == nil && bytes.Equal(ark.Raw, ca.arkDER) {
		if der, err := snpEmptyCRL(); err == nil {
			r.CRL, _ = x509.ParseRevocationList(der) // our own encoding; nil if it fails, and nothing is preloaded
		}
	}
	return r
}

// snpEmptyCRL is the simulated CRL SNPTrust preloads, made once: it lists
// nothing and is valid as long as the simulated certificates.
var snpEmptyCRL = sync.OnceValues(func() ([]byte, error) {
	return SNPRevocationList(nil, amdca.NotBefore, amdca.NotAfter)
})

// SNPRevocationList returns a DER CRL signed by the simulated ARK
// (RSASSA-PSS SHA-384, as AMD signs its KDS CRLs) that revokes the given
// serial numbers as of thisUpdate. Serve it at SNPCRLURL, or preload it
// into the CRL field of SNPTrust's root set, to test revocation.
func SNPRevocationList(revoked []*big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	ca, err := snpAuthority()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.RevocationList{
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
		// A CRL number that grows with thisUpdate, as RFC 5280 asks.
		Number:     big.NewInt(max(thisUpdate.Unix(), 1)),
		ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate,
	}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: thisUpdate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.ark, ca.arkKey)
	if err != nil {
		return nil, fmt.Errorf("simtee: signing the simulated AMD CRL: %w", err)
	}
	return der, nil
}

// SNPCRLURL is where a verifier asks its getter for the simulated CRL when
// the simulated root set carries none: the AMD KDS CRL URL of the Milan VCEK
// chain, the distribution point the simulated ARK and ASK name.
func SNPCRLURL() string {
	return kds.CrlLinkByKey(SNPProductLine, abi.VcekReportSigner)
}

// SNPChipID returns the CHIP_ID of the simulated chip.
func SNPChipID() [64]byte { return amdca.ChipID }

// snpCA is the parsed simulated chain with the keys simtee signs with.
type snpCA struct {
	arkDER, askDER, vcekDER []byte
	ark, ask                *x509.Certificate
	arkKey, askKey          *rsa.PrivateKey
	vcekKey                 *ecdsa.PrivateKey
}

var snpAuthority = sync.OnceValues(func() (*snpCA, error) {
	ca := &snpCA{}
	var err error
	if ca.arkDER, err = snpDecodePEM(snpARKPEM, "CERTIFICATE"); err != nil {
		return nil, err
	}
	if ca.askDER, err = snpDecodePEM(snpASKPEM, "CERTIFICATE"); err != nil {
		return nil, err
	}
	if ca.vcekDER, err = snpDecodePEM(snpVCEKPEM, "CERTIFICATE"); err != nil {
		return nil, err
	}
	if ca.ark, err = x509.ParseCertificate(ca.arkDER); err != nil {
		return nil, fmt.Errorf("simtee: simulated ARK: %w", err)
	}
	if ca.ask, err = x509.ParseCertificate(ca.askDER); err != nil {
		return nil, fmt.Errorf("simtee: simulated ASK: %w", err)
	}
	arkKey, err := snpParseKey(snpARKKeyPEM)
	if err != nil {
		return nil, err
	}
	askKey, err := snpParseKey(snpASKKeyPEM)
	if err != nil {
		return nil, err
	}
	vcekKey, err := snpParseKey(snpVCEKKeyPEM)
	if err != nil {
		return nil, err
	}
	var ok bool
	if ca.arkKey, ok = arkKey.(*rsa.PrivateKey); !ok {
		return nil, fmt.Errorf("simtee: simulated ARK key is %T, want RSA", arkKey)
	}
	if ca.askKey, ok = askKey.(*rsa.PrivateKey); !ok {
		return nil, fmt.Errorf("simtee: simulated ASK key is %T, want RSA", askKey)
	}
	if ca.vcekKey, ok = vcekKey.(*ecdsa.PrivateKey); !ok {
		return nil, fmt.Errorf("simtee: simulated VCEK key is %T, want ECDSA", vcekKey)
	}
	return ca, nil
})

// issueVCEK issues a VCEK for the simulated chip at tcb, with the same key
// pair as the pre-generated one.
func (ca *snpCA) issueVCEK(tcb amdca.TCB) ([]byte, error) {
	tmpl, err := amdca.VCEK(tcb, amdca.ChipID)
	if err != nil {
		return nil, fmt.Errorf("simtee: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.ask, &ca.vcekKey.PublicKey, ca.askKey)
	if err != nil {
		return nil, fmt.Errorf("simtee: issuing simulated VCEK: %w", err)
	}
	return der, nil
}

func snpDecodePEM(b []byte, typ string) ([]byte, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != typ || len(rest) != 0 {
		return nil, fmt.Errorf("simtee: embedded simulated AMD material is not a single %s PEM block", typ)
	}
	return blk.Bytes, nil
}

func snpParseKey(b []byte) (any, error) {
	der, err := snpDecodePEM(b, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("simtee: embedded simulated AMD key: %w", err)
	}
	return k, nil
}
