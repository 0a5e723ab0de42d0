package collateral

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

// t0 is the fake clock's start: the real VCEK is valid then.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is Options.Now and Options.Sleep: sleeping advances it.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// server is a fake vendor service on loopback that counts requests by path.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
	reqs []*http.Request
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	return startServer(t, h, httptest.NewServer)
}

// newTLSServer is newServer over https (a PCCS is https only).
func newTLSServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	return startServer(t, h, httptest.NewTLSServer)
}

// startServer starts h with start (httptest.NewServer or NewTLSServer),
// counting and recording the requests, and closes it when t ends.
func startServer(t *testing.T, h http.HandlerFunc, start func(http.Handler) *httptest.Server) *server {
	t.Helper()
	s := &server{hits: map[string]int{}}
	s.Server = start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.reqs = append(s.reqs, r)
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *server) request(i int) *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[i]
}

func (s *server) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, h := range s.hits {
		n += h
	}
	return n
}

// serveBodies answers the bodies by path, and 404 for anything else.
func serveBodies(bodies map[string][]byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}
}

// fixtures are real AMD collateral (a Milan VCEK from go-sev-guest's test
// data, the Milan ASK/ARK go-sev-guest embeds) and a fake ARK for CRLs.
type fixtures struct {
	vcek, chain         []byte
	vcekURL, chainURL   string
	crlURL, vlekCRLURL  string
	hwid                []byte
	tcb                 kds.TCBVersion
	ark                 *x509.Certificate
	arkKey              crypto.Signer
	vcekPath, chainPath string
}

func loadFixtures(t *testing.T) *fixtures {
	t.Helper()
	vcek, err := os.ReadFile("testdata/gosevguest-milan-vcek.der")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(vcek)
	if err != nil {
		t.Fatal(err)
	}
	exts, err := kds.VcekCertificateExtensions(cert)
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixtures{
		vcek:       vcek,
		chain:      trust.AskArkMilanVcekBytes,
		hwid:       exts.HWID,
		tcb:        exts.TCBVersion,
		vcekURL:    kds.VCEKCertURL("Milan", exts.HWID, exts.TCBVersion),
		chainURL:   kds.ProductCertChainURL(abi.VcekReportSigner, "Milan"),
		crlURL:     kds.CrlLinkByKey("Milan", abi.VcekReportSigner),
		vlekCRLURL: kds.CrlLinkByKey("Milan", abi.VlekReportSigner),
	}
	fx.vcekPath = "/vcek/v1/Milan/" + hex.EncodeToString(exts.HWID)
	fx.chainPath = "/vcek/v1/Milan/cert_chain"
	fx.ark, fx.arkKey = newCA(t, "ARK-Milan")
	return fx
}

func newCA(t *testing.T, cn string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(20 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// crl returns a DER CRL of the fake ARK valid from this until next.
func (fx *fixtures) crl(t *testing.T, number int64, this, next time.Time) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: this, NextUpdate: next,
	}, fx.ark, fx.arkKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// online returns a Fetcher whose KDS (and Azure cache, if azure is not
// nil) are the fake servers, on the fake clock.
func online(t *testing.T, clock *fakeClock, kdsSrv, azure *server, opts Options) *Fetcher {
	t.Helper()
	opts.Client = kdsSrv.Client()
	opts.Hosts = map[string]string{hostKDS: kdsSrv.URL}
	if azure != nil {
		opts.Hosts[hostAzure] = azure.URL
	}
	opts.Now, opts.Sleep = clock.Now, clock.Sleep
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.wall = clock.Now // rate limits on the fake clock too
	return f
}

// kept is the entry f holds in memory for url (an empty one if none): the
// stale copy behind a StaleError.
func kept(f *Fetcher, url string) *entry {
	f.cacheMu.RLock()
	defer f.cacheMu.RUnlock()
	if e := f.mem[url]; e != nil {
		return e
	}
	return &entry{}
}
