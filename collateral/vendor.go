package collateral

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
)

// Vendor collateral hosts. Get accepts URLs of the KDS and of the Intel
// hosts (intel.go); Azure's cache is asked only by this package (a mirror).
const (
	hostKDS   = "kdsintf.amd.com"
	hostAzure = "global.acccache.azure.net"
)

// vendorHosts are the hosts Options.Hosts may redirect (for tests and
// private mirrors).
var vendorHosts = []string{hostKDS, hostAzure, hostPCS, hostIntelCerts}

// kind is the kind of collateral a URL names.
type kind int

const (
	kindVCEK       kind = iota + 1 // DER VCEK certificate
	kindVLEK                       // DER VLEK certificate
	kindCertChain                  // PEM ASK/ASVK then ARK
	kindCRL                        // DER CRL
	kindTCBInfo                    // Intel {"tcbInfo":…,"signature":…} + issuer chain header
	kindQEIdentity                 // Intel {"enclaveIdentity":…,"signature":…} + issuer chain header
	kindPCKCRL                     // Intel PCK CA CRL (DER or PEM) + issuer chain header
	kindRootCACRL                  // Intel SGX Root CA CRL (DER or PEM)
)

func (k kind) String() string {
	switch k {
	case kindVCEK:
		return "VCEK certificate"
	case kindVLEK:
		return "VLEK certificate"
	case kindCertChain:
		return "cert_chain"
	case kindCRL:
		return "CRL"
	case kindTCBInfo:
		return "Intel TCB info"
	case kindQEIdentity:
		return "Intel QE identity"
	case kindPCKCRL:
		return "Intel PCK CRL"
	case kindRootCACRL:
		return "Intel SGX Root CA CRL"
	}
	return "unknown"
}

// classify returns the kind of collateral a URL names, or ErrRefused.
func classify(raw string) (kind, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrRefused, raw, err)
	}
	if u.Scheme != "https" || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return 0, fmt.Errorf("%w: %q: only plain https URLs are fetched", ErrRefused, raw)
	}
	switch u.Host {
	case hostKDS:
	case hostPCS, hostIntelCerts:
		if t, ok := parseIntelURL(raw); ok {
			return t.kind, nil
		}
		return 0, fmt.Errorf("%w: %q is not an Intel PCS v4 TCB info, QE identity or PCK CRL URL, nor the Intel SGX Root CA CRL", ErrRefused, raw)
	default:
		return 0, fmt.Errorf("%w: %q: host %q is not a vendor collateral service (allowed: %s, %s, %s)", ErrRefused, raw, u.Host, hostKDS, hostPCS, hostIntelCerts)
	}
	if _, err := kds.ParseVCEKCertURL(raw); err == nil {
		return kindVCEK, nil
	}
	if _, err := kds.ParseVLEKCertURL(raw); err == nil {
		return kindVLEK, nil
	}
	if u.RawQuery == "" {
		if _, _, err := kds.ParseProductCertChainURL(raw); err == nil {
			return kindCertChain, nil
		}
		if isKDSCRLURL(raw, u) {
			return kindCRL, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not an AMD KDS VCEK, VLEK, cert_chain or crl URL", ErrRefused, raw)
}

// isKDSCRLURL reports whether raw (parsed as u) is kds.CrlLinkByKey of some
// product line.
func isKDSCRLURL(raw string, u *url.URL) bool {
	parts := strings.Split(u.Path, "/") // "", vcek|vlek, v1, line, crl
	if len(parts) != 5 || parts[0] != "" || parts[2] != "v1" || parts[4] != "crl" || !isProductLine(parts[3]) {
		return false
	}
	signer := abi.VcekReportSigner
	switch parts[1] {
	case "vcek":
	case "vlek":
		signer = abi.VlekReportSigner
	default:
		return false
	}
	return raw == kds.CrlLinkByKey(parts[3], signer)
}

// isProductLine reports whether s can be a KDS product line ("Milan"): a
// future line is fetched as well, so only its spelling is checked.
func isProductLine(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// validate checks that body is the kind of collateral its URL names, as the
// vendor serves it. It checks form, not trust.
func validate(k kind, raw string, body []byte) error {
	var err error
	switch k {
	case kindVCEK:
		err = checkVCEK(raw, body)
	case kindVLEK:
		_, err = x509.ParseCertificate(body)
	case kindCertChain:
		_, _, err = kds.ParseProductCertChain(body)
	case kindCRL:
		_, err = parseDERCRL(body)
	case kindTCBInfo, kindQEIdentity, kindPCKCRL, kindRootCACRL:
		err = checkIntel(k, raw, body)
	default:
		err = errors.New("unknown collateral kind")
	}
	if err != nil {
		return fmt.Errorf("%w: %s is not a valid %s: %v", ErrMalformed, raw, k, err)
	}
	return nil
}

// validateEntry checks a body and its headers (validate, checkHeaders).
func validateEntry(k kind, raw string, body []byte, hdr map[string]string) error {
	if err := validate(k, raw, body); err != nil {
		return err
	}
	return checkHeaders(k, raw, hdr)
}

// checkVCEK checks that der is a VCEK certificate for the hwID and TCB the
// KDS URL raw names, so that no other chip's certificate is ever cached
// under it (the product line is not compared: early VCEKs misname it).
func checkVCEK(raw string, der []byte) error {
	want, err := kds.ParseVCEKCertURL(raw)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	exts, err := kds.VcekCertificateExtensions(cert)
	if err != nil {
		return err
	}
	if !bytes.Equal(exts.HWID, want.HWID) {
		return fmt.Errorf("certificate hwID %x is not the URL's %x", exts.HWID, want.HWID)
	}
	got, w := kds.DecomposeTCBVersion(exts.TCBVersion), kds.DecomposeTCBVersion(kds.TCBVersion(want.TCB))
	if got.BlSpl != w.BlSpl || got.TeeSpl != w.TeeSpl || got.SnpSpl != w.SnpSpl || got.UcodeSpl != w.UcodeSpl {
		return fmt.Errorf("certificate TCB %#x is not the URL's %#x", uint64(exts.TCBVersion), want.TCB)
	}
	return nil
}

// expiry returns when body stops being fresh: its own date (bodyExpiry),
// else fetchedAt + defaultTTL.
func expiry(body []byte, fetchedAt time.Time) time.Time {
	if end, ok := bodyExpiry(body); ok {
		return end
	}
	return fetchedAt.Add(defaultTTL)
}

// bodyExpiry returns the date a body carries: a CRL's NextUpdate, a
// certificate's NotAfter, the earliest NotAfter of PEM certificates, an
// Intel TCB info's or enclave identity's nextUpdate; false if it has none.
func bodyExpiry(body []byte) (time.Time, bool) {
	if crl, err := parseCRL(body); err == nil {
		return crl.NextUpdate, !crl.NextUpdate.IsZero()
	}
	if certs, err := parseCerts(body); err == nil {
		end := certs[0].NotAfter
		for _, c := range certs[1:] {
			if c.NotAfter.Before(end) {
				end = c.NotAfter
			}
		}
		return end, true
	}
	if len(body) > 0 && body[0] == '{' {
		if _, _, next, err := parseSigned(body); err == nil {
			return next, true
		}
	}
	return time.Time{}, false
}

// chainsExpiry returns the earliest NotAfter of the certificates in
// headers, or end if none is earlier.
func chainsExpiry(hdr map[string]string, end time.Time) time.Time {
	for _, v := range hdr {
		certs, err := parsePEMChain([]byte(v))
		if err != nil {
			continue
		}
		for _, c := range certs {
			if c.NotAfter.Before(end) {
				end = c.NotAfter
			}
		}
	}
	return end
}

// parseCRL parses a CRL by the rule of the verifiers (attest/snp and
// attest/dcap), so that nothing they refuse is cached: DER, or exactly one
// PEM "X509 CRL" block without headers that starts the body and has
// nothing after it.
func parseCRL(body []byte) (*x509.RevocationList, error) {
	der := body
	if bytes.HasPrefix(body, []byte("-----BEGIN")) {
		b, rest := pem.Decode(body)
		if b == nil || b.Type != "X509 CRL" || len(b.Headers) != 0 || len(rest) != 0 {
			return nil, errors.New("not exactly one PEM X509 CRL block")
		}
		der = b.Bytes
	}
	return parseDERCRL(der)
}

// parseDERCRL parses exactly one DER CRL: x509.ParseRevocationList alone
// ignores bytes after it, which the verifiers refuse.
func parseDERCRL(der []byte) (*x509.RevocationList, error) {
	var outer asn1.RawValue
	rest, err := asn1.Unmarshal(der, &outer)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the CRL", len(rest))
	}
	return x509.ParseRevocationList(der)
}

// parseCerts parses a DER certificate or PEM CERTIFICATE blocks (nothing
// else but white space).
func parseCerts(body []byte) ([]*x509.Certificate, error) {
	if b, _ := pem.Decode(body); b == nil {
		c, err := x509.ParseCertificate(body)
		if err != nil {
			return nil, err
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for rest := body; len(bytes.TrimSpace(rest)) != 0; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, errors.New("not only PEM certificates")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs, nil
}
