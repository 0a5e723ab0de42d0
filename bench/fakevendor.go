package bench

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/collateral"
)

// vendorAnswer is one body a fake vendor serves, with the headers (sent
// URL-encoded, as Intel does) its kind carries.
type vendorAnswer struct {
	body   []byte
	header map[string]string
}

// fakeVendor is a loopback HTTP server that stands in for the AMD KDS and
// Intel PCS: it answers the paths those services serve, whatever host the
// caller meant, and counts requests.
type fakeVendor struct {
	srv     *httptest.Server
	client  *http.Client // keep-alive client for the server
	mu      sync.Mutex
	answers map[string]vendorAnswer // by path?query
	hits    int
}

func newFakeVendor() *fakeVendor {
	v := &fakeVendor{answers: map[string]vendorAnswer{}}
	v.srv = httptest.NewServer(http.HandlerFunc(v.serve))
	v.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}}
	return v
}

func (v *fakeVendor) close() {
	v.client.CloseIdleConnections()
	v.srv.Close()
}

func (v *fakeVendor) set(pathQuery string, a vendorAnswer) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.answers[pathQuery] = a
}

func (v *fakeVendor) serve(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Path
	if r.URL.RawQuery != "" {
		key += "?" + r.URL.RawQuery
	}
	v.mu.Lock()
	a, ok := v.answers[key]
	v.hits++
	v.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	for k, val := range a.header {
		w.Header().Set(k, strings.ReplaceAll(url.QueryEscape(val), "+", "%20"))
	}
	_, _ = w.Write(a.body)
}

// redirect maps a vendor URL to the same path on the fake server.
func (v *fakeVendor) redirect(vendorURL string) (string, error) {
	u, err := url.Parse(vendorURL)
	if err != nil {
		return "", err
	}
	t := v.srv.URL + u.EscapedPath()
	if u.RawQuery != "" {
		t += "?" + u.RawQuery
	}
	return t, nil
}

// get fetches vendorURL from the fake server over loopback HTTP.
func (v *fakeVendor) get(ctx context.Context, vendorURL string) (http.Header, []byte, error) {
	target, err := v.redirect(vendorURL)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("bench: fake vendor: GET %s: HTTP %d", vendorURL, resp.StatusCode)
	}
	return resp.Header, body, nil
}

// fetcher is a fresh, empty, memory-only collateral.Fetcher whose vendor
// hosts are the fake server, without rate limits; now is its clock.
func (v *fakeVendor) fetcher(now func() time.Time) (*collateral.Fetcher, error) {
	return collateral.New(collateral.Options{
		Client: v.client,
		Now:    now,
		Rate:   1e6, Burst: 1 << 10,
		DisableMirrors: true,
		Hosts: map[string]string{
			"kdsintf.amd.com":                        v.srv.URL,
			"api.trustedservices.intel.com":          v.srv.URL,
			"certificates.trustedservices.intel.com": v.srv.URL,
		},
	})
}

// serveSNP serves the simulated Milan chain: the VCEK at the KDS URL
// vcekURL, the ASK/ARK cert_chain and the simulated CRL.
func (v *fakeVendor) serveSNP(vcekURL string, vcekDER []byte, crlDER []byte) error {
	u, err := url.Parse(vcekURL)
	if err != nil {
		return err
	}
	v.set(u.Path+"?"+u.RawQuery, vendorAnswer{body: vcekDER})
	ark, ask := simtee.SNPRoots()
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ask.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ark.Raw})...)
	v.set("/vcek/v1/"+simtee.SNPProductLine+"/cert_chain", vendorAnswer{body: chain})
	cu, err := url.Parse(simtee.SNPCRLURL())
	if err != nil {
		return err
	}
	v.set(cu.Path, vendorAnswer{body: crlDER})
	return nil
}

// serveIntel serves one platform's DCAP collateral at the Intel PCS v4
// paths (and the root CA CRL at its certificates host path).
func (v *fakeVendor) serveIntel(kind dcap.Kind, fmspc [6]byte, ca dcap.CA, c *dcap.Collateral) {
	tee := string(kind)
	// Intel writes FMSPCs in upper case, go-tdx-guest asks in lower case.
	for _, f := range []string{strings.ToUpper(hex.EncodeToString(fmspc[:])), hex.EncodeToString(fmspc[:])} {
		v.set("/"+tee+"/certification/v4/tcb?fmspc="+f,
			vendorAnswer{c.TCBInfo, map[string]string{"TCB-Info-Issuer-Chain": string(c.TCBInfoIssuerChain)}})
	}
	v.set("/"+tee+"/certification/v4/qe/identity",
		vendorAnswer{c.QEIdentity, map[string]string{"SGX-Enclave-Identity-Issuer-Chain": string(c.QEIdentityIssuerChain)}})
	v.set("/sgx/certification/v4/pckcrl?ca="+string(ca)+"&encoding=der",
		vendorAnswer{c.PCKCRL, map[string]string{"SGX-PCK-CRL-Issuer-Chain": string(c.PCKCRLIssuerChain)}})
	v.set("/IntelSGXRootCA.der", vendorAnswer{body: c.RootCACRL})
}

// sevGetter is go-sev-guest's HTTPSGetter against the fake KDS: what a
// user's plain verify.SnpAttestation call fetches, over loopback HTTP.
type sevGetter struct{ v *fakeVendor }

func (g sevGetter) Get(u string) ([]byte, error) {
	_, body, err := g.v.get(context.Background(), u)
	return body, err
}

// tdxGetter is go-tdx-guest's HTTPSGetter against the fake PCS.
type tdxGetter struct{ v *fakeVendor }

func (g tdxGetter) Get(u string) (map[string][]string, []byte, error) {
	h, body, err := g.v.get(context.Background(), u)
	if err != nil {
		return nil, nil, err
	}
	if h == nil {
		return nil, nil, errors.New("bench: fake PCS: no headers")
	}
	return h, body, nil
}
