package snp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

// endorsement is a VCEK or VLEK certificate that chains to trusted AMD roots.
type endorsement struct {
	cert *x509.Certificate
	exts *kds.Extensions
	// productLine is the AMD product line whose roots it chains to.
	productLine string
	// simulated is true when it chains only to the simulated roots.
	simulated bool
}

// verifyEndorsement checks the endorsement key certificate der for a report
// signed by key on productLine (empty for version 2 reports, which do not
// say: then the certificate's product name decides). It tries roots first
// and simulated only after roots fail. With an error it returns the product
// line it settled on, for the error message.
//
// It depends on the certificate and its inputs only, never on the report:
// a cache keyed by SHA-256(der), key, productLine and the chain's validity
// window can wrap it.
func verifyEndorsement(der []byte, key abi.ReportSigner, productLine string, roots, simulated map[string][]*trust.AMDRootCerts, now time.Time) (*endorsement, string, error) {
	cert, err := trust.ParseCert(der) // DER, or one PEM block
	if err != nil {
		return nil, productLine, fmt.Errorf("cannot parse the %v certificate (want DER or PEM): %w", key, err)
	}
	exts, err := checkEndorsementCert(cert, key)
	if err != nil {
		return nil, productLine, err
	}
	if productLine == "" {
		product, err := kds.ParseProductName(exts.ProductName, key)
		if err != nil {
			return nil, productLine, fmt.Errorf("%v certificate: %w", key, err)
		}
		productLine = kds.ProductLine(product)
	}
	e := &endorsement{cert: cert, exts: exts, productLine: productLine}
	realErr := chainsTo(cert, key, productLine, roots[productLine], now)
	if realErr == nil {
		return e, productLine, nil
	}
	if chainsTo(cert, key, productLine, simulated[productLine], now) == nil {
		e.simulated = true
		return e, productLine, nil
	}
	return nil, productLine, realErr
}

// checkEndorsementCert checks what AMD's KDS specification says of a VCEK
// or VLEK certificate itself, and returns its KDS extensions.
func checkEndorsementCert(cert *x509.Certificate, key abi.ReportSigner) (*kds.Extensions, error) {
	if cert.Version != 3 {
		return nil, fmt.Errorf("%v certificate is X.509 version %d, want 3", key, cert.Version)
	}
	if cert.SignatureAlgorithm != x509.SHA384WithRSAPSS {
		return nil, fmt.Errorf("%v certificate is signed with %v, want SHA384-RSAPSS", key, cert.SignatureAlgorithm)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%v certificate key is not ECDSA P-384", key)
	}
	if err := checkAMDName(cert.Subject, endorsementCN(key)); err != nil {
		return nil, fmt.Errorf("%v certificate subject: %w", key, err)
	}
	exts, err := kds.CertificateExtensions(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%v certificate extensions: %w", key, err)
	}
	return exts, nil
}

// chainsTo checks that cert was issued by the intermediate (ASK for a VCEK,
// ASVK for a VLEK) of one of roots, which chains to its ARK, all valid at now.
func chainsTo(cert *x509.Certificate, key abi.ReportSigner, productLine string, roots []*trust.AMDRootCerts, now time.Time) error {
	if err := checkAMDName(cert.Issuer, intermediateCN(key, productLine)); err != nil {
		return fmt.Errorf("%v certificate issuer: %w", key, err)
	}
	var errs []error
	for _, r := range roots {
		opts := r.X509Options(now, key) // nil: no ARK, or no intermediate for key
		if opts == nil {
			continue
		}
		if _, err := cert.Verify(*opts); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	if len(errs) == 0 {
		return fmt.Errorf("no AMD %v roots are trusted for product line %q", key, productLine)
	}
	return errors.Join(errs...)
}

func endorsementCN(key abi.ReportSigner) string {
	if key == abi.VlekReportSigner {
		return "SEV-VLEK"
	}
	return "SEV-VCEK"
}

func intermediateCN(key abi.ReportSigner, productLine string) string {
	if key == abi.VlekReportSigner {
		return "SEV-VLEK-" + productLine
	}
	return "SEV-" + productLine
}

// checkAMDName checks the distinguished name AMD's KDS puts on its
// certificates.
func checkAMDName(n pkix.Name, cn string) error {
	for _, f := range []struct {
		field string
		got   []string
		want  string
	}{
		{"C", n.Country, "US"},
		{"L", n.Locality, "Santa Clara"},
		{"ST", n.Province, "CA"},
		{"O", n.Organization, "Advanced Micro Devices"},
		{"OU", n.OrganizationalUnit, "Engineering"},
		{"CN", []string{n.CommonName}, cn},
	} {
		if len(f.got) != 1 || f.got[0] != f.want {
			return fmt.Errorf("%s is %q, want %q", f.field, f.got, f.want)
		}
	}
	return nil
}
