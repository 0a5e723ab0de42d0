package collateral

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

func TestFixtureURLs(t *testing.T) {
	fx := loadFixtures(t)
	want := "https://kdsintf.amd.com/vcek/v1/Milan/" + hex.EncodeToString(fx.hwid) + "?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68"
	if fx.vcekURL != want {
		t.Fatalf("VCEK URL %s, want %s", fx.vcekURL, want)
	}
	if !strings.HasPrefix(hex.EncodeToString(fx.hwid), "3ac3fe21") || uint64(fx.tcb) != 0x4405000000000002 {
		t.Fatalf("hwid %x tcb %#x, want 3ac3fe21… and 0x4405000000000002", fx.hwid, uint64(fx.tcb))
	}
}

func TestClassify(t *testing.T) {
	fx := loadFixtures(t)
	for _, tc := range []struct {
		url  string
		want kind
	}{
		{fx.vcekURL, kindVCEK},
		{kds.VLEKCertURL("Genoa", 0x1b000000000000), kindVLEK},
		{fx.chainURL, kindCertChain},
		{kds.ProductCertChainURL(abi.VlekReportSigner, "Turin"), kindCertChain},
		{fx.crlURL, kindCRL},
		{fx.vlekCRLURL, kindCRL},
	} {
		if got, err := classify(tc.url); err != nil || got != tc.want {
			t.Errorf("classify(%s) = %v, %v; want %v", tc.url, got, err, tc.want)
		}
	}
	for _, u := range []string{
		"http://kdsintf.amd.com/vcek/v1/Milan/crl",
		"https://evil.example/vcek/v1/Milan/crl",
		"https://kdsintf.amd.com:8443/vcek/v1/Milan/crl",
		"https://user@kdsintf.amd.com/vcek/v1/Milan/crl",
		"https://kdsintf.amd.com/vcek/v1/Milan/crl#x",
		"https://kdsintf.amd.com/vcek/v1/Milan/crl?x=1",
		"https://kdsintf.amd.com/vcek/v1/Milan/cert_chain?x=1",
		"https://kdsintf.amd.com/vcek/v1/Mi%2Fan/crl",
		"https://kdsintf.amd.com/vcek/v2/Milan/crl",
		"https://kdsintf.amd.com/vcek/v1/Milan/other",
		"https://kdsintf.amd.com/",
		"https://global.acccache.azure.net/SevSnpVM/certificates/00/1?api-version=2020-10-15-preview",
		"https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform",
		strings.Replace(fx.vcekURL, "blSPL", "xSPL", 1),
		"::",
	} {
		if _, err := classify(u); !errors.Is(err, ErrRefused) {
			t.Errorf("classify(%s) = %v, want ErrRefused", u, err)
		}
	}
}

func TestCacheHitAvoidsNetwork(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	srv := newServer(t, serveBodies(map[string][]byte{fx.vcekPath: fx.vcek}))
	f := online(t, clock, srv, nil, Options{})
	for i := 0; i < 3; i++ {
		got, err := f.Get(context.Background(), fx.vcekURL)
		if err != nil || !bytes.Equal(got, fx.vcek) {
			t.Fatalf("Get %d = %d bytes, %v; want the VCEK", i, len(got), err)
		}
		got[0] ^= 0xff // the caller owns its copy
	}
	if n := srv.total(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestPersistenceAcrossFetchers(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	crl := fx.crl(t, 1, t0, t0.Add(24*time.Hour))
	srv := newServer(t, serveBodies(map[string][]byte{fx.vcekPath: fx.vcek, fx.chainPath: fx.chain, "/vcek/v1/Milan/crl": crl}))
	dir := filepath.Join(t.TempDir(), "cache")
	want := map[string][]byte{fx.vcekURL: fx.vcek, fx.chainURL: fx.chain, fx.crlURL: crl}

	f1 := online(t, clock, srv, nil, Options{Dir: dir})
	for u, w := range want {
		if got, err := f1.Get(context.Background(), u); err != nil || !bytes.Equal(got, w) {
			t.Fatalf("first Get(%s): %v", u, err)
		}
	}
	f2 := online(t, clock, srv, nil, Options{Dir: dir})
	f3, err := New(Options{Dir: dir, Now: clock.Now}) // offline
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Fetcher{f2, f3} {
		for u, w := range want {
			if got, err := f.Get(context.Background(), u); err != nil || !bytes.Equal(got, w) {
				t.Fatalf("Get(%s) from the disk cache: %v", u, err)
			}
		}
	}
	if n := srv.total(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	des, err := os.ReadDir(dir)
	if err != nil || len(des) != 3 {
		t.Fatalf("cache dir has %d files (%v), want 3", len(des), err)
	}
	for _, de := range des {
		fi, err := de.Info()
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", de.Name(), fi.Mode().Perm())
		}
	}
	var c cacheFile
	data, _ := os.ReadFile(filepath.Join(dir, cacheName(fx.crlURL)))
	if err := json.Unmarshal(data, &c); err != nil || c.URL != fx.crlURL || c.FetchedAt.Before(t0) || !c.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("cache file metadata %+v, %v", c, err)
	}
}

func TestCacheDirWritableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Dir: dir}); err == nil {
		t.Fatal("New accepted a world-writable cache directory")
	}
}

func TestExpiry(t *testing.T) {
	fx := loadFixtures(t)
	crl := fx.crl(t, 1, t0, t0.Add(7*time.Hour))
	vcekEnd := time.Date(2029, 9, 24, 0, 55, 28, 0, time.UTC)
	for _, tc := range []struct {
		name string
		body []byte
		want time.Time
	}{
		{"DER CRL", crl, t0.Add(7 * time.Hour)},
		{"PEM CRL", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), t0.Add(7 * time.Hour)},
		{"DER certificate", fx.vcek, vcekEnd},
		{"PEM certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.vcek}), vcekEnd},
		{"PEM chain", fx.chain, time.Date(2045, 10, 22, 17, 23, 5, 0, time.UTC)}, // the ARK ends first
		{"other", []byte("{}"), t0.Add(defaultTTL)},
		{"PEM CRL then junk", append(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 'x'), t0.Add(defaultTTL)},
	} {
		if got := expiry(tc.body, t0); !got.Equal(tc.want) {
			t.Errorf("%s: expiry %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStaleCRLRefetched(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	crl1 := fx.crl(t, 1, t0, t0.Add(time.Hour))
	crl2 := fx.crl(t, 2, t0.Add(time.Hour), t0.Add(2*time.Hour))
	var mu sync.Mutex
	current, down := crl1, false
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Write(current)
	})
	f := online(t, clock, srv, nil, Options{Dir: t.TempDir()})
	get := func() ([]byte, error) { return f.Get(context.Background(), fx.crlURL) }

	if got, err := get(); err != nil || !bytes.Equal(got, crl1) {
		t.Fatalf("first Get: %v", err)
	}
	clock.Advance(59 * time.Minute)
	if got, err := get(); err != nil || !bytes.Equal(got, crl1) || srv.total() != 1 {
		t.Fatalf("Get before NextUpdate: %v, %d requests; want the cached CRL and 1 request", err, srv.total())
	}
	mu.Lock()
	current = crl2
	mu.Unlock()
	clock.Advance(time.Minute) // exactly NextUpdate: stale
	if got, err := get(); err != nil || !bytes.Equal(got, crl2) || srv.total() != 2 {
		t.Fatalf("Get at NextUpdate: %v, %d requests; want the new CRL and 2 requests", err, srv.total())
	}

	// Stale again, and the server is down: no body, ErrUnavailable, and
	// the stale copy only through StaleError.
	mu.Lock()
	down = true
	mu.Unlock()
	clock.Advance(2 * time.Hour)
	got, err := get()
	if got != nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stale CRL, server down: %d bytes, %v; want no body and ErrUnavailable", len(got), err)
	}
	var se *StaleError
	if !errors.As(err, &se) || !bytes.Equal(se.Body, crl2) || !se.Expired.Equal(t0.Add(2*time.Hour)) || se.URL != fx.crlURL {
		t.Fatalf("stale CRL, server down: %v; want a StaleError with the stale CRL", err)
	}
	if srv.total() != 3 {
		t.Fatalf("%d requests, want 3 (the failed refetch)", srv.total())
	}
}

func TestVendorCopyAlreadyStale(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	old := fx.crl(t, 1, t0.Add(-2*time.Hour), t0.Add(-time.Hour))
	srv := newServer(t, serveBodies(map[string][]byte{"/vcek/v1/Milan/crl": old}))
	f := online(t, clock, srv, nil, Options{})
	for i, wantHits := range []int{1, 1} {
		_, err := f.Get(context.Background(), fx.crlURL)
		var se *StaleError
		if !errors.As(err, &se) || !bytes.Equal(se.Body, old) || srv.total() != wantHits {
			t.Fatalf("Get %d: %v, %d requests; want a StaleError and %d requests", i, err, srv.total(), wantHits)
		}
	}
	clock.Advance(staleRefetchInterval)
	if _, err := f.Get(context.Background(), fx.crlURL); !errors.Is(err, ErrUnavailable) || srv.total() != 2 {
		t.Fatalf("after %v: %v, %d requests; want a refetch", staleRefetchInterval, err, srv.total())
	}
}

func TestNotFound(t *testing.T) {
	fx := loadFixtures(t)
	srv := newServer(t, serveBodies(nil))
	f := online(t, newClock(), srv, nil, Options{})
	if _, err := f.Get(context.Background(), fx.vcekURL); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("404: %v, want ErrNotFound", err)
	}
	if srv.total() != 1 {
		t.Fatalf("%d requests, want 1 (no retry, no mirror on 404)", srv.total())
	}
	off, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.Get(context.Background(), fx.vcekURL); !errors.Is(err, ErrNotFound) {
		t.Fatalf("offline: %v, want ErrNotFound", err)
	}
}

func TestBodyLimit(t *testing.T) {
	fx := loadFixtures(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, maxBody+1))
	})
	f := online(t, newClock(), srv, nil, Options{})
	if _, err := f.Get(context.Background(), fx.crlURL); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("1 MiB + 1: %v, want ErrUnavailable (body exceeds)", err)
	}
	if b, err := readBounded(bytes.NewReader(make([]byte, maxBody))); err != nil || len(b) != maxBody {
		t.Fatalf("exactly 1 MiB: %d bytes, %v", len(b), err)
	}
}

func TestMalformedBodyNotCached(t *testing.T) {
	fx := loadFixtures(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>captive portal</html>"))
	})
	f := online(t, newClock(), srv, nil, Options{DisableMirrors: true})
	for _, u := range []string{fx.crlURL, fx.chainURL, fx.vcekURL} {
		if _, err := f.Get(context.Background(), u); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrMalformed) {
			t.Errorf("Get(%s) of HTML: %v, want ErrUnavailable and ErrMalformed", u, err)
		}
	}
	if len(f.mem) != 0 {
		t.Fatalf("%d entries cached, want none", len(f.mem))
	}
}

func TestRefusedURLs(t *testing.T) {
	srv := newServer(t, serveBodies(nil))
	f := online(t, newClock(), srv, nil, Options{})
	for _, u := range []string{
		"https://evil.example/vcek/v1/Milan/crl",
		"http://kdsintf.amd.com/vcek/v1/Milan/crl",
		"https://kdsintf.amd.com/robots.txt",
	} {
		if _, err := f.Get(context.Background(), u); !errors.Is(err, ErrRefused) {
			t.Errorf("Get(%s) = %v, want ErrRefused", u, err)
		}
	}
	if srv.total() != 0 {
		t.Fatalf("%d requests, want none", srv.total())
	}
	for _, hosts := range []map[string]string{
		{"evil.example": srv.URL},
		{hostKDS: "ftp://127.0.0.1/"},
		{hostKDS: "127.0.0.1:80"},
	} {
		if _, err := New(Options{Hosts: hosts}); err == nil {
			t.Errorf("New accepted Hosts %v", hosts)
		}
	}
	for _, o := range []Options{{Rate: -1}, {Burst: -1}, {MaxRetryWait: -time.Second}} {
		if _, err := New(o); err == nil {
			t.Errorf("New accepted %+v", o)
		}
	}
}

func TestRedirects(t *testing.T) {
	fx := loadFixtures(t)
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	other := newServer(t, serveBodies(map[string][]byte{"/vcek/v1/Milan/crl": crl}))
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/vcek/v1/Milan/crl": // to another host
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
		case "/vlek/v1/Milan/crl": // within the host
			http.Redirect(w, r, "/moved", http.StatusFound)
		case "/moved":
			w.Write(crl)
		}
	})
	f := online(t, newClock(), srv, nil, Options{})
	if _, err := f.Get(context.Background(), fx.crlURL); !errors.Is(err, ErrUnavailable) || !errors.Is(err, errOffHost) {
		t.Fatalf("redirect to another host: %v, want ErrUnavailable", err)
	}
	if other.total() != 0 {
		t.Fatalf("the other host got %d requests, want none", other.total())
	}
	if got, err := f.Get(context.Background(), fx.vlekCRLURL); err != nil || !bytes.Equal(got, crl) {
		t.Fatalf("redirect within the host: %v", err)
	}
}

func TestCoalescing(t *testing.T) {
	fx := loadFixtures(t)
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write(fx.vcek)
	})
	f := online(t, newClock(), srv, nil, Options{})
	const n = 50
	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i], errs[i] = f.Get(context.Background(), fx.vcekURL)
		}()
	}
	waiters := func() int {
		f.callsMu.Lock()
		defer f.callsMu.Unlock()
		if c := f.calls[fx.vcekURL]; c != nil {
			return c.waiters
		}
		return 0
	}
	for deadline := time.Now().Add(10 * time.Second); waiters() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d callers joined the fetch", waiters(), n)
		}
	}
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(bodies[i], fx.vcek) {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if &bodies[0][0] == &bodies[1][0] {
		t.Fatal("callers share one slice")
	}
	if srv.total() != 1 {
		t.Fatalf("%d requests for %d concurrent Gets, want 1", srv.total(), n)
	}
}

func TestCallerGivesUp(t *testing.T) {
	fx := loadFixtures(t)
	arrived, cancelled := make(chan struct{}), make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
		close(cancelled)
	})
	f := online(t, newClock(), srv, nil, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	if _, err := f.Get(ctx, fx.crlURL); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled Get: %v, want context.Canceled and ErrUnavailable", err)
	}
	select {
	case <-cancelled: // the only waiter left: the request was cancelled
	case <-time.After(10 * time.Second):
		t.Fatal("the request outlived its only caller")
	}
}

func TestBucket(t *testing.T) {
	b := &bucket{rate: 2, burst: 3}
	var got []time.Duration
	for range 6 {
		got = append(got, b.reserve(t0))
	}
	want := []time.Duration{0, 0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reservations at one instant %v, want %v", got, want)
	}
	// After 10s idle the bucket is full again, never fuller than burst.
	for i, w := range []time.Duration{0, 0, 0, 500 * time.Millisecond} {
		if d := b.reserve(t0.Add(10*time.Second + 1500*time.Millisecond)); d != w {
			t.Fatalf("after idle, reservation %d waits %v, want %v", i, d, w)
		}
	}
}

func TestRateLimit(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	crl := fx.crl(t, 1, t0, t0.Add(100*time.Hour))
	var mu sync.Mutex
	var at []time.Duration
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, clock.Now().Sub(t0))
		mu.Unlock()
		w.Write(crl)
	})
	f := online(t, clock, srv, nil, Options{Rate: 2, Burst: 1})
	var urls []string
	for _, line := range []string{"Milan", "Genoa", "Turin"} {
		urls = append(urls, kds.CrlLinkByKey(line, abi.VcekReportSigner), kds.CrlLinkByKey(line, abi.VlekReportSigner))
	}
	for _, u := range urls {
		if _, err := f.Get(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second, 2500 * time.Millisecond}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(at) != fmt.Sprint(want) {
		t.Fatalf("requests at %v, want %v (2 per second)", at, want)
	}
	// Another host has its own bucket.
	if b := f.limits[hostAzure]; b != nil {
		t.Fatal("the Azure host's bucket was used")
	}
}

func TestRetryAfter(t *testing.T) {
	fx := loadFixtures(t)
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	for _, tc := range []struct {
		name       string
		answers    []func(w http.ResponseWriter)
		wantErr    error
		wantHits   int
		wantSleeps []time.Duration
	}{
		{
			name:       "429 Retry-After 2 then 200",
			answers:    []func(http.ResponseWriter){throttle(429, "2"), ok(crl)},
			wantHits:   2,
			wantSleeps: []time.Duration{2 * time.Second},
		},
		{
			name:       "503 HTTP date then 200",
			answers:    []func(http.ResponseWriter){throttle(503, t0.Add(3*time.Second).Format(http.TimeFormat)), ok(crl)},
			wantHits:   2,
			wantSleeps: []time.Duration{3 * time.Second},
		},
		{
			name:       "503 without Retry-After, three times",
			answers:    []func(http.ResponseWriter){throttle(503, ""), throttle(503, ""), throttle(503, ""), ok(crl)},
			wantErr:    ErrUnavailable,
			wantHits:   3,
			wantSleeps: []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name:     "429 Retry-After beyond the cap",
			answers:  []func(http.ResponseWriter){throttle(429, "60"), ok(crl)},
			wantErr:  ErrUnavailable,
			wantHits: 1,
		},
		{
			name:     "500 is not retried",
			answers:  []func(http.ResponseWriter){throttle(500, "1"), ok(crl)},
			wantErr:  ErrUnavailable,
			wantHits: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			var mu sync.Mutex
			n := 0
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				a := tc.answers[n]
				n++
				mu.Unlock()
				a(w)
			})
			f := online(t, clock, srv, nil, Options{})
			got, err := f.Get(context.Background(), fx.crlURL)
			if tc.wantErr == nil && (err != nil || !bytes.Equal(got, crl)) || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Get: %v, want %v", err, tc.wantErr)
			}
			if srv.total() != tc.wantHits || fmt.Sprint(clock.Sleeps()) != fmt.Sprint(tc.wantSleeps) {
				t.Fatalf("%d requests, sleeps %v; want %d and %v", srv.total(), clock.Sleeps(), tc.wantHits, tc.wantSleeps)
			}
		})
	}
	if _, ok := retryAfter("soon", t0); ok {
		t.Fatal("retryAfter accepted a non-number, non-date")
	}
	if d, ok := retryAfter("99999999999", t0); ok {
		t.Fatalf("retryAfter accepted an absurd delay: %v", d)
	}
}

func throttle(code int, after string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if after != "" {
			w.Header().Set("Retry-After", after)
		}
		w.WriteHeader(code)
	}
}

func ok(body []byte) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.Write(body) }
}

// thimJSON is an Azure cache answer for a VCEK, shaped like Microsoft's
// sample (confidential-sidecar-containers uvm_host_amd_certificate.json).
func thimJSON(t *testing.T, vcek, chain []byte, tcb kds.TCBVersion) []byte {
	t.Helper()
	b, err := json.Marshal(thimResponse{
		VcekCert:         string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vcek})),
		CertificateChain: string(chain),
		TCBM:             fmt.Sprintf("%016x", uint64(tcb)),
		CacheControl:     "86400",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAzureMirror(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	kdsSrv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		throttle(429, "60")(w)
	})
	azurePath := "/SevSnpVM/certificates/" + hex.EncodeToString(fx.hwid) + "/4405000000000002"
	azure := newServer(t, serveBodies(map[string][]byte{azurePath: thimJSON(t, fx.vcek, fx.chain, fx.tcb)}))
	dir := t.TempDir()
	f := online(t, clock, kdsSrv, azure, Options{Dir: dir})

	got, err := f.Get(context.Background(), fx.vcekURL)
	if err != nil || !bytes.Equal(got, fx.vcek) {
		t.Fatalf("Get with KDS throttling: %v; want the DER VCEK from the mirror", err)
	}
	if azure.count(azurePath) != 1 || azure.request(0).URL.RawQuery != "api-version=2020-10-15-preview" {
		t.Fatalf("Azure asked %d times, query %q", azure.count(azurePath), azure.request(0).URL.RawQuery)
	}
	// Cached under the KDS URL, on disk too.
	if _, err := f.Get(context.Background(), fx.vcekURL); err != nil || kdsSrv.total() != 1 || azure.total() != 1 {
		t.Fatalf("second Get: %v, %d KDS and %d Azure requests; want 1 and 1", err, kdsSrv.total(), azure.total())
	}
	off, err := New(Options{Dir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := off.Get(context.Background(), fx.vcekURL); err != nil || !bytes.Equal(got, fx.vcek) {
		t.Fatalf("offline Get of the mirrored VCEK: %v", err)
	}

	// A VCEK of another chip from the mirror is refused and not cached.
	otherHWID := bytes.Repeat([]byte{0x01}, abi.ChipIDSize)
	otherURL := kds.VCEKCertURL("Milan", otherHWID, fx.tcb)
	wrong := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(thimJSON(t, fx.vcek, fx.chain, fx.tcb)) })
	f2 := online(t, clock, kdsSrv, wrong, Options{})
	if _, err := f2.Get(context.Background(), otherURL); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "hwID") {
		t.Fatalf("mirror answering another chip's VCEK: %v, want ErrUnavailable (hwID)", err)
	}
	if len(f2.mem) != 0 {
		t.Fatal("a wrong VCEK was cached")
	}

	// Disabled: the KDS error stands, Azure is not asked.
	f3 := online(t, clock, kdsSrv, azure, Options{DisableMirrors: true})
	if _, err := f3.Get(context.Background(), fx.vcekURL); !errors.Is(err, ErrUnavailable) || azure.total() != 1 {
		t.Fatalf("mirrors disabled: %v, %d Azure requests; want ErrUnavailable and no new request", err, azure.total())
	}
}

func TestAzureURL(t *testing.T) {
	v := kds.VCEKCert{HWID: bytes.Repeat([]byte{0xab}, 64), TCB: 0x541700000000000a}
	want := "https://global.acccache.azure.net/SevSnpVM/certificates/" + strings.Repeat("ab", 64) + "/541700000000000a?api-version=2020-10-15-preview"
	if got := azureVCEKURL(v); got != want {
		t.Fatalf("azureVCEKURL = %s, want %s", got, want)
	}
}

func TestParseTHIM(t *testing.T) {
	fx := loadFixtures(t)
	good := thimJSON(t, fx.vcek, fx.chain, fx.tcb)
	if der, err := parseTHIM(good); err != nil || !bytes.Equal(der, fx.vcek) {
		t.Fatalf("parseTHIM: %v", err)
	}
	twoCerts, err := json.Marshal(thimResponse{VcekCert: string(fx.chain)})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"trailing":  append(append([]byte{}, good...), []byte(" {}")...),
		"no vcek":   []byte(`{"certificateChain":"x"}`),
		"two certs": twoCerts,
		"not json":  []byte("<html>"),
	} {
		if _, err := parseTHIM(body); err == nil {
			t.Errorf("parseTHIM accepted %s", name)
		}
	}
}

func TestCorruptCacheFileRefetched(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	srv := newServer(t, serveBodies(map[string][]byte{fx.vcekPath: fx.vcek, "/vcek/v1/Milan/crl": crl}))
	dir := t.TempDir()
	f := online(t, clock, srv, nil, Options{Dir: dir})
	for _, u := range []string{fx.vcekURL, fx.crlURL} {
		if _, err := f.Get(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, cacheName(fx.vcekURL))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crlFile, _ := os.ReadFile(filepath.Join(dir, cacheName(fx.crlURL)))
	var c cacheFile
	if err := json.Unmarshal(good, &c); err != nil {
		t.Fatal(err)
	}
	flipped := c
	flipped.Body = bytes.Clone(c.Body)
	flipped.Body[100] ^= 1
	flippedJSON, _ := json.Marshal(flipped)
	otherChip := c // a valid VCEK entry, but not of this URL's chip
	otherChip.URL = kds.VCEKCertURL("Milan", bytes.Repeat([]byte{1}, 64), fx.tcb)
	otherJSON, _ := json.Marshal(otherChip)

	for name, data := range map[string][]byte{
		"garbage":            []byte("\x00garbage"),
		"truncated":          good[:len(good)/2],
		"body hash mismatch": flippedJSON,
		"another URL's file": crlFile,
		"wrong URL":          otherJSON,
		"unknown field":      append(good[:len(good)-1:len(good)-1], []byte(`,"x":1}`)...),
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			before := srv.count(fx.vcekPath)
			f2 := online(t, clock, srv, nil, Options{Dir: dir})
			got, err := f2.Get(context.Background(), fx.vcekURL)
			if err != nil || !bytes.Equal(got, fx.vcek) || srv.count(fx.vcekPath) != before+1 {
				t.Fatalf("Get over a corrupt cache file: %v, %d requests; want a refetch", err, srv.count(fx.vcekPath)-before)
			}
			if e, err := f2.readDisk(fx.vcekURL); err != nil || e == nil {
				t.Fatalf("cache file not repaired: %v", err)
			}
		})
	}
}

func TestOfflineStale(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	var buf bytes.Buffer
	if err := writeBundle(&buf, []*entry{newEntry(fx.crlURL, crl, t0)}); err != nil {
		t.Fatal(err)
	}
	f, err := New(Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Import(&buf); n != 1 || err != nil {
		t.Fatalf("Import = %d, %v", n, err)
	}
	if _, err := f.Get(context.Background(), fx.crlURL); err != nil {
		t.Fatalf("fresh offline CRL: %v", err)
	}
	clock.Advance(time.Hour)
	got, err := f.Get(context.Background(), fx.crlURL)
	var se *StaleError
	if got != nil || !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) || !bytes.Equal(se.Body, crl) {
		t.Fatalf("stale offline CRL: %d bytes, %v; want no body and a StaleError", len(got), err)
	}
}

// BenchmarkGetWarm is the cost a verification pays per collateral URL once
// the cache is warm.
func BenchmarkGetWarm(b *testing.B) {
	var buf bytes.Buffer
	u := "https://kdsintf.amd.com/vcek/v1/Milan/cert_chain"
	if err := writeBundle(&buf, []*entry{newEntry(u, trust.AskArkMilanVcekBytes, t0)}); err != nil {
		b.Fatal(err)
	}
	f, err := New(Options{Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Import(&buf); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Get(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
}
