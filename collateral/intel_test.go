package collateral

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest/dcap"
)

// intelAt is inside the validity of both dcap-qvl samples' collateral.
var intelAt = time.Date(2025, 7, 4, 12, 0, 0, 0, time.UTC)

// qvlFixture is one dcap-qvl sample file, read field by field by the test
// (not by the code under test), and what PCS serves for it.
type qvlFixture struct {
	file  string
	raw   []byte
	f     map[string]string
	kind  dcap.Kind
	fmspc [6]byte
	ca    dcap.CA
	want  dcap.Collateral // the documented transformation of the file
}

func loadQVL(t testing.TB, name string) *qvlFixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	fx := &qvlFixture{file: name, raw: raw}
	if err := json.Unmarshal(raw, &fx.f); err != nil {
		t.Fatal(err)
	}
	unhex := func(k string) []byte {
		b, err := hex.DecodeString(fx.f[k])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	switch name {
	case "dcapqvl-sgx_quote_collateral.json":
		fx.kind, fx.ca, fx.fmspc = dcap.SGX, dcap.ProcessorCA, [6]byte{0x00, 0xa0, 0x67, 0x11, 0x00, 0x00}
	case "dcapqvl-tdx_quote_collateral.json":
		fx.kind, fx.ca, fx.fmspc = dcap.TDX, dcap.PlatformCA, [6]byte{0xb0, 0xc0, 0x6f, 0x00, 0x00, 0x00}
	default:
		t.Fatalf("unknown sample %s", name)
	}
	fx.want = dcap.Collateral{
		PCKCRL:                unhex("pck_crl"),
		PCKCRLIssuerChain:     []byte(fx.f["pck_crl_issuer_chain"]),
		RootCACRL:             unhex("root_ca_crl"),
		TCBInfo:               []byte(`{"tcbInfo":` + fx.f["tcb_info"] + `,"signature":"` + fx.f["tcb_info_signature"] + `"}`),
		TCBInfoIssuerChain:    []byte(fx.f["tcb_info_issuer_chain"]),
		QEIdentity:            []byte(`{"enclaveIdentity":` + fx.f["qe_identity"] + `,"signature":"` + fx.f["qe_identity_signature"] + `"}`),
		QEIdentityIssuerChain: []byte(fx.f["qe_identity_issuer_chain"]),
	}
	return fx
}

func (fx *qvlFixture) collateral(ctx context.Context, f *Fetcher) (*dcap.Collateral, error) {
	return f.Collateral(ctx, fx.kind, fx.fmspc, fx.ca)
}

func checkCollateral(t *testing.T, what string, got *dcap.Collateral, err error, want *dcap.Collateral) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, p := range []struct {
		name      string
		got, want []byte
	}{
		{"PCKCRL", got.PCKCRL, want.PCKCRL},
		{"PCKCRLIssuerChain", got.PCKCRLIssuerChain, want.PCKCRLIssuerChain},
		{"RootCACRL", got.RootCACRL, want.RootCACRL},
		{"TCBInfo", got.TCBInfo, want.TCBInfo},
		{"TCBInfoIssuerChain", got.TCBInfoIssuerChain, want.TCBInfoIssuerChain},
		{"QEIdentity", got.QEIdentity, want.QEIdentity},
		{"QEIdentityIssuerChain", got.QEIdentityIssuerChain, want.QEIdentityIssuerChain},
	} {
		if len(p.want) == 0 || !bytes.Equal(p.got, p.want) {
			t.Errorf("%s: %s differs (%d bytes, want %d)", what, p.name, len(p.got), len(p.want))
		}
	}
}

// intelEncode URL-encodes a header value as Intel does (spaces as %20).
func intelEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// pcsAnswer is one answer of the fake PCS.
type pcsAnswer struct {
	body   []byte
	header map[string]string // sent URL-encoded
}

// fakePCS answers by path and query; 404 for anything else.
type fakePCS struct {
	mu      sync.Mutex
	answers map[string]pcsAnswer
	down    bool
}

func (p *fakePCS) set(key string, a pcsAnswer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[key] = a
}

func (p *fakePCS) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

func (p *fakePCS) handler(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Path
	if r.URL.RawQuery != "" {
		key += "?" + r.URL.RawQuery
	}
	p.mu.Lock()
	a, ok := p.answers[key]
	down := p.down
	p.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, intelEncode(v))
	}
	w.Write(a.body)
}

// pcsFor serves fx as Intel PCS v4 and certificates.trustedservices.intel.com do.
func pcsFor(fx *qvlFixture) *fakePCS {
	tee := string(fx.kind)
	return &fakePCS{answers: map[string]pcsAnswer{
		"/" + tee + "/certification/v4/tcb?fmspc=" + strings.ToUpper(hex.EncodeToString(fx.fmspc[:])): {
			fx.want.TCBInfo, map[string]string{"TCB-Info-Issuer-Chain": fx.f["tcb_info_issuer_chain"]}},
		"/" + tee + "/certification/v4/qe/identity": {
			fx.want.QEIdentity, map[string]string{"SGX-Enclave-Identity-Issuer-Chain": fx.f["qe_identity_issuer_chain"]}},
		"/sgx/certification/v4/pckcrl?ca=" + string(fx.ca) + "&encoding=der": {
			fx.want.PCKCRL, map[string]string{"SGX-PCK-CRL-Issuer-Chain": fx.f["pck_crl_issuer_chain"]}},
		"/IntelSGXRootCA.der": {fx.want.RootCACRL, nil},
	}}
}

// onlineIntel returns a Fetcher whose Intel PCS and certificates host are
// the fake server.
func onlineIntel(t *testing.T, clock *fakeClock, srv *server, opts Options) *Fetcher {
	t.Helper()
	opts.Client = srv.Client()
	opts.Hosts = map[string]string{hostPCS: srv.URL, hostIntelCerts: srv.URL}
	opts.Now, opts.Sleep = clock.Now, clock.Sleep
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.wall = clock.Now // rate limits on the fake clock too
	return f
}

func TestIntelURLs(t *testing.T) {
	fmspc := [6]byte{0x00, 0xa0, 0x67, 0x11, 0x00, 0x00}
	for _, tc := range []struct {
		got, want string
		kind      kind
	}{
		{tcbInfoURL(dcap.SGX, fmspc), "https://api.trustedservices.intel.com/sgx/certification/v4/tcb?fmspc=00A067110000", kindTCBInfo},
		{tcbInfoURL(dcap.TDX, fmspc), "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=00A067110000", kindTCBInfo},
		{qeIdentityURL(dcap.SGX), "https://api.trustedservices.intel.com/sgx/certification/v4/qe/identity", kindQEIdentity},
		{qeIdentityURL(dcap.TDX), "https://api.trustedservices.intel.com/tdx/certification/v4/qe/identity", kindQEIdentity},
		{pckCRLURL(dcap.ProcessorCA), "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der", kindPCKCRL},
		{pckCRLURL(dcap.PlatformCA), "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&encoding=der", kindPCKCRL},
		{rootCACRLURL, "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der", kindRootCACRL},
	} {
		if tc.got != tc.want {
			t.Errorf("URL %s, want %s", tc.got, tc.want)
		}
		if k, err := classify(tc.want); err != nil || k != tc.kind {
			t.Errorf("classify(%s) = %v, %v; want %v", tc.want, k, err, tc.kind)
		}
	}
	for _, u := range []string{
		"https://api.trustedservices.intel.com/sgx/certification/v4/tcb?fmspc=00a067110000", // not Intel's upper case
		"https://api.trustedservices.intel.com/sgx/certification/v4/tcb?fmspc=00A0671100",
		"https://api.trustedservices.intel.com/sgx/certification/v4/tcb?fmspc=00A06711000G",
		"https://api.trustedservices.intel.com/sgx/certification/v4/tcb?fmspc=00A067110000&update=early",
		"https://api.trustedservices.intel.com/sgx/certification/v3/tcb?fmspc=00A067110000",
		"https://api.trustedservices.intel.com/sev/certification/v4/tcb?fmspc=00A067110000",
		"https://api.trustedservices.intel.com/sgx/certification/v4/qe/identity?update=early",
		"https://api.trustedservices.intel.com/sgx/certification/v4/qve/identity",
		"https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform",
		"https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?encoding=der&ca=platform",
		"https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=other&encoding=der",
		"https://api.trustedservices.intel.com/tdx/certification/v4/pckcrl?ca=platform&encoding=der",
		"https://api.trustedservices.intel.com:443/sgx/certification/v4/qe/identity",
		"http://api.trustedservices.intel.com/sgx/certification/v4/qe/identity",
		"https://api.trustedservices.intel.com/sgx/certification/v4/qe/identity#x",
		"https://certificates.trustedservices.intel.com/IntelSGXRootCA.der?x=1",
		"https://certificates.trustedservices.intel.com/IntelSGXRootCA.cer",
		"https://certificates.trustedservices.intel.com/IntelSGXPCKProcessor.crl",
		"https://api.trustedservices.intel.com/vcek/v1/Milan/crl",
		"https://kdsintf.amd.com/sgx/certification/v4/qe/identity",
	} {
		if _, err := classify(u); !errors.Is(err, ErrRefused) {
			t.Errorf("classify(%s) = %v, want ErrRefused", u, err)
		}
	}
}

func TestQVLImport(t *testing.T) {
	for _, name := range []string{"dcapqvl-sgx_quote_collateral.json", "dcapqvl-tdx_quote_collateral.json"} {
		t.Run(name, func(t *testing.T) {
			fx := loadQVL(t, name)
			ctx := context.Background()
			at := func() time.Time { return intelAt }

			// Import into an offline Fetcher with a cache directory.
			dir := t.TempDir()
			f, err := New(Options{Dir: dir, Now: at})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := f.Import(bytes.NewReader(fx.raw)); n != 4 || err != nil {
				t.Fatalf("Import = %d, %v; want 4 entries", n, err)
			}
			got, err := fx.collateral(ctx, f)
			checkCollateral(t, "after Import", got, err, &fx.want)
			got.TCBInfo[0] ^= 0xff // the caller owns its copy
			again, err := fx.collateral(ctx, f)
			checkCollateral(t, "second call", again, err, &fx.want)

			// As Options.Bundles (trustbound verify --collateral FILE), and
			// from the cache directory the Import wrote.
			path := filepath.Join(t.TempDir(), "collateral.json")
			if err := os.WriteFile(path, fx.raw, 0o600); err != nil {
				t.Fatal(err)
			}
			fb, err := New(Options{Bundles: []string{path}, Now: at})
			if err != nil {
				t.Fatal(err)
			}
			got, err = fx.collateral(ctx, fb)
			checkCollateral(t, "as a bundle file", got, err, &fx.want)
			fd, err := New(Options{Dir: dir, Now: at})
			if err != nil {
				t.Fatal(err)
			}
			got, err = fx.collateral(ctx, fd)
			checkCollateral(t, "from the cache directory", got, err, &fx.want)

			// In a bundle directory.
			bdir := t.TempDir()
			writeDirFixture(t, bdir, map[string][]byte{"intel/" + name: fx.raw})
			fdir, err := New(Options{Bundles: []string{bdir}, Now: at})
			if err != nil {
				t.Fatal(err)
			}
			got, err = fx.collateral(ctx, fdir)
			checkCollateral(t, "in a bundle directory", got, err, &fx.want)

			// Exported as bundle version 2, headers included, and back.
			var buf bytes.Buffer
			if err := f.Export(&buf); err != nil {
				t.Fatal(err)
			}
			var doc bundleDoc
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.Version != 2 || len(doc.Entries) != 4 {
				t.Fatalf("exported %d entries, version %d, %v; want 4, version 2", len(doc.Entries), doc.Version, err)
			}
			f2, err := New(Options{Now: at})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := f2.Import(&buf); n != 4 || err != nil {
				t.Fatalf("Import of the export = %d, %v", n, err)
			}
			got, err = fx.collateral(ctx, f2)
			checkCollateral(t, "after a bundle v2 round trip", got, err, &fx.want)

			// Other platforms are not in it.
			other := fx.fmspc
			other[5] ^= 1
			if _, err := f.Collateral(ctx, fx.kind, other, fx.ca); !errors.Is(err, ErrNotFound) || !errors.Is(err, dcap.ErrCollateral) {
				t.Fatalf("another FMSPC: %v, want ErrNotFound and dcap.ErrCollateral", err)
			}

			// Today (the package clock, 2026-03-01) it is stale: refused,
			// with the stale copies only through StaleError.
			fnow, err := New(Options{Bundles: []string{path}, Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = fx.collateral(ctx, fnow)
			var se *StaleError
			if !errors.Is(err, dcap.ErrCollateral) || !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) {
				t.Fatalf("in 2026: %v; want dcap.ErrCollateral and a StaleError", err)
			}
		})
	}
}

// qvlVariant rewrites one field of a dcap-qvl sample.
func qvlVariant(t *testing.T, fx *qvlFixture, edit func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{}
	for k, v := range fx.f {
		m[k] = v
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestQVLStrict(t *testing.T) {
	sgx := loadQVL(t, "dcapqvl-sgx_quote_collateral.json")
	tdx := loadQVL(t, "dcapqvl-tdx_quote_collateral.json")
	base, err := parseQVL(sgx.raw)
	if err != nil {
		t.Fatal(err)
	}

	// Accepted variants: bytes as JSON arrays; upper-case hex; newer
	// dcap-qvl's pck_certificate_chain.
	asArray := func(h string) []int {
		b, _ := hex.DecodeString(h)
		a := make([]int, len(b))
		for i, c := range b {
			a[i] = int(c)
		}
		return a
	}
	for name, data := range map[string][]byte{
		"byte arrays": qvlVariant(t, sgx, func(m map[string]any) {
			for _, k := range []string{"pck_crl", "root_ca_crl", "tcb_info_signature", "qe_identity_signature"} {
				m[k] = asArray(sgx.f[k])
			}
		}),
		"upper-case hex": qvlVariant(t, sgx, func(m map[string]any) {
			m["tcb_info_signature"] = strings.ToUpper(sgx.f["tcb_info_signature"])
			m["pck_crl"] = strings.ToUpper(sgx.f["pck_crl"])
		}),
		"pck_certificate_chain": qvlVariant(t, sgx, func(m map[string]any) { m["pck_certificate_chain"] = sgx.f["pck_crl_issuer_chain"] }),
	} {
		es, err := parseQVL(data)
		if err != nil || len(es) != len(base) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for i := range es {
			if es[i].url != base[i].url || !bytes.Equal(es[i].body, base[i].body) || es[i].headers[hdrTCBInfoChain] != base[i].headers[hdrTCBInfoChain] {
				t.Errorf("%s: entry %s differs from the sample's", name, es[i].url)
			}
		}
	}

	// Refused: each with ErrMalformed, through Import as well.
	for name, data := range map[string][]byte{
		"unknown key":       qvlVariant(t, sgx, func(m map[string]any) { m["extra"] = "x" }),
		"missing pck_crl":   qvlVariant(t, sgx, func(m map[string]any) { delete(m, "pck_crl") }),
		"empty chain":       qvlVariant(t, sgx, func(m map[string]any) { m["tcb_info_issuer_chain"] = "" }),
		"chain not PEM":     qvlVariant(t, sgx, func(m map[string]any) { m["qe_identity_issuer_chain"] = "MIIC" }),
		"bad hex":           qvlVariant(t, sgx, func(m map[string]any) { m["root_ca_crl"] = "zz" }),
		"byte out of range": qvlVariant(t, sgx, func(m map[string]any) { m["tcb_info_signature"] = []int{1, 256} }),
		"tcb_info id": qvlVariant(t, sgx, func(m map[string]any) {
			m["tcb_info"] = strings.Replace(sgx.f["tcb_info"], `"id":"SGX"`, `"id":"SEV"`, 1)
		}),
		"tcb_info fmspc": qvlVariant(t, sgx, func(m map[string]any) {
			m["tcb_info"] = strings.Replace(sgx.f["tcb_info"], `"00A067110000"`, `"00A0671100"`, 1)
		}),
		"tcb_info nextUpdate": qvlVariant(t, sgx, func(m map[string]any) {
			m["tcb_info"] = strings.Replace(sgx.f["tcb_info"], `"nextUpdate":"2025-`, `"nextUpdate":"soon-`, 1)
		}),
		"tcb_info spaces":     qvlVariant(t, sgx, func(m map[string]any) { m["tcb_info"] = " " + sgx.f["tcb_info"] }),
		"tcb_info trailing":   qvlVariant(t, sgx, func(m map[string]any) { m["tcb_info"] = sgx.f["tcb_info"] + "{}" }),
		"tcb_info array":      qvlVariant(t, sgx, func(m map[string]any) { m["tcb_info"] = "[" + sgx.f["tcb_info"] + "]" }),
		"TD_QE for SGX":       qvlVariant(t, sgx, func(m map[string]any) { m["qe_identity"] = tdx.f["qe_identity"] }),
		"QE for TDX":          qvlVariant(t, tdx, func(m map[string]any) { m["qe_identity"] = sgx.f["qe_identity"] }),
		"root CRL as PCK CRL": qvlVariant(t, sgx, func(m map[string]any) { m["pck_crl"] = sgx.f["root_ca_crl"] }),
		"PCK CRL as root CRL": qvlVariant(t, sgx, func(m map[string]any) { m["root_ca_crl"] = sgx.f["pck_crl"] }),
		"trailing data":       append(bytes.Clone(sgx.raw), []byte("{}")...),
		"not an object":       []byte(`["tcb_info"]`),
	} {
		if _, err := parseQVL(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: parseQVL: %v, want ErrMalformed", name, err)
		}
		f, err := New(Options{Now: func() time.Time { return intelAt }})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := f.Import(bytes.NewReader(data)); n != 0 || err == nil {
			t.Errorf("%s: Import = %d, %v; want nothing and an error", name, n, err)
		}
	}
}

func TestIntelFetch(t *testing.T) {
	for _, name := range []string{"dcapqvl-sgx_quote_collateral.json", "dcapqvl-tdx_quote_collateral.json"} {
		t.Run(name, func(t *testing.T) {
			fx := loadQVL(t, name)
			clock := &fakeClock{t: intelAt}
			pcs := pcsFor(fx)
			srv := newServer(t, pcs.handler)
			dir := t.TempDir()
			ctx := context.Background()
			f := onlineIntel(t, clock, srv, Options{Dir: dir})
			got, err := fx.collateral(ctx, f)
			checkCollateral(t, "fetched", got, err, &fx.want)
			if n := srv.total(); n != 4 {
				t.Fatalf("%d requests, want 4", n)
			}
			for i := range 4 {
				if ua := srv.request(i).Header.Get("User-Agent"); ua != "trustbound-collateral/1" {
					t.Errorf("request %d: User-Agent %q", i, ua)
				}
			}
			// Cache hit: no request.
			got, err = fx.collateral(ctx, f)
			checkCollateral(t, "cached", got, err, &fx.want)
			if n := srv.total(); n != 4 {
				t.Fatalf("%d requests after a cache hit, want 4", n)
			}
			// Headers round trip through the cache directory (version 2
			// files for the entries that have them).
			off, err := New(Options{Dir: dir, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			got, err = fx.collateral(ctx, off)
			checkCollateral(t, "from the cache directory", got, err, &fx.want)
			data, err := os.ReadFile(filepath.Join(dir, cacheName(tcbInfoURL(fx.kind, fx.fmspc))))
			if err != nil || !bytes.Contains(data, []byte(`"version":2`)) || !bytes.Contains(data, []byte(`"headers":{"TCB-Info-Issuer-Chain":"-----BEGIN CERTIFICATE-----\n`)) {
				t.Fatalf("TCB info cache file (%v): %.200s", err, data)
			}
			data, err = os.ReadFile(filepath.Join(dir, cacheName(rootCACRLURL)))
			if err != nil || !bytes.Contains(data, []byte(`"version":1`)) || bytes.Contains(data, []byte(`"headers"`)) {
				t.Fatalf("root CA CRL cache file (%v): %.200s", err, data)
			}
			// And through bundle version 2.
			var buf bytes.Buffer
			if err := f.Export(&buf); err != nil {
				t.Fatal(err)
			}
			f2, err := New(Options{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := f2.Import(&buf); n != 4 || err != nil {
				t.Fatalf("Import = %d, %v", n, err)
			}
			got, err = fx.collateral(ctx, f2)
			checkCollateral(t, "through bundle v2", got, err, &fx.want)
		})
	}
}

func TestIntelCoalescing(t *testing.T) {
	fx := loadQVL(t, "dcapqvl-sgx_quote_collateral.json")
	pcs := pcsFor(fx)
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		pcs.handler(w, r)
	})
	f := onlineIntel(t, &fakeClock{t: intelAt}, srv, Options{Rate: 1000, Burst: 100})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := fx.collateral(context.Background(), f)
			errs <- err
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.total(); n != 4 {
		t.Fatalf("%d requests for 10 concurrent calls, want 4", n)
	}
}

// tcbInfoBody is a synthetic, unsigned TCB info served by PCS's form.
func tcbInfoBody(id, fmspc string, next time.Time) []byte {
	return []byte(fmt.Sprintf(`{"tcbInfo":{"id":%q,"version":3,"issueDate":"2025-07-01T00:00:00Z","nextUpdate":%q,"fmspc":%q,"tcbLevels":[]},"signature":"00ff"}`,
		id, next.UTC().Format(time.RFC3339), fmspc))
}

func TestIntelStaleRefetch(t *testing.T) {
	fx := loadQVL(t, "dcapqvl-sgx_quote_collateral.json")
	clock := &fakeClock{t: intelAt}
	pcs := pcsFor(fx)
	key := "/sgx/certification/v4/tcb?fmspc=00A067110000"
	chain := map[string]string{"TCB-Info-Issuer-Chain": fx.f["tcb_info_issuer_chain"]}
	tcb1 := tcbInfoBody("SGX", "00A067110000", intelAt.Add(time.Hour))
	tcb2 := tcbInfoBody("SGX", "00A067110000", intelAt.Add(2*time.Hour))
	pcs.set(key, pcsAnswer{tcb1, chain})
	srv := newServer(t, pcs.handler)
	f := onlineIntel(t, clock, srv, Options{Dir: t.TempDir()})
	ctx := context.Background()
	tcbURL := tcbInfoURL(dcap.SGX, fx.fmspc)

	got, err := fx.collateral(ctx, f)
	if err != nil || !bytes.Equal(got.TCBInfo, tcb1) {
		t.Fatalf("first: %v", err)
	}
	clock.Advance(59 * time.Minute)
	if got, err := f.Get(ctx, tcbURL); err != nil || !bytes.Equal(got, tcb1) || srv.count("/sgx/certification/v4/tcb") != 1 {
		t.Fatalf("before nextUpdate: %v, %d requests", err, srv.count("/sgx/certification/v4/tcb"))
	}
	pcs.set(key, pcsAnswer{tcb2, chain})
	clock.Advance(time.Minute) // exactly nextUpdate: stale
	got, err = fx.collateral(ctx, f)
	if err != nil || !bytes.Equal(got.TCBInfo, tcb2) || srv.count("/sgx/certification/v4/tcb") != 2 {
		t.Fatalf("at nextUpdate: %v, %d requests; want the new TCB info", err, srv.count("/sgx/certification/v4/tcb"))
	}

	// Stale again and PCS is down: refused; the stale copy, with its
	// issuer chain, only through StaleError.
	pcs.setDown(true)
	clock.Advance(2 * time.Hour)
	_, err = fx.collateral(ctx, f)
	var se *StaleError
	if !errors.Is(err, dcap.ErrCollateral) || !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) {
		t.Fatalf("stale, PCS down: %v; want dcap.ErrCollateral and a StaleError", err)
	}
	if stale := kept(f, tcbURL); se.URL != tcbURL || !bytes.Equal(stale.body, tcb2) || stale.headers[hdrTCBInfoChain] != fx.f["tcb_info_issuer_chain"] || !se.Expired.Equal(intelAt.Add(2*time.Hour)) {
		t.Fatalf("StaleError %s expired %v; stale copy kept: %d body bytes, headers %d", se.URL, se.Expired, len(stale.body), len(stale.headers))
	}
}

func TestIntelAnswersChecked(t *testing.T) {
	fx := loadQVL(t, "dcapqvl-sgx_quote_collateral.json")
	key := "/sgx/certification/v4/tcb?fmspc=00A067110000"
	tcbURL := tcbInfoURL(dcap.SGX, fx.fmspc)
	chain := fx.f["tcb_info_issuer_chain"]
	for name, a := range map[string]pcsAnswer{
		"no issuer chain":   {fx.want.TCBInfo, nil},
		"chain not PEM":     {fx.want.TCBInfo, map[string]string{"TCB-Info-Issuer-Chain": "not a chain"}},
		"other FMSPC":       {tcbInfoBody("SGX", "00906ED50000", intelAt.Add(time.Hour)), map[string]string{"TCB-Info-Issuer-Chain": chain}},
		"TDX TCB info":      {tcbInfoBody("TDX", "00A067110000", intelAt.Add(time.Hour)), map[string]string{"TCB-Info-Issuer-Chain": chain}},
		"QE identity":       {fx.want.QEIdentity, map[string]string{"TCB-Info-Issuer-Chain": chain}},
		"no signature":      {[]byte(`{"tcbInfo":{"id":"SGX","fmspc":"00A067110000","nextUpdate":"2026-01-01T00:00:00Z"}}`), map[string]string{"TCB-Info-Issuer-Chain": chain}},
		"extra member":      {[]byte(`{"tcbInfo":{"id":"SGX","fmspc":"00A067110000","nextUpdate":"2026-01-01T00:00:00Z"},"signature":"00","x":1}`), map[string]string{"TCB-Info-Issuer-Chain": chain}},
		"trailing data":     {append(bytes.Clone(fx.want.TCBInfo), '{'), map[string]string{"TCB-Info-Issuer-Chain": chain}},
		"signature not hex": {bytes.Replace(fx.want.TCBInfo, []byte(`"signature":"9a`), []byte(`"signature":"zz`), 1), map[string]string{"TCB-Info-Issuer-Chain": chain}},
	} {
		pcs := pcsFor(fx)
		pcs.set(key, a)
		srv := newServer(t, pcs.handler)
		f := onlineIntel(t, &fakeClock{t: intelAt}, srv, Options{})
		if _, err := f.Get(context.Background(), tcbURL); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrUnavailable (malformed answer)", name, err)
		}
		if f.cached(tcbURL, intelAt) != nil {
			t.Errorf("%s: cached", name)
		}
	}

	// PCS v3's header name is kept under its own name and still used.
	pcs := pcsFor(fx)
	pcs.set(key, pcsAnswer{fx.want.TCBInfo, map[string]string{"SGX-TCB-Info-Issuer-Chain": chain}})
	f := onlineIntel(t, &fakeClock{t: intelAt}, newServer(t, pcs.handler), Options{})
	got, err := fx.collateral(context.Background(), f)
	checkCollateral(t, "v3 header name", got, err, &fx.want)
	if e := f.cached(tcbURL, intelAt); e == nil || e.headers[hdrTCBInfoChainV3] != chain || len(e.headers) != 1 {
		t.Fatalf("headers kept: %v", e)
	}
}

func TestIntelNotFound(t *testing.T) {
	fx := loadQVL(t, "dcapqvl-tdx_quote_collateral.json")
	srv := newServer(t, (&fakePCS{answers: map[string]pcsAnswer{}}).handler)
	f := onlineIntel(t, &fakeClock{t: intelAt}, srv, Options{})
	_, err := fx.collateral(context.Background(), f)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, dcap.ErrCollateral) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("404: %v, want ErrNotFound and dcap.ErrCollateral", err)
	}
	if n := srv.total(); n != 4 {
		t.Fatalf("%d requests, want 4 (no retries on 404)", n)
	}
	for _, tc := range []struct {
		kind dcap.Kind
		ca   dcap.CA
	}{{"sev", dcap.ProcessorCA}, {dcap.SGX, "intermediate"}} {
		if _, err := f.Collateral(context.Background(), tc.kind, fx.fmspc, tc.ca); !errors.Is(err, ErrRefused) || !errors.Is(err, dcap.ErrCollateral) {
			t.Errorf("Collateral(%q, %q): %v, want ErrRefused", tc.kind, tc.ca, err)
		}
	}
}

func TestPCCS(t *testing.T) {
	fx := loadQVL(t, "dcapqvl-tdx_quote_collateral.json")
	pcs := pcsFor(fx)
	// A PCCS serves the root CA CRL at …/rootcacrl, as hex.
	pcs.set("/sgx/certification/v4/rootcacrl", pcsAnswer{[]byte(fx.f["root_ca_crl"]), nil})
	pcs.set("/IntelSGXRootCA.der", pcsAnswer{}) // must not be asked
	tls := newTLSServer(t, pcs.handler)
	clock := &fakeClock{t: intelAt}
	f, err := New(Options{PCCS: tls.URL + "/sgx/certification/v4/", Client: tls.Client(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := fx.collateral(ctx, f)
	checkCollateral(t, "from the PCCS", got, err, &fx.want)
	paths := map[string]bool{}
	for i := range tls.total() {
		r := tls.request(i)
		paths[r.URL.Path+"?"+r.URL.RawQuery] = true
	}
	for _, p := range []string{
		"/tdx/certification/v4/tcb?fmspc=B0C06F000000",
		"/tdx/certification/v4/qe/identity?",
		"/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
		"/sgx/certification/v4/rootcacrl?",
	} {
		if !paths[p] {
			t.Errorf("the PCCS was not asked %s (asked %v)", p, paths)
		}
	}
	if len(paths) != 4 {
		t.Errorf("the PCCS was asked %v, want 4 paths", paths)
	}
	// The PCCS's own URLs name the same entries.
	for pccsURL, want := range map[string][]byte{
		tls.URL + "/tdx/certification/v4/tcb?fmspc=B0C06F000000": fx.want.TCBInfo,
		tls.URL + "/sgx/certification/v4/rootcacrl":              fx.want.RootCACRL,
	} {
		if b, err := f.Get(ctx, pccsURL); err != nil || !bytes.Equal(b, want) {
			t.Errorf("Get(%s): %v", pccsURL, err)
		}
	}
	if _, err := f.Get(ctx, tls.URL+"/sgx/certification/v4/pckcerts"); !errors.Is(err, ErrRefused) {
		t.Errorf("another PCCS path: %v, want ErrRefused", err)
	}
	if n := tls.total(); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}

	for _, bad := range []string{
		"http://pccs.example:8081/sgx/certification/v4/",
		"https://pccs.example:8081/sgx/certification/v3/",
		"https://pccs.example:8081/sgx/certification/v4/?x=1",
		"https://user@pccs.example:8081/",
		"pccs.example:8081",
	} {
		if _, err := New(Options{PCCS: bad}); err == nil {
			t.Errorf("New accepted PCCS %q", bad)
		}
	}
	for in, want := range map[string]string{
		"https://pccs.example:8081/sgx/certification/v4/": "https://pccs.example:8081",
		"https://pccs.example:8081/tdx/certification/v4":  "https://pccs.example:8081",
		"https://pccs.example:8081":                       "https://pccs.example:8081",
		"https://proxy.example/pccs/sgx/certification/v4": "https://proxy.example/pccs",
	} {
		if base, _, err := parsePCCS(in); err != nil || base != want {
			t.Errorf("parsePCCS(%s) = %s, %v; want %s", in, base, err, want)
		}
	}
}

func TestBundleVersions(t *testing.T) {
	// Version 1 bundles (AMD only) still read, and AMD-only exports stay
	// version 1 so that older readers take them.
	golden, err := os.ReadFile("testdata/milan-bundle.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(golden, []byte(`"version": 1`)) {
		t.Fatal("the golden bundle is not version 1")
	}
	es, err := readBundle(bytes.NewReader(golden))
	if err != nil || len(es) == 0 {
		t.Fatalf("version 1 bundle: %d entries, %v", len(es), err)
	}
	var buf bytes.Buffer
	if err := writeBundle(&buf, es); err != nil || !bytes.Equal(buf.Bytes(), golden) {
		t.Fatalf("an AMD-only bundle is not written as the version 1 golden file (%v)", err)
	}

	// Version 2: Intel entries need their chain header, others have none.
	fx := loadQVL(t, "dcapqvl-sgx_quote_collateral.json")
	intel, err := parseQVL(fx.raw)
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := writeBundle(&buf, append(intel, es...)); err != nil {
		t.Fatal(err)
	}
	v2 := buf.String()
	if !strings.Contains(v2, `"version": 2`) {
		t.Fatal("a bundle with headers is not version 2")
	}
	if es2, err := readBundle(strings.NewReader(v2)); err != nil || len(es2) != len(intel)+len(es) {
		t.Fatalf("version 2 bundle: %v", err)
	}
	for name, doc := range map[string]string{
		"version 1 with headers": strings.Replace(v2, `"version": 2`, `"version": 1`, 1),
		"header dropped":         strings.Replace(v2, `"SGX-PCK-CRL-Issuer-Chain"`, `"X-Other"`, 1),
		"header not PEM":         strings.Replace(v2, `"SGX-PCK-CRL-Issuer-Chain": "-----BEGIN CERTIFICATE-----\n`, `"SGX-PCK-CRL-Issuer-Chain": "-----BEGIN CERTIFICATE-----\n!`, 1),
	} {
		if _, err := readBundle(strings.NewReader(doc)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestIntelExpiry(t *testing.T) {
	fx := loadQVL(t, "dcapqvl-sgx_quote_collateral.json")
	es, err := parseQVL(fx.raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		tcbInfoURL(dcap.SGX, fx.fmspc): time.Date(2025, 7, 19, 10, 56, 11, 0, time.UTC),
		qeIdentityURL(dcap.SGX):        time.Date(2025, 7, 19, 10, 1, 18, 0, time.UTC),
		pckCRLURL(dcap.ProcessorCA):    time.Date(2025, 7, 19, 10, 23, 18, 0, time.UTC),
		rootCACRLURL:                   time.Date(2026, 4, 3, 11, 21, 57, 0, time.UTC),
	}
	for _, e := range es {
		if w, ok := want[e.url]; !ok || !e.expiresAt.Equal(w) {
			t.Errorf("%s expires %v, want %v", e.url, e.expiresAt, w)
		}
	}
	// A chain that ends first ends the entry.
	end := intelAt.Add(time.Hour)
	e := newEntryHeaders(tcbInfoURL(dcap.SGX, fx.fmspc), fx.want.TCBInfo, map[string]string{hdrTCBInfoChain: shortChain(t, end)}, intelAt)
	if !e.expiresAt.Equal(end) {
		t.Errorf("with a chain ending first: %v, want %v", e.expiresAt, end)
	}
}

// shortChain is a PEM self-signed certificate valid until end.
func shortChain(t *testing.T, end time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Intel SGX TCB Signing"}, NotBefore: end.Add(-time.Hour), NotAfter: end}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// BenchmarkCollateralWarm is the cost a DCAP verification pays for its
// collateral once it is cached: four lookups and copies.
func BenchmarkCollateralWarm(b *testing.B) {
	fx := loadQVL(b, "dcapqvl-tdx_quote_collateral.json")
	f, err := New(Options{Now: func() time.Time { return intelAt }})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Import(bytes.NewReader(fx.raw)); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.collateral(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIntelInvalidateCollateral: the verifiers' dcap.Invalidator drops the
// four pieces of a platform's collateral from memory and the cache
// directory, so the next Collateral asks the PCS again.
func TestIntelInvalidateCollateral(t *testing.T) {
	fx := loadQVL(t, "dcapqvl-tdx_quote_collateral.json")
	clock := &fakeClock{t: intelAt}
	srv := newServer(t, pcsFor(fx).handler)
	dir := t.TempDir()
	ctx := context.Background()
	f := onlineIntel(t, clock, srv, Options{Dir: dir})
	got, err := fx.collateral(ctx, f)
	checkCollateral(t, "fetched", got, err, &fx.want)
	urls := []string{pckCRLURL(fx.ca), rootCACRLURL, tcbInfoURL(fx.kind, fx.fmspc), qeIdentityURL(fx.kind)}
	for _, u := range urls {
		if _, err := os.Stat(filepath.Join(dir, cacheName(u))); err != nil {
			t.Fatalf("cache file of %s: %v", u, err)
		}
	}
	// Another platform's collateral is not this one's: nothing dropped.
	var src dcap.Source = f
	inv, ok := src.(dcap.Invalidator)
	if !ok {
		t.Fatal("a Fetcher is no dcap.Invalidator")
	}
	inv.InvalidateCollateral("sev", fx.fmspc, fx.ca)
	if got, err = fx.collateral(ctx, f); err != nil || srv.total() != 4 {
		t.Fatalf("after a no-op invalidation: %v, %d requests, want 4", err, srv.total())
	}
	inv.InvalidateCollateral(fx.kind, fx.fmspc, fx.ca)
	for _, u := range urls {
		if _, err := os.Stat(filepath.Join(dir, cacheName(u))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cache file of %s after InvalidateCollateral: %v", u, err)
		}
		if e := kept(f, u); e.body != nil {
			t.Errorf("%s still in memory after InvalidateCollateral", u)
		}
	}
	got, err = fx.collateral(ctx, f)
	checkCollateral(t, "refetched", got, err, &fx.want)
	if n := srv.total(); n != 8 {
		t.Fatalf("%d requests after InvalidateCollateral, want 8 (all four refetched)", n)
	}
}
