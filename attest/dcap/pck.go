package dcap

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
)

// OIDSGXExtensions is the Intel SGX extension that every PCK certificate
// carries (Intel SGX PCK Certificate and CRL Profile).
var OIDSGXExtensions = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}

// Arcs under OIDSGXExtensions.
var (
	oidPPID               = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 1}
	oidTCB                = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	oidPCEID              = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 3}
	oidFMSPC              = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 4}
	oidSGXType            = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
	oidPlatformInstanceID = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 6}
)

// SGX types of a PCK certificate.
const (
	SGXTypeStandard              = 0
	SGXTypeScalable              = 1
	SGXTypeScalableWithIntegrity = 2
)

// PCKExtensions are the fields of the SGX extension of a PCK certificate.
type PCKExtensions struct {
	PPID [16]byte
	// TCB is the TCB level the certificate was issued for; Intel's TCB
	// evaluation compares it with the TCB info of FMSPC.
	TCB     PCKTCB
	PCEID   [2]byte
	FMSPC   [6]byte
	SGXType int
	// PlatformInstanceID is present in certificates of the PCK Platform CA.
	PlatformInstanceID []byte
}

// PCKTCB is the TCB sequence of the SGX extension.
type PCKTCB struct {
	// CompSVN are SGX TCB components 01–16 (CompSVN[0] is component 01).
	CompSVN [16]uint8
	PCESVN  uint16
	CPUSVN  [16]byte
}

type extEntry struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// ParsePCKExtensions reads the SGX extension of a PCK certificate. PPID,
// TCB, PCE-ID, FMSPC and SGX type are required; other entries are ignored.
func ParsePCKExtensions(c *x509.Certificate) (*PCKExtensions, error) {
	var raw []byte
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDSGXExtensions) {
			if raw != nil {
				return nil, fmt.Errorf("PCK certificate has two SGX extensions")
			}
			raw = e.Value
		}
	}
	if raw == nil {
		return nil, fmt.Errorf("certificate %q has no SGX extension (%s); it is not a PCK certificate", c.Subject.CommonName, OIDSGXExtensions)
	}
	entries, err := unmarshalEntries(raw)
	if err != nil {
		return nil, fmt.Errorf("SGX extension: %w", err)
	}
	var (
		x    PCKExtensions
		seen = map[string]bool{}
	)
	for _, e := range entries {
		id := e.ID.String()
		if seen[id] {
			return nil, fmt.Errorf("SGX extension: %s appears twice", id)
		}
		seen[id] = true
		switch {
		case e.ID.Equal(oidPPID):
			err = octets(e.Value, x.PPID[:])
		case e.ID.Equal(oidTCB):
			x.TCB, err = parseTCB(e.Value)
		case e.ID.Equal(oidPCEID):
			err = octets(e.Value, x.PCEID[:])
		case e.ID.Equal(oidFMSPC):
			err = octets(e.Value, x.FMSPC[:])
		case e.ID.Equal(oidSGXType):
			var t asn1.Enumerated
			err = unmarshalExact(e.Value.FullBytes, &t)
			if err == nil && (t < SGXTypeStandard || t > SGXTypeScalableWithIntegrity) {
				err = fmt.Errorf("unknown SGX type %d", t)
			}
			x.SGXType = int(t)
		case e.ID.Equal(oidPlatformInstanceID):
			if e.Value.Class != asn1.ClassUniversal || e.Value.Tag != asn1.TagOctetString {
				err = fmt.Errorf("not an OCTET STRING")
			}
			x.PlatformInstanceID = e.Value.Bytes
		}
		if err != nil {
			return nil, fmt.Errorf("SGX extension %s: %w", id, err)
		}
	}
	for _, req := range []asn1.ObjectIdentifier{oidPPID, oidTCB, oidPCEID, oidFMSPC, oidSGXType} {
		if !seen[req.String()] {
			return nil, fmt.Errorf("SGX extension: required %s missing", req)
		}
	}
	return &x, nil
}

func parseTCB(v asn1.RawValue) (PCKTCB, error) {
	var t PCKTCB
	entries, err := unmarshalEntries(v.FullBytes)
	if err != nil {
		return t, err
	}
	seen := map[int]bool{}
	for _, e := range entries {
		// Components are arcs 1–16, PCESVN 17, CPUSVN 18 under oidTCB.
		if len(e.ID) != len(oidTCB)+1 || !asn1.ObjectIdentifier(e.ID[:len(oidTCB)]).Equal(oidTCB) {
			continue
		}
		arc := e.ID[len(oidTCB)]
		if seen[arc] {
			return t, fmt.Errorf("TCB entry %d appears twice", arc)
		}
		seen[arc] = true
		switch {
		case arc >= 1 && arc <= 16:
			var n int
			if err := unmarshalExact(e.Value.FullBytes, &n); err != nil {
				return t, fmt.Errorf("TCB component %d: %w", arc, err)
			}
			if n < 0 || n > 0xff {
				return t, fmt.Errorf("TCB component %d is %d, out of range", arc, n)
			}
			t.CompSVN[arc-1] = uint8(n)
		case arc == 17:
			var n int
			if err := unmarshalExact(e.Value.FullBytes, &n); err != nil {
				return t, fmt.Errorf("PCESVN: %w", err)
			}
			if n < 0 || n > 0xffff {
				return t, fmt.Errorf("PCESVN %d out of range", n)
			}
			t.PCESVN = uint16(n)
		case arc == 18:
			if err := octets(e.Value, t.CPUSVN[:]); err != nil {
				return t, fmt.Errorf("CPUSVN: %w", err)
			}
		}
	}
	for arc := 1; arc <= 18; arc++ {
		if !seen[arc] {
			return t, fmt.Errorf("TCB entry %d missing", arc)
		}
	}
	return t, nil
}

func unmarshalEntries(der []byte) ([]extEntry, error) {
	var entries []extEntry
	if err := unmarshalExact(der, &entries); err != nil {
		return nil, err
	}
	return entries, nil
}

func unmarshalExact(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d trailing bytes", len(rest))
	}
	return nil
}

// octets copies an OCTET STRING of exactly len(dst) bytes into dst.
func octets(v asn1.RawValue, dst []byte) error {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString || v.IsCompound {
		return fmt.Errorf("not an OCTET STRING")
	}
	if len(v.Bytes) != len(dst) {
		return fmt.Errorf("%d bytes, want %d", len(v.Bytes), len(dst))
	}
	copy(dst, v.Bytes)
	return nil
}
