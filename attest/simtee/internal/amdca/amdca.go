// Package amdca templates the simulated AMD SEV-SNP certificates (ARK, ASK,
// VCEK) exactly as AMD's KDS shapes them, so go-sev-guest accepts them; no keys.
package amdca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// The simulated platform: a Milan B0 part.
const (
	ProductLine = "Milan"
	ProductName = "Milan-B0"
	// Family, Model and Stepping are the CPUID values a Milan B0 reports
	// (extended family 0x19, model 0x01, stepping 0).
	Family   = 0x19
	Model    = 0x01
	Stepping = 0x00
)

// Validity of every simulated certificate.
var (
	NotBefore = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	NotAfter  = time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)
)

// SimulatedNotice is written into the certificates wherever AMD's format
// leaves room: the subject serialNumber attribute of all three and a
// comment extension on the ARK and ASK.
const SimulatedNotice = "SIMULATED by trustbound - not AMD - private key is public"

// ChipID is the CHIP_ID of the simulated chip, and the hwID of its VCEK.
var ChipID = func() [64]byte {
	var id [64]byte
	copy(id[:], "trustbound simulated AMD SEV-SNP chip; evidence proves nothing")
	return id
}()

// TCB is the security patch levels a VCEK is issued for.
type TCB struct {
	Bootloader, TEE, SNP, Microcode uint8
}

// DefaultTCB is the TCB of the pre-generated VCEK in attest/simtee/amd.
var DefaultTCB = TCB{Bootloader: 4, TEE: 0, SNP: 22, Microcode: 213}

// AMD KDS object identifiers, under 1.3.6.1.4.1.3704.1 (AMD KDS
// specification, "VCEK Certificate Extensions").
var (
	oidStructVersion = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 1}
	oidProductName   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 2}
	oidBlSPL         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 1}
	oidTeeSPL        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 2}
	oidSnpSPL        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 3}
	oidSPL4          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 4}
	oidSPL5          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 5}
	oidSPL6          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 6}
	oidSPL7          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 7}
	oidUcodeSPL      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 8}
	oidHWID          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 4}
	// oidNetscapeComment is the well-known free-text comment extension.
	oidNetscapeComment = asn1.ObjectIdentifier{2, 16, 840, 1, 113730, 1, 13}
)

// amdName is the distinguished name AMD uses on every KDS certificate; the
// location fields are checked by go-sev-guest.
func amdName(cn string) pkix.Name {
	return pkix.Name{
		CommonName:         cn,
		OrganizationalUnit: []string{"Engineering"},
		Organization:       []string{"Advanced Micro Devices"},
		Locality:           []string{"Santa Clara"},
		Province:           []string{"CA"},
		Country:            []string{"US"},
		SerialNumber:       SimulatedNotice,
	}
}

// serial turns a label into a positive serial number, so that the serial
// reads as text in a hex dump.
func serial(label string) *big.Int {
	return new(big.Int).SetBytes([]byte(label))
}

func comment() pkix.Extension {
	v, err := asn1.MarshalWithParams(SimulatedNotice, "ia5")
	if err != nil {
		panic(fmt.Sprintf("amdca: encoding comment: %v", err)) // constant input
	}
	return pkix.Extension{Id: oidNetscapeComment, Value: v}
}

// crlURL is the CRL distribution point KDS puts on the ARK and ASK of a
// product line; go-sev-guest requires exactly this one.
func crlURL() string {
	return "https://kdsintf.amd.com/vcek/v1/" + ProductLine + "/crl"
}

// ARK returns the template of the self-signed root (RSA-4096, RSASSA-PSS
// SHA-384).
func ARK() *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial("SIM-ARK-" + ProductLine),
		Subject:               amdName("ARK-" + ProductLine),
		NotBefore:             NotBefore,
		NotAfter:              NotAfter,
		SignatureAlgorithm:    x509.SHA384WithRSAPSS,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
		CRLDistributionPoints: []string{crlURL()},
		ExtraExtensions:       []pkix.Extension{comment()},
	}
}

// ASK returns the template of the intermediate that signs VCEKs.
func ASK() *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial("SIM-ASK-" + ProductLine),
		Subject:               amdName("SEV-" + ProductLine),
		NotBefore:             NotBefore,
		NotAfter:              NotAfter,
		SignatureAlgorithm:    x509.SHA384WithRSAPSS,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		CRLDistributionPoints: []string{crlURL()},
		ExtraExtensions:       []pkix.Extension{comment()},
	}
}

// VCEK returns the template of the chip endorsement key certificate for a
// chip at a TCB. It carries only the KDS extensions: go-sev-guest refuses any
// other extension on a VCEK, so "simulated" shows in the serial and subject.
func VCEK(tcb TCB, chipID [64]byte) (*x509.Certificate, error) {
	for name, v := range map[string]uint8{"bootloader": tcb.Bootloader, "tee": tcb.TEE, "snp": tcb.SNP} {
		if v > 127 {
			return nil, fmt.Errorf("amdca: %s SPL %d out of range 0..127", name, v)
		}
	}
	exts := []pkix.Extension{}
	add := func(id asn1.ObjectIdentifier, v any, params string) error {
		b, err := asn1.MarshalWithParams(v, params)
		if err != nil {
			return fmt.Errorf("amdca: encoding %v: %w", id, err)
		}
		exts = append(exts, pkix.Extension{Id: id, Value: b})
		return nil
	}
	for _, e := range []struct {
		id     asn1.ObjectIdentifier
		v      any
		params string
	}{
		{oidStructVersion, 1, ""},
		{oidProductName, ProductName, "ia5"},
		{oidBlSPL, int(tcb.Bootloader), ""},
		{oidTeeSPL, int(tcb.TEE), ""},
		{oidSPL4, 0, ""},
		{oidSPL5, 0, ""},
		{oidSPL6, 0, ""},
		{oidSPL7, 0, ""},
		{oidSnpSPL, int(tcb.SNP), ""},
		{oidUcodeSPL, int(tcb.Microcode), ""},
	} {
		if err := add(e.id, e.v, e.params); err != nil {
			return nil, err
		}
	}
	// KDS stores the hwID as the raw 64 bytes, without an OCTET STRING tag.
	exts = append(exts, pkix.Extension{Id: oidHWID, Value: append([]byte(nil), chipID[:]...)})

	return &x509.Certificate{
		SerialNumber: serial(fmt.Sprintf("SIM-VCEK-%02x%02x%02x%02x",
			tcb.Bootloader, tcb.TEE, tcb.SNP, tcb.Microcode)),
		Subject:            amdName("SEV-VCEK"),
		NotBefore:          NotBefore,
		NotAfter:           NotAfter,
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
		ExtraExtensions:    exts,
	}, nil
}
