package snp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

// endorsement is a VCEK or VLEK certificate that chains to trusted AMD roots.
// It depends on the certificate bytes, the key role and the product line
// only (never on the report or the time), so the Verifier caches it by
// those and checks the validity window on each use.
type endorsement struct {
	cert *x509.Certificate
	pub  *ecdsa.PublicKey
	exts *kds.Extensions
	// productLine is the AMD product line whose roots it chains to.
	productLine string
	// simulated is true when it chains only to the simulated roots.
	simulated bool
	// roots is the root set it chained to; intermediate (ASK or ASVK) and
	// ark the certificates of that set on the verified chain.
	roots             *trust.AMDRootCerts
	intermediate, ark *x509.Certificate
	// sibling is a root set of the same product line and ARK with the
	// intermediate of the other key (the ASVK for a VCEK, the ASK for a
	// VLEK), possibly roots itself; nil when none is trusted. Its chain's
	// CRL is checked too (checkRevocation).
	sibling *trust.AMDRootCerts
	// serial and intermediateSerial are the serial numbers of cert and
	// intermediate as CRL lookups key them (big.Int.String).
	serial, intermediateSerial string
	// notBefore and notAfter bound the time at which every certificate on
	// the chain is valid.
	notBefore, notAfter time.Time
}

// validAt reports whether the whole chain is valid at t, with the
// inclusive bounds of x509.Certificate.Verify.
func (e *endorsement) validAt(t time.Time) bool {
	return !t.Before(e.notBefore) && !t.After(e.notAfter)
}

// verifyEndorsement checks the endorsement key certificate der for a report
// signed by key on productLine (empty for version 2 reports, which do not
// say: then the certificate's product name decides). It tries roots first
// and simulated only after roots fail. With an error it returns the product
// line it settled on, for the error message.
func verifyEndorsement(der []byte, key abi.ReportSigner, productLine string, roots, simulated map[string][]*trust.AMDRootCerts, now time.Time) (*endorsement, string, error) {
	cert, err := trust.ParseCert(der) // DER, or one PEM block
	if err != nil {
		return nil, productLine, fmt.Errorf("cannot parse the %v certificate (want DER or PEM): %w", key, err)
	}
	exts, err := checkEndorsementCert(cert, key)
	if err != nil {
		return nil, productLine, err
	}
	// The product name is the product line, for a VCEK with "-" and the
	// stepping appended ("Milan-B0").
	certLine, _, _ := strings.Cut(exts.ProductName, "-")
	switch {
	case productLine == "":
		productLine = certLine
	case certLine != productLine:
		return nil, productLine, fmt.Errorf("the %v certificate is for product %q but the report comes from a %s", key, exts.ProductName, productLine)
	}
	e := &endorsement{cert: cert, pub: cert.PublicKey.(*ecdsa.PublicKey), exts: exts, productLine: productLine, serial: cert.SerialNumber.String()}
	set := roots[productLine]
	if realErr := chainsTo(e, key, set, now); realErr != nil {
		set = simulated[productLine]
		if chainsTo(e, key, set, now) != nil {
			return nil, productLine, realErr
		}
		e.simulated = true
	}
	e.sibling = siblingOf(set, e.ark, key)
	return e, productLine, nil
}

// siblingOf returns the first of roots whose ARK is ark and that has the
// intermediate of the key other than key, or nil.
func siblingOf(roots []*trust.AMDRootCerts, ark *x509.Certificate, key abi.ReportSigner) *trust.AMDRootCerts {
	for _, r := range roots {
		pc := r.ProductCerts
		if pc == nil || pc.Ark == nil || !pc.Ark.Equal(ark) {
			continue
		}
		if (key == abi.VcekReportSigner && pc.Asvk != nil) || (key == abi.VlekReportSigner && pc.Ask != nil) {
			return r
		}
	}
	return nil
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

// chainsTo checks that e.cert was issued by the intermediate (ASK for a
// VCEK, ASVK for a VLEK) of one of roots, which chains to its ARK, all valid
// at now, and records the chain in e.
func chainsTo(e *endorsement, key abi.ReportSigner, roots []*trust.AMDRootCerts, now time.Time) error {
	if err := checkAMDName(e.cert.Issuer, intermediateCN(key, e.productLine)); err != nil {
		return fmt.Errorf("%v certificate issuer: %w", key, err)
	}
	var errs []error
	for _, r := range roots {
		opts := r.X509Options(now, key) // nil: no ARK, or no intermediate for key
		if opts == nil {
			continue
		}
		chains, err := e.cert.Verify(*opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		chain := chains[0] // endorsement, intermediate, ARK: the pools hold one of each
		if len(chain) != 3 {
			errs = append(errs, fmt.Errorf("chain of %d certificates, want 3", len(chain)))
			continue
		}
		e.roots, e.intermediate, e.ark = r, chain[1], chain[2]
		e.intermediateSerial = chain[1].SerialNumber.String()
		e.notBefore, e.notAfter = chain[0].NotBefore, chain[0].NotAfter
		for _, c := range chain[1:] {
			if c.NotBefore.After(e.notBefore) {
				e.notBefore = c.NotBefore
			}
			if c.NotAfter.Before(e.notAfter) {
				e.notAfter = c.NotAfter
			}
		}
		return nil
	}
	if len(errs) == 0 {
		return fmt.Errorf("no AMD %v roots are trusted for product line %q", key, e.productLine)
	}
	return errors.Join(errs...)
}

// siblingKey is the other endorsement key: the VLEK for the VCEK, and the
// other way round.
func siblingKey(key abi.ReportSigner) abi.ReportSigner {
	if key == abi.VlekReportSigner {
		return abi.VcekReportSigner
	}
	return abi.VlekReportSigner
}

// intermediateRole names the certificate between key's and the ARK.
func intermediateRole(key abi.ReportSigner) string {
	if key == abi.VlekReportSigner {
		return "ASVK"
	}
	return "ASK"
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
