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
	if !errors.As(err, &se) || !bytes.Equal(kept(f, fx.crlURL).body, crl2) || !se.Expired.Equal(t0.Add(2*time.Hour)) || se.URL != fx.crlURL {
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
		if !errors.As(err, &se) || !bytes.Equal(kept(f, fx.crlURL).body, old) || srv.total() != wantHits {
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
	if got != nil || !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) || !bytes.Equal(kept(f, fx.crlURL).body, crl) {
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

// TestFutureNowDoesNotPoisonTheCache: a run whose Now was a verification
// time in 2040 filed its fetch under 2040; later runs on the real clock
// must still refetch the stale CRL rather than wait until 2040.
func TestFutureNowDoesNotPoisonTheCache(t *testing.T) {
	fx := loadFixtures(t)
	crl1 := fx.crl(t, 1, t0, t0.Add(time.Hour))
	crl2 := fx.crl(t, 2, t0.Add(2*time.Hour), t0.Add(30*time.Hour))
	var mu sync.Mutex
	current := crl1
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write(current)
	})
	dir := t.TempDir()
	ctx := context.Background()

	f1 := online(t, &fakeClock{t: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}, srv, nil, Options{Dir: dir})
	var se *StaleError
	if _, err := f1.Get(ctx, fx.crlURL); !errors.As(err, &se) || srv.total() != 1 {
		t.Fatalf("at 2040: %v, %d requests; want a StaleError and 1 request", err, srv.total())
	}
	var c cacheFile
	if data, err := os.ReadFile(filepath.Join(dir, cacheName(fx.crlURL))); err != nil || json.Unmarshal(data, &c) != nil || c.FetchedAt.Year() != 2040 {
		t.Fatalf("the 2040 run left no cache file fetched in 2040 (%v)", err)
	}

	mu.Lock()
	current = crl2
	mu.Unlock()
	clock := newClock()
	clock.Advance(2 * time.Hour) // crl1 is stale now
	f2 := online(t, clock, srv, nil, Options{Dir: dir})
	if got, err := f2.Get(ctx, fx.crlURL); err != nil || !bytes.Equal(got, crl2) || srv.total() != 2 {
		t.Fatalf("after the 2040 run: %v, %d requests; want the new CRL and 2 requests", err, srv.total())
	}
	data, err := os.ReadFile(filepath.Join(dir, cacheName(fx.crlURL)))
	if err != nil || json.Unmarshal(data, &c) != nil || !c.FetchedAt.Equal(clock.Now()) {
		t.Fatalf("cache file fetched at %v (%v), want %v", c.FetchedAt, err, clock.Now())
	}

	// A bundle that claims a fetch in 2040 holds back no refetch either.
	mu.Lock()
	current = crl2
	mu.Unlock()
	var buf bytes.Buffer
	if err := writeBundle(&buf, []*entry{newEntry(fx.crlURL, crl1, time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC))}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f3 := online(t, clock, srv, nil, Options{Bundles: []string{path}})
	if e := kept(f3, fx.crlURL); !e.capped || !e.fetchedAt.Equal(clock.Now()) {
		t.Fatalf("bundle entry fetched at %v (capped %v), want capped at %v", e.fetchedAt, e.capped, clock.Now())
	}
	if got, err := f3.Get(ctx, fx.crlURL); err != nil || !bytes.Equal(got, crl2) || srv.total() != 3 {
		t.Fatalf("over a bundle fetched in 2040: %v, %d requests; want the new CRL and 3 requests", err, srv.total())
	}
}

func TestCapFetched(t *testing.T) {
	fx := loadFixtures(t)
	past := newEntry(fx.vcekURL, fx.vcek, t0.Add(-time.Hour))
	if capFetched(past, t0) != past {
		t.Fatal("an entry fetched before now was changed")
	}
	e := capFetched(newEntry(fx.vcekURL, fx.vcek, t0.Add(time.Hour)), t0)
	if !e.capped || !e.fetchedAt.Equal(t0) || !e.expiresAt.Equal(past.expiresAt) {
		t.Fatalf("capped entry fetched %v, expires %v (capped %v)", e.fetchedAt, e.expiresAt, e.capped)
	}
	// Freshness from the fetch time alone is not believed.
	undated := capFetched(newEntry(fx.crlURL, []byte("undated"), t0.Add(time.Hour)), t0)
	if undated.fresh(t0) {
		t.Fatalf("an undated entry fetched in the future is fresh until %v", undated.expiresAt)
	}
}

// TestRateLimitIgnoresNow: the buckets run on the wall clock, so a Now
// stuck at a verification time does not stop them refilling.
func TestRateLimitIgnoresNow(t *testing.T) {
	var mu sync.Mutex
	var sleeps []time.Duration
	f, err := New(Options{
		Now:  func() time.Time { return time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC) },
		Rate: 20, Burst: 1,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			sleeps = append(sleeps, d)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := f.wait(context.Background(), hostKDS, time.Time{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond) // a token takes 50ms
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sleeps) != 0 {
		t.Fatalf("waited %v: the bucket did not refill on the wall clock", sleeps)
	}
}

func TestNotFoundRemembered(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	srv := newServer(t, serveBodies(nil))
	dir := t.TempDir()
	f := online(t, clock, srv, nil, Options{Dir: dir, DisableMirrors: true})
	for i := range 3 {
		if _, err := f.Get(context.Background(), fx.vcekURL); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get %d: %v, want ErrNotFound", i, err)
		}
	}
	if srv.total() != 1 {
		t.Fatalf("%d requests, want 1 (the 404 is remembered)", srv.total())
	}
	// Never persisted, never exported.
	var buf bytes.Buffer
	if err := f.Export(&buf); err != nil {
		t.Fatal(err)
	}
	if es, err := readBundle(&buf); err != nil || len(es) != 0 {
		t.Fatalf("export after a 404: %d entries, %v; want none", len(es), err)
	}
	if des, err := os.ReadDir(dir); err != nil || len(des) != 0 {
		t.Fatalf("cache directory after a 404: %d files, %v; want none", len(des), err)
	}
	clock.Advance(negativeTTL)
	if _, err := f.Get(context.Background(), fx.vcekURL); !errors.Is(err, ErrNotFound) || srv.total() != 2 {
		t.Fatalf("after %v: %v, %d requests; want the vendor asked again", negativeTTL, err, srv.total())
	}

	// Bounded: the entry expiring first goes; expired ones go first.
	for i := range maxNegative + 100 {
		clock.Advance(time.Millisecond)
		f.rememberMissing(fmt.Sprintf("https://kdsintf.amd.com/vcek/v1/Milan/%d", i))
	}
	f.negMu.Lock()
	n := len(f.neg)
	_, oldest := f.neg["https://kdsintf.amd.com/vcek/v1/Milan/0"]
	f.negMu.Unlock()
	if n != maxNegative || oldest {
		t.Fatalf("%d URLs remembered (the first still: %v), want %d", n, oldest, maxNegative)
	}
	clock.Advance(negativeTTL)
	f.rememberMissing("https://kdsintf.amd.com/vcek/v1/Milan/last")
	f.negMu.Lock()
	n = len(f.neg)
	f.negMu.Unlock()
	if n != 1 {
		t.Fatalf("%d URLs remembered after all expired, want 1", n)
	}
}

// bucketTokens is the token count of f's bucket key.
func bucketTokens(f *Fetcher, key string) float64 {
	f.limitMu.Lock()
	b := f.limits[key]
	f.limitMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens
}

// recordingSleep is a Sleep that returns at once without moving the
// clock, so that reservations pile up as under a flood.
type recordingSleep struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (r *recordingSleep) Sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sleeps = append(r.sleeps, d)
	return ctx.Err()
}

func (r *recordingSleep) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sleeps)
}

// TestVCEKFloodDoesNotStarveRevocation: 200 made-up chip ids cost at most
// what the rate limit allows within MaxRetryWait, fail fast beyond it
// without taking tokens, and do not delay a CRL.
func TestVCEKFloodDoesNotStarveRevocation(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	srv := newServer(t, serveBodies(map[string][]byte{"/vcek/v1/Milan/crl": crl}))
	rec := &recordingSleep{}
	f, err := New(Options{Client: srv.Client(), Hosts: map[string]string{hostKDS: srv.URL}, Now: clock.Now, Sleep: rec.Sleep, DisableMirrors: true})
	if err != nil {
		t.Fatal(err)
	}
	f.wall = clock.Now
	ctx := context.Background()
	bogus := func(i int) string {
		hwid := make([]byte, abi.ChipIDSize)
		hwid[0], hwid[1], hwid[63] = byte(i), byte(i>>8), 0xbb
		return kds.VCEKCertURL("Milan", hwid, fx.tcb)
	}
	notFound, limited := 0, 0
	for i := range 200 {
		_, err := f.Get(ctx, bogus(i))
		switch {
		case errors.Is(err, ErrNotFound):
			notFound++
		case errors.Is(err, ErrUnavailable) && errors.Is(err, errRateLimited):
			limited++
		default:
			t.Fatalf("bogus VCEK %d: %v", i, err)
		}
	}
	// Burst 2, then one every 0.5s up to the 5s MaxRetryWait.
	if notFound != 12 || limited != 188 || srv.total() != 12 || rec.count() != 10 {
		t.Fatalf("%d not found, %d rate limited, %d requests, %d waits; want 12, 188, 12, 10", notFound, limited, srv.total(), rec.count())
	}
	if got := bucketTokens(f, hostKDS); got != -10 {
		t.Fatalf("VCEK bucket holds %v tokens, want -10 (refused requests take none)", got)
	}
	if got, err := f.Get(ctx, fx.crlURL); err != nil || !bytes.Equal(got, crl) || rec.count() != 10 {
		t.Fatalf("CRL after the flood: %v, %d waits; want it at once", err, rec.count())
	}
	// A made-up chip asked again costs neither a request nor a token.
	if _, err := f.Get(ctx, bogus(0)); !errors.Is(err, ErrNotFound) || srv.total() != 13 || bucketTokens(f, hostKDS) != -10 {
		t.Fatalf("a remembered 404: %v, %d requests, %v tokens", err, srv.total(), bucketTokens(f, hostKDS))
	}
}

// TestRateLimitWaitBounded: a token due after the caller's deadline is
// not waited for, and one given up is given back.
func TestRateLimitWaitBounded(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(crl) })
	rec := &recordingSleep{}
	f, err := New(Options{Client: srv.Client(), Hosts: map[string]string{hostKDS: srv.URL}, Now: clock.Now, Sleep: rec.Sleep, Rate: 2, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.wall = clock.Now
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	urls := []string{fx.crlURL, fx.vlekCRLURL, kds.CrlLinkByKey("Genoa", abi.VcekReportSigner), kds.CrlLinkByKey("Genoa", abi.VlekReportSigner)}
	for _, u := range urls[:3] { // due at 0, 0.5s, 1s
		if _, err := f.Get(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Get(ctx, urls[3]); !errors.Is(err, ErrUnavailable) || !errors.Is(err, errRateLimited) || srv.total() != 3 || rec.count() != 2 {
		t.Fatalf("a token due after the deadline: %v, %d requests, %d waits; want ErrUnavailable at once", err, srv.total(), rec.count())
	}
	if _, err := f.Get(context.Background(), urls[3]); err != nil || srv.total() != 4 {
		t.Fatalf("without a deadline: %v, %d requests", err, srv.total())
	}

	// A caller that gives up while waiting gives its token back.
	sleeping := make(chan struct{}, 1)
	g, err := New(Options{Client: srv.Client(), Hosts: map[string]string{hostKDS: srv.URL}, Now: clock.Now, Rate: 1, Burst: 1,
		Sleep: func(ctx context.Context, d time.Duration) error {
			sleeping <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	g.wall = clock.Now
	if _, err := g.Get(context.Background(), urls[0]); err != nil {
		t.Fatal(err)
	}
	key := limitKey(hostKDS, kindCRL)
	gctx, gcancel := context.WithCancel(context.Background())
	go func() { <-sleeping; gcancel() }()
	if _, err := g.Get(gctx, urls[1]); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that gives up: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); bucketTokens(g, key) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("bucket holds %v tokens, want 0: the reservation was not given back", bucketTokens(g, key))
		}
	}
	if srv.total() != 5 {
		t.Fatalf("%d requests, want 5", srv.total())
	}
}

func TestBucketGivesBack(t *testing.T) {
	b := &bucket{rate: 2, burst: 1}
	for i, want := range []time.Duration{0, 500 * time.Millisecond, time.Second} { // A, B, C
		if d := b.reserve(t0); d != want {
			t.Fatalf("reservation %d waits %v, want %v", i, d, want)
		}
	}
	if d, ok := b.tryReserve(t0, time.Second); ok || d != 1500*time.Millisecond || b.tokens != -2 {
		t.Fatalf("over the limit: %v, %v, %v tokens; want refused, nothing taken", d, ok, b.tokens)
	}
	for _, step := range []struct {
		name     string
		due      time.Duration
		wantLeft float64
	}{
		{"B, C counts on it", 500 * time.Millisecond, -2},
		{"C, the latest", time.Second, -1},
		{"B, now the latest", 500 * time.Millisecond, 0},
	} {
		b.cancel(t0, t0.Add(step.due))
		if b.tokens != step.wantLeft {
			t.Fatalf("cancel %s: %v tokens, want %v", step.name, b.tokens, step.wantLeft)
		}
	}
	if d := b.reserve(t0); d != 500*time.Millisecond {
		t.Fatalf("after the cancellations a reservation waits %v, want 500ms", d)
	}
	b.cancel(t0.Add(time.Second), t0.Add(500*time.Millisecond)) // already due
	if b.tokens != -1 {
		t.Fatalf("a reservation given up once due gave back: %v tokens, want -1", b.tokens)
	}
}

func TestInvalidate(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	genuine := fx.crl(t, 2, t0, t0.Add(time.Hour))
	forgedARK, forgedKey := newCA(t, "ARK-Milan")
	forged := (&fixtures{ark: forgedARK, arkKey: forgedKey}).crl(t, 99, t0, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	srv := newServer(t, serveBodies(map[string][]byte{"/vcek/v1/Milan/crl": genuine}))
	dir := t.TempDir()
	f := online(t, clock, srv, nil, Options{Dir: dir})
	var buf bytes.Buffer
	if err := writeBundle(&buf, []*entry{newEntry(fx.crlURL, forged, t0)}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Import(&buf); n != 1 || err != nil {
		t.Fatalf("Import = %d, %v", n, err)
	}
	if got, err := f.Get(context.Background(), fx.crlURL); err != nil || !bytes.Equal(got, forged) || srv.total() != 0 {
		t.Fatalf("Get of the imported CRL: %v", err)
	}
	// The verifier finds the signature bad and invalidates it.
	var g Getter = f
	inv, ok := g.(interface{ Invalidate(string) })
	if !ok {
		t.Fatal("a Fetcher is no Invalidator")
	}
	inv.Invalidate(fx.crlURL)
	if _, err := os.Stat(filepath.Join(dir, cacheName(fx.crlURL))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cache file after Invalidate: %v", err)
	}
	if got, err := f.Get(context.Background(), fx.crlURL); err != nil || !bytes.Equal(got, genuine) || srv.total() != 1 {
		t.Fatalf("Get after Invalidate: %v, %d requests; want the genuine CRL refetched", err, srv.total())
	}
	if e, err := f.readDisk(fx.crlURL); err != nil || e == nil || !bytes.Equal(e.body, genuine) {
		t.Fatalf("cache file after the refetch: %v", err)
	}
	// Offline, a dropped entry is gone.
	off, err := New(Options{Dir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	off.Invalidate(fx.crlURL)
	if _, err := off.Get(context.Background(), fx.crlURL); !errors.Is(err, ErrNotFound) {
		t.Fatalf("offline Get after Invalidate: %v, want ErrNotFound", err)
	}
}

// TestCRLTrailingBytesRefused: what the verifiers refuse (bytes after the
// CRL) is never cached.
func TestCRLTrailingBytesRefused(t *testing.T) {
	fx := loadFixtures(t)
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	pemCRL := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})
	trailing := append(bytes.Clone(crl), 0)
	for _, ok := range [][]byte{crl, pemCRL} {
		if _, err := parseCRL(ok); err != nil {
			t.Fatalf("a good CRL: %v", err)
		}
	}
	for name, body := range map[string][]byte{
		"DER then a byte":        trailing,
		"PEM of DER then a byte": pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: trailing}),
		"PEM then text":          append(bytes.Clone(pemCRL), 'x'),
		"PEM then a blank line":  append(bytes.Clone(pemCRL), '\n'),
		"text then PEM":          append([]byte("x\n"), pemCRL...),
		"PEM with headers":       pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Headers: map[string]string{"A": "b"}, Bytes: crl}),
	} {
		if _, err := parseCRL(body); err == nil {
			t.Errorf("parseCRL accepted %s", name)
		}
	}
	srv := newServer(t, serveBodies(map[string][]byte{"/vcek/v1/Milan/crl": trailing}))
	f := online(t, newClock(), srv, nil, Options{})
	if _, err := f.Get(context.Background(), fx.crlURL); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrMalformed) || len(f.mem) != 0 {
		t.Fatalf("a KDS CRL with a trailing byte: %v, %d cached; want ErrMalformed, nothing cached", err, len(f.mem))
	}
	var buf bytes.Buffer
	if err := writeBundle(&buf, []*entry{newEntry(fx.crlURL, trailing, t0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := readBundle(&buf); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a bundle CRL with a trailing byte: %v, want ErrMalformed", err)
	}
	qfx := loadQVL(t, "dcapqvl-sgx_quote_collateral.json")
	for _, tc := range []struct {
		k    kind
		url  string
		body []byte
	}{{kindPCKCRL, pckCRLURL(qfx.ca), qfx.want.PCKCRL}, {kindRootCACRL, rootCACRLURL, qfx.want.RootCACRL}} {
		if err := validate(tc.k, tc.url, tc.body); err != nil {
			t.Fatalf("%s: %v", tc.k, err)
		}
		if err := validate(tc.k, tc.url, append(bytes.Clone(tc.body), 0)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s with a trailing byte: %v, want ErrMalformed", tc.k, err)
		}
	}
}
