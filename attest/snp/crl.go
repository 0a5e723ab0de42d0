package snp

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// oidDeltaCRLIndicator marks a delta CRL (RFC 5280, 5.2.4), which lists
// only the changes since a base CRL and so cannot stand alone.
var oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// revocations is what a verified AMD CRL says, reduced to what each
// verification needs: its validity and the revoked serial numbers. It
// depends only on the CRL bytes and the ARK that signed it.
type revocations struct {
	thisUpdate, nextUpdate time.Time
	// revoked maps a serial number (big.Int.String) to its revocation time.
	revoked map[string]time.Time
}

// parseCRL parses a CRL in DER or as exactly one "X509 CRL" PEM block
// (nothing before or after it). AMD's KDS serves DER.
func parseCRL(b []byte) (*x509.RevocationList, error) {
	der := b
	if bytes.HasPrefix(b, []byte("-----BEGIN")) {
		blk, rest := pem.Decode(b)
		if blk == nil || blk.Type != "X509 CRL" || len(rest) != 0 {
			return nil, errors.New("CRL in PEM must be exactly one X509 CRL block")
		}
		der = blk.Bytes
	}
	// x509.ParseRevocationList ignores bytes after the CRL.
	var outer asn1.RawValue
	rest, err := asn1.Unmarshal(der, &outer)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the CRL (want DER or PEM): %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the CRL", len(rest))
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the CRL (want DER or PEM): %w", err)
	}
	return crl, nil
}

// verifyCRL checks that crl is a complete CRL that ark signed with
// RSASSA-PSS SHA-384, as AMD signs its KDS CRLs, and returns its contents.
// It does not check the time: the caller does, on every use.
func verifyCRL(crl *x509.RevocationList, ark *x509.Certificate) (*revocations, error) {
	if crl.SignatureAlgorithm != x509.SHA384WithRSAPSS {
		return nil, fmt.Errorf("CRL is signed with %v, want SHA384-RSAPSS", crl.SignatureAlgorithm)
	}
	if !bytes.Equal(crl.RawIssuer, ark.RawSubject) {
		return nil, fmt.Errorf("CRL issuer %q is not the ARK %q", crl.Issuer, ark.Subject)
	}
	if err := crl.CheckSignatureFrom(ark); err != nil {
		return nil, fmt.Errorf("CRL is not signed by the ARK %q: %w", ark.Subject, err)
	}
	for _, e := range crl.Extensions {
		if e.Id.Equal(oidDeltaCRLIndicator) {
			return nil, errors.New("CRL is a delta CRL; a complete CRL is required")
		}
		if e.Critical {
			return nil, fmt.Errorf("CRL has an unsupported critical extension %v", e.Id)
		}
	}
	r := &revocations{thisUpdate: crl.ThisUpdate, nextUpdate: crl.NextUpdate, revoked: make(map[string]time.Time, len(crl.RevokedCertificateEntries))}
	for i, e := range crl.RevokedCertificateEntries {
		for _, x := range e.Extensions {
			if x.Critical {
				// For example a certificate issuer (indirect CRL): the
				// entry might not mean what it seems.
				return nil, fmt.Errorf("CRL entry %d has an unsupported critical extension %v", i, x.Id)
			}
		}
		r.revoked[e.SerialNumber.String()] = e.RevocationTime
	}
	return r, nil
}

// freshAt says why r cannot be relied on at t, or nil when t ≤ nextUpdate.
// A CRL issued after t (thisUpdate > t) is relied on: AMD revokes for good
// and its KDS serves only its current CRL, so a later CRL that does not
// list a certificate shows that it was not revoked at t either, and one
// that lists it refuses it. Verifying at a past time needs this.
func (r *revocations) freshAt(t time.Time) error {
	switch {
	case r.nextUpdate.IsZero():
		return errors.New("the CRL has no nextUpdate, so its freshness is unknown")
	case t.After(r.nextUpdate):
		return fmt.Errorf("the CRL is stale: its nextUpdate was %s", r.nextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}
