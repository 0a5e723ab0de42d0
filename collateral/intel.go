package collateral

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/trustbound/trustbound/attest/dcap"
)

var (
	_ dcap.Source      = (*Fetcher)(nil)
	_ dcap.Invalidator = (*Fetcher)(nil)
)

// Intel collateral hosts: the Provisioning Certification Service (v4 API)
// and the host of the Intel SGX Root CA's CRL (the CRL distribution point
// of the root certificate).
const (
	hostPCS        = "api.trustedservices.intel.com"
	hostIntelCerts = "certificates.trustedservices.intel.com"
	rootCACRLURL   = "https://" + hostIntelCerts + "/IntelSGXRootCA.der"
	// pccsRootCACRLPath is where a PCCS serves the root CA CRL (as hex).
	pccsRootCACRLPath = "/sgx/certification/v4/rootcacrl"
)

// Issuer chain response headers (URL-encoded PEM), by Intel's spelling.
// PCS v4 names the TCB info chain TCB-Info-Issuer-Chain; v3 and older
// PCCS releases SGX-TCB-Info-Issuer-Chain.
const (
	hdrTCBInfoChain    = "TCB-Info-Issuer-Chain"
	hdrTCBInfoChainV3  = "SGX-TCB-Info-Issuer-Chain"
	hdrQEIdentityChain = "SGX-Enclave-Identity-Issuer-Chain"
	hdrPCKCRLChain     = "SGX-PCK-CRL-Issuer-Chain"
)

// Issuer common names of the Intel CRLs.
const (
	cnRootCA       = "Intel SGX Root CA"
	cnProcessorCA  = "Intel SGX PCK Processor CA"
	cnPlatformCA   = "Intel SGX PCK Platform CA"
	idQE, idTDQE   = "QE", "TD_QE"
	idSGX, idTDX   = "SGX", "TDX"
	fieldTCBInfo   = "tcbInfo"
	fieldIdentity  = "enclaveIdentity"
	fieldSignature = "signature"
)

func pcsBase(tee dcap.Kind) string {
	return "https://" + hostPCS + "/" + string(tee) + "/certification/v4/"
}

// tcbInfoURL is the PCS v4 TCB info URL of an FMSPC (upper-case hex, as
// Intel writes FMSPCs).
func tcbInfoURL(tee dcap.Kind, fmspc [6]byte) string {
	return pcsBase(tee) + "tcb?fmspc=" + strings.ToUpper(hex.EncodeToString(fmspc[:]))
}

// qeIdentityURL is the PCS v4 identity of the QE (SGX) or TD QE (TDX).
func qeIdentityURL(tee dcap.Kind) string { return pcsBase(tee) + "qe/identity" }

// pckCRLURL is the PCS v4 CRL of a PCK CA, DER-encoded.
func pckCRLURL(ca dcap.CA) string {
	return pcsBase(dcap.SGX) + "pckcrl?ca=" + string(ca) + "&encoding=der"
}

// intelTarget is what an Intel collateral URL names.
type intelTarget struct {
	kind  kind
	tee   dcap.Kind // TCB info and QE identity
	fmspc [6]byte   // TCB info
	ca    dcap.CA   // PCK CRL
}

// parseIntelURL reports what raw names, if it is exactly one of the URLs
// tcbInfoURL, qeIdentityURL, pckCRLURL or rootCACRLURL build.
func parseIntelURL(raw string) (intelTarget, bool) {
	if raw == rootCACRLURL {
		return intelTarget{kind: kindRootCACRL}, true
	}
	for _, ca := range []dcap.CA{dcap.ProcessorCA, dcap.PlatformCA} {
		if raw == pckCRLURL(ca) {
			return intelTarget{kind: kindPCKCRL, ca: ca}, true
		}
	}
	for _, tee := range []dcap.Kind{dcap.SGX, dcap.TDX} {
		if raw == qeIdentityURL(tee) {
			return intelTarget{kind: kindQEIdentity, tee: tee}, true
		}
		h, ok := strings.CutPrefix(raw, pcsBase(tee)+"tcb?fmspc=")
		if !ok || len(h) != 12 || h != strings.ToUpper(h) {
			continue
		}
		t := intelTarget{kind: kindTCBInfo, tee: tee}
		if _, err := hex.Decode(t.fmspc[:], []byte(h)); err == nil {
			return t, true
		}
	}
	return intelTarget{}, false
}

// chainHeaders are the response headers an Intel kind carries its issuer
// chain in, preferred first; nil for kinds that carry none.
func chainHeaders(k kind) []string {
	switch k {
	case kindTCBInfo:
		return []string{hdrTCBInfoChain, hdrTCBInfoChainV3}
	case kindQEIdentity:
		return []string{hdrQEIdentityChain}
	case kindPCKCRL:
		return []string{hdrPCKCRLChain}
	}
	return nil
}

// pickHeaders keeps, of a response's headers, the issuer chain its kind
// carries, URL-decoded. It fails if a kind that needs one has none.
func pickHeaders(k kind, h http.Header) (map[string]string, error) {
	names := chainHeaders(k)
	if names == nil {
		return nil, nil
	}
	for _, name := range names {
		v := h.Get(name)
		if v == "" {
			continue
		}
		dec, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("%w: header %s is not URL-encoded PEM: %v", ErrMalformed, name, err)
		}
		return map[string]string{name: dec}, nil
	}
	return nil, fmt.Errorf("%w: the answer lacks the %s header (the issuer chain)", ErrMalformed, names[0])
}

// checkHeaders checks that hdr is exactly the issuer chain kind k carries
// (nothing for other kinds), and that it is PEM certificates only.
func checkHeaders(k kind, raw string, hdr map[string]string) error {
	names := chainHeaders(k)
	if names == nil {
		if len(hdr) != 0 {
			return fmt.Errorf("%w: %s (%s) carries no headers, but has %d", ErrMalformed, raw, k, len(hdr))
		}
		return nil
	}
	if len(hdr) != 1 {
		return fmt.Errorf("%w: %s (%s) needs exactly its %s header, has %d headers", ErrMalformed, raw, k, names[0], len(hdr))
	}
	for name, v := range hdr {
		ok := false
		for _, n := range names {
			ok = ok || name == n
		}
		if !ok {
			return fmt.Errorf("%w: %s (%s) carries header %q, want %s", ErrMalformed, raw, k, name, names[0])
		}
		if _, err := parsePEMChain([]byte(v)); err != nil {
			return fmt.Errorf("%w: %s header %s is not a PEM certificate chain: %v", ErrMalformed, raw, name, err)
		}
	}
	return nil
}

// parsePEMChain parses PEM CERTIFICATE blocks separated by white space
// only (pem.Decode alone would skip text, and a malformed block, before
// the next block).
func parsePEMChain(data []byte) ([]*x509.Certificate, error) {
	const begin = "-----BEGIN "
	var certs []*x509.Certificate
	for rest := bytes.TrimSpace(data); len(rest) != 0; rest = bytes.TrimSpace(rest) {
		if !bytes.HasPrefix(rest, []byte(begin)) {
			return nil, fmt.Errorf("text outside PEM blocks after certificate %d", len(certs))
		}
		b, next := pem.Decode(rest)
		if b == nil || bytes.Count(rest[:len(rest)-len(next)], []byte(begin)) != 1 {
			return nil, fmt.Errorf("PEM block %d is malformed", len(certs)+1)
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			return nil, fmt.Errorf("PEM block %d is a %q, not a plain CERTIFICATE", len(certs)+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
		rest = next
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs, nil
}

// chainHeader returns the issuer chain of an entry of kind k.
func chainHeader(k kind, hdr map[string]string) []byte {
	for _, name := range chainHeaders(k) {
		if v, ok := hdr[name]; ok {
			return []byte(v)
		}
	}
	return nil
}

// signedHead is the part of a TCB info or enclave identity this package
// reads: enough to file it under its URL and know when it expires. Every
// other field, and the signature, are the dcap verifier's.
type signedHead struct {
	ID         string `json:"id"`
	FMSPC      string `json:"fmspc"`
	IssueDate  string `json:"issueDate"`
	NextUpdate string `json:"nextUpdate"`
}

// parseSigned reads a PCS JSON body {"<field>":{…},"signature":"<hex>"},
// field being tcbInfo or enclaveIdentity, and returns which field it has,
// the head of that object and its nextUpdate.
func parseSigned(body []byte) (string, signedHead, time.Time, error) {
	var h signedHead
	var doc map[string]json.RawMessage
	if err := decodeOne(body, &doc); err != nil {
		return "", h, time.Time{}, err
	}
	field := fieldTCBInfo
	if _, ok := doc[fieldTCBInfo]; !ok {
		field = fieldIdentity
	}
	obj, ok := doc[field]
	sig, hasSig := doc[fieldSignature]
	if !ok || !hasSig || len(doc) != 2 {
		return "", h, time.Time{}, errors.New(`not {"tcbInfo"|"enclaveIdentity":{…},"signature":"…"}`)
	}
	var s string
	if err := json.Unmarshal(sig, &s); err != nil || s == "" {
		return "", h, time.Time{}, errors.New("signature is not a string")
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", h, time.Time{}, errors.New("signature is not hex")
	}
	next, err := parseHead(obj, &h)
	return field, h, next, err
}

// parseHead reads the head of a TCB info or enclave identity object and
// returns its nextUpdate.
func parseHead(obj []byte, h *signedHead) (time.Time, error) {
	if len(obj) == 0 || obj[0] != '{' {
		return time.Time{}, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(obj, h); err != nil {
		return time.Time{}, err
	}
	next, err := time.Parse(time.RFC3339, h.NextUpdate)
	if err != nil {
		return time.Time{}, fmt.Errorf("nextUpdate: %v", err)
	}
	return next, nil
}

// decodeOne decodes exactly one JSON value (unknown fields allowed).
func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// checkIntel checks that body is the Intel collateral raw names: a TCB
// info of its kind and FMSPC, the identity of its QE, a CRL of its CA.
func checkIntel(k kind, raw string, body []byte) error {
	t, ok := parseIntelURL(raw)
	if !ok || t.kind != k {
		return errors.New("not an Intel collateral URL of this kind")
	}
	switch k {
	case kindTCBInfo, kindQEIdentity:
		field, h, _, err := parseSigned(body)
		if err != nil {
			return err
		}
		want, wantID := fieldTCBInfo, map[dcap.Kind]string{dcap.SGX: idSGX, dcap.TDX: idTDX}[t.tee]
		if k == kindQEIdentity {
			want, wantID = fieldIdentity, map[dcap.Kind]string{dcap.SGX: idQE, dcap.TDX: idTDQE}[t.tee]
		}
		if field != want {
			return fmt.Errorf("has %s, want %s", field, want)
		}
		if h.ID != wantID {
			return fmt.Errorf("id %q, want %q", h.ID, wantID)
		}
		if k == kindTCBInfo && !strings.EqualFold(h.FMSPC, hex.EncodeToString(t.fmspc[:])) {
			return fmt.Errorf("fmspc %q, want %X", h.FMSPC, t.fmspc)
		}
		return nil
	case kindPCKCRL, kindRootCACRL:
		crl, err := parseCRL(body)
		if err != nil {
			return err
		}
		want := cnRootCA
		if k == kindPCKCRL {
			want = caIssuer(t.ca)
		}
		if crl.Issuer.CommonName != want {
			return fmt.Errorf("issued by %q, want %q", crl.Issuer.CommonName, want)
		}
		return nil
	}
	return errors.New("unknown Intel collateral kind")
}

func caIssuer(ca dcap.CA) string {
	if ca == dcap.PlatformCA {
		return cnPlatformCA
	}
	return cnProcessorCA
}

// normalizeCRL returns a CRL body as DER or PEM: a PCCS answers the root
// CA CRL (and old releases the PCK CRL) as hex text of the DER.
func normalizeCRL(body []byte) []byte {
	if _, err := parseCRL(body); err == nil {
		return body
	}
	der, err := hex.DecodeString(string(bytes.TrimSpace(body)))
	if err != nil {
		return body
	}
	return der
}

// pccsTarget returns where a PCCS serves vendorURL, if it serves it.
func (f *Fetcher) pccsTarget(vendorURL string, u *url.URL) (string, bool) {
	if f.pccsBase == "" {
		return "", false
	}
	if vendorURL == rootCACRLURL {
		return f.pccsBase + pccsRootCACRLPath, true
	}
	if u.Host != hostPCS {
		return "", false
	}
	t := f.pccsBase + u.EscapedPath()
	if u.RawQuery != "" {
		t += "?" + u.RawQuery
	}
	return t, true
}

// canonical maps a URL of the configured PCCS to the PCS (or root CA CRL)
// URL it stands for; any other URL is returned as is.
func (f *Fetcher) canonical(raw string) string {
	if f.pccsBase == "" {
		return raw
	}
	rest, ok := strings.CutPrefix(raw, f.pccsBase+"/")
	if !ok {
		return raw
	}
	if "/"+rest == pccsRootCACRLPath {
		return rootCACRLURL
	}
	return "https://" + hostPCS + "/" + rest
}

// parsePCCS checks a PCCS base URL and returns it without a trailing
// /{sgx,tdx}/certification/v4[/], as the prefix of the PCS paths.
func parsePCCS(raw string) (base, host string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("collateral: PCCS %q is not an https base URL (e.g. https://pccs.example:8081/sgx/certification/v4/)", raw)
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	for _, tee := range []string{"/sgx", "/tdx"} {
		p = strings.TrimSuffix(p, tee+"/certification/v4")
	}
	if strings.Contains(p+"/", "/certification/") {
		return "", "", fmt.Errorf("collateral: PCCS %q: only the v4 API (…/sgx/certification/v4/) is supported", raw)
	}
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(p, "/"), u.Host, nil
}

// Collateral returns the Intel DCAP collateral of a platform: the CRL of
// its PCK CA, the Intel SGX Root CA's CRL, the TCB info of its FMSPC and
// the identity of its QE (SGX) or TD QE (TDX), each with its issuer chain,
// from the cache, the bundles, Intel PCS v4 or the configured PCCS. Every
// failure wraps dcap.ErrCollateral and ErrRefused, ErrNotFound,
// ErrUnavailable or a *StaleError (errors.Join of those of the four
// pieces): stale collateral is never returned without an error. The
// caller owns the result.
func (f *Fetcher) Collateral(ctx context.Context, tee dcap.Kind, fmspc [6]byte, ca dcap.CA) (*dcap.Collateral, error) {
	if tee != dcap.SGX && tee != dcap.TDX {
		return nil, fmt.Errorf("%w: %w: DCAP kind %q is neither %q nor %q", dcap.ErrCollateral, ErrRefused, tee, dcap.SGX, dcap.TDX)
	}
	if ca != dcap.ProcessorCA && ca != dcap.PlatformCA {
		return nil, fmt.Errorf("%w: %w: PCK CA %q is neither %q nor %q", dcap.ErrCollateral, ErrRefused, ca, dcap.ProcessorCA, dcap.PlatformCA)
	}
	urls := [4]string{pckCRLURL(ca), rootCACRLURL, tcbInfoURL(tee, fmspc), qeIdentityURL(tee)}
	var es [4]*entry
	var errs [4]error
	now := f.now()
	warm := true
	for i, u := range urls {
		if es[i] = f.cached(u, now); es[i] == nil {
			warm = false
		}
	}
	if !warm {
		var wg sync.WaitGroup
		for i, u := range urls {
			if es[i] != nil {
				continue
			}
			wg.Go(func() { es[i], errs[i] = f.get(ctx, u) })
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("%w: %w", dcap.ErrCollateral, err)
		}
	}
	return &dcap.Collateral{
		PCKCRL:                bytes.Clone(es[0].body),
		PCKCRLIssuerChain:     chainHeader(kindPCKCRL, es[0].headers),
		RootCACRL:             bytes.Clone(es[1].body),
		TCBInfo:               bytes.Clone(es[2].body),
		TCBInfoIssuerChain:    chainHeader(kindTCBInfo, es[2].headers),
		QEIdentity:            bytes.Clone(es[3].body),
		QEIdentityIssuerChain: chainHeader(kindQEIdentity, es[3].headers),
	}, nil
}

// InvalidateCollateral forgets, in memory and in the cache directory, the
// four pieces Collateral returns for a platform: the CRL of its PCK CA, the
// Intel SGX Root CA's CRL, the TCB info of its FMSPC and the identity of
// its QE (SGX) or TD QE (TDX), so that the next Collateral asks Intel (or
// the PCCS) again. The SGX and TDX verifiers call it when TCB evaluation
// refuses the collateral as not genuine (dcap.RejectedError). Bundles
// loaded in memory are kept only as they were cached; unknown kinds and
// CAs are ignored.
func (f *Fetcher) InvalidateCollateral(tee dcap.Kind, fmspc [6]byte, ca dcap.CA) {
	if tee != dcap.SGX && tee != dcap.TDX {
		return
	}
	urls := []string{rootCACRLURL, tcbInfoURL(tee, fmspc), qeIdentityURL(tee)}
	if ca == dcap.ProcessorCA || ca == dcap.PlatformCA {
		urls = append(urls, pckCRLURL(ca))
	}
	for _, u := range urls {
		f.Invalidate(u)
	}
}
