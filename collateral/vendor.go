package collateral

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
)

// Vendor collateral hosts. Get accepts URLs of the first; the others are
// asked only by this package (mirrors). Intel PCS joins here later.
const (
	hostKDS   = "kdsintf.amd.com"
	hostAzure = "global.acccache.azure.net"
)

// vendorHosts are the hosts Options.Hosts may redirect (for tests and
// private mirrors).
var vendorHosts = []string{hostKDS, hostAzure}

// kind is the kind of collateral a URL names.
type kind int

const (
	kindVCEK      kind = iota + 1 // DER VCEK certificate
	kindVLEK                      // DER VLEK certificate
	kindCertChain                 // PEM ASK/ASVK then ARK
	kindCRL                       // DER CRL
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
	if u.Host != hostKDS {
		return 0, fmt.Errorf("%w: %q: host %q is not a vendor collateral service (allowed: %s)", ErrRefused, raw, u.Host, hostKDS)
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
		_, err = x509.ParseRevocationList(body)
	default:
		err = errors.New("unknown collateral kind")
	}
	if err != nil {
		return fmt.Errorf("%w: %s is not a valid %s: %v", ErrMalformed, raw, k, err)
	}
	return nil
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

// expiry returns when body stops being fresh: a CRL's NextUpdate, a
// certificate's NotAfter, the earliest NotAfter of PEM certificates, else
// fetchedAt + defaultTTL.
func expiry(body []byte, fetchedAt time.Time) time.Time {
	if crl, err := parseCRL(body); err == nil {
		if !crl.NextUpdate.IsZero() {
			return crl.NextUpdate
		}
		return fetchedAt.Add(defaultTTL)
	}
	if certs, err := parseCerts(body); err == nil {
		end := certs[0].NotAfter
		for _, c := range certs[1:] {
			if c.NotAfter.Before(end) {
				end = c.NotAfter
			}
		}
		return end
	}
	return fetchedAt.Add(defaultTTL)
}

// parseCRL parses a DER CRL or exactly one PEM "X509 CRL" block.
func parseCRL(body []byte) (*x509.RevocationList, error) {
	if b, rest := pem.Decode(body); b != nil {
		if b.Type != "X509 CRL" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, errors.New("not one PEM X509 CRL")
		}
		return x509.ParseRevocationList(b.Bytes)
	}
	return x509.ParseRevocationList(body)
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
