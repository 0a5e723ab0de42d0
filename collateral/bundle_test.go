package collateral

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func TestExportImportRoundTrip(t *testing.T) {
	fx := loadFixtures(t)
	clock := newClock()
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	srv := newServer(t, serveBodies(map[string][]byte{fx.vcekPath: fx.vcek, fx.chainPath: fx.chain, "/vcek/v1/Milan/crl": crl}))
	f1 := online(t, clock, srv, nil, Options{Dir: t.TempDir()})
	want := map[string][]byte{fx.vcekURL: fx.vcek, fx.chainURL: fx.chain, fx.crlURL: crl}
	for u := range want {
		if _, err := f1.Get(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Hour) // the CRL is stale now: exported all the same
	var buf bytes.Buffer
	if err := f1.Export(&buf); err != nil {
		t.Fatal(err)
	}
	var doc bundleDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.Version != 1 || doc.Format != "trustbound-collateral" || len(doc.Entries) != 3 {
		t.Fatalf("exported bundle %+v, %v", doc, err)
	}
	for i := 1; i < len(doc.Entries); i++ {
		if doc.Entries[i-1].URL >= doc.Entries[i].URL {
			t.Fatal("exported entries are not sorted by URL")
		}
	}
	bundle := bytes.Clone(buf.Bytes())

	// Into an empty offline Fetcher, at the time of the fetch.
	f2, err := New(Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f2.Import(bytes.NewReader(bundle)); n != 3 || err != nil {
		t.Fatalf("Import = %d, %v; want 3", n, err)
	}
	for u, w := range want {
		if got, err := f2.Get(context.Background(), u); err != nil || !bytes.Equal(got, w) {
			t.Fatalf("offline Get(%s) after Import: %v", u, err)
		}
	}
	if n, err := f2.Import(bytes.NewReader(bundle)); n != 0 || err != nil {
		t.Fatalf("second Import = %d, %v; want 0 (nothing newer)", n, err)
	}
	if _, err := f2.Get(context.Background(), fx.vlekCRLURL); !errors.Is(err, ErrNotFound) {
		t.Fatalf("offline Get of what the bundle lacks: %v, want ErrNotFound", err)
	}

	// As Options.Bundles, and imported into a cache directory.
	path := filepath.Join(t.TempDir(), "collateral.json")
	if err := os.WriteFile(path, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	f3, err := New(Options{Bundles: []string{path}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f4, err := New(Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f4.Import(bytes.NewReader(bundle)); n != 3 || err != nil {
		t.Fatalf("Import into a directory = %d, %v", n, err)
	}
	f5, err := New(Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Fetcher{f3, f5} {
		for u, w := range want {
			if got, err := f.Get(context.Background(), u); err != nil || !bytes.Equal(got, w) {
				t.Fatalf("Get(%s) from a bundle: %v", u, err)
			}
		}
	}
	// Exporting again gives the same bundle.
	var again bytes.Buffer
	if err := f5.Export(&again); err != nil || !bytes.Equal(again.Bytes(), bundle) {
		t.Fatalf("re-export differs (%v)", err)
	}
}

func TestImportKeepsNewer(t *testing.T) {
	fx := loadFixtures(t)
	older := fx.crl(t, 1, t0, t0.Add(time.Hour))
	newer := fx.crl(t, 2, t0, t0.Add(2*time.Hour))
	bundleOf := func(body []byte) io.Reader {
		var b bytes.Buffer
		if err := writeBundle(&b, []*entry{newEntry(fx.crlURL, body, t0)}); err != nil {
			t.Fatal(err)
		}
		return &b
	}
	f, err := New(Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		body  []byte
		added int
	}{{newer, 1}, {older, 0}} {
		if n, err := f.Import(bundleOf(step.body)); n != step.added || err != nil {
			t.Fatalf("Import = %d, %v; want %d", n, err, step.added)
		}
	}
	if got, _ := f.Get(context.Background(), fx.crlURL); !bytes.Equal(got, newer) {
		t.Fatal("an older CRL replaced a newer one")
	}
}

func TestReadBundleStrict(t *testing.T) {
	fx := loadFixtures(t)
	vcek := `{"url":"` + fx.vcekURL + `","body":"` + b64(fx.vcek) + `","fetchedAt":"2026-03-01T12:00:00Z"}`
	good := `{"version":1,"format":"trustbound-collateral","entries":[` + vcek + `]}`
	if es, err := readBundle(strings.NewReader(good)); err != nil || len(es) != 1 || es[0].url != fx.vcekURL {
		t.Fatalf("good bundle: %v", err)
	}
	if es, err := readBundle(strings.NewReader(`{"version":1,"format":"trustbound-collateral","entries":[]}`)); err != nil || len(es) != 0 {
		t.Fatalf("empty bundle: %v", err)
	}
	for name, doc := range map[string]string{
		"version 3":      strings.Replace(good, `"version":1`, `"version":3`, 1),
		"v1 headers":     strings.Replace(good, `"fetchedAt"`, `"headers":{"X":"y"},"fetchedAt"`, 1),
		"AMD headers":    strings.Replace(strings.Replace(good, `"version":1`, `"version":2`, 1), `"fetchedAt"`, `"headers":{"X":"y"},"fetchedAt"`, 1),
		"other format":   strings.Replace(good, `trustbound-collateral`, `other`, 1),
		"unknown field":  strings.Replace(good, `"entries"`, `"extra":1,"entries"`, 1),
		"entry field":    strings.Replace(good, `"fetchedAt"`, `"expiresAt":"2099-01-01T00:00:00Z","fetchedAt"`, 1),
		"trailing data":  good + `{}`,
		"duplicate":      `{"version":1,"format":"trustbound-collateral","entries":[` + vcek + `,` + vcek + `]}`,
		"no fetchedAt":   strings.Replace(good, `,"fetchedAt":"2026-03-01T12:00:00Z"`, ``, 1),
		"empty body":     strings.Replace(good, b64(fx.vcek), ``, 1),
		"refused URL":    strings.Replace(good, fx.vcekURL, `https://evil.example/vcek/v1/Milan/crl`, 1),
		"wrong kind":     strings.Replace(good, fx.vcekURL, fx.crlURL, 1),
		"another chip":   strings.Replace(good, fx.vcekURL, kds.VCEKCertURL("Milan", bytes.Repeat([]byte{1}, 64), fx.tcb), 1),
		"bad base64":     strings.Replace(good, b64(fx.vcek), `!!!`, 1),
		"not json":       `version: 1`,
		"entries object": `{"version":1,"format":"trustbound-collateral","entries":{}}`,
	} {
		if _, err := readBundle(strings.NewReader(doc)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	huge := io.MultiReader(strings.NewReader(good), io.LimitReader(zeros{}, maxBundleSize))
	if _, err := readBundle(huge); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized bundle: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func b64(b []byte) string {
	s, _ := json.Marshal(b)
	return strings.Trim(string(s), `"`)
}

// writeDirFixture writes raw collateral files as an operator might copy
// them, with a fixed modification time.
func writeDirFixture(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, t0, t0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBundleDirectory(t *testing.T) {
	fx := loadFixtures(t)
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	vlekCRL := fx.crl(t, 2, t0, t0.Add(time.Hour))
	genoaARK, genoaKey := newCA(t, "ARK-Genoa")
	genoaFx := &fixtures{ark: genoaARK, arkKey: genoaKey}
	genoaCRL := genoaFx.crl(t, 3, t0, t0.Add(time.Hour))
	dir := t.TempDir()
	writeDirFixture(t, dir, map[string][]byte{
		"vcek.pem":                                 pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.vcek}),
		"chains/milan-vlek.pem":                    trust.AskArkMilanVlekBytes,
		"kdsintf.amd.com/vcek/v1/Milan/crl":        crl,
		"vlek/v1/Milan/crl":                        pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: vlekCRL}),
		"site/amd/vcek/v1/Genoa/crl":               pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: genoaCRL}), // a loose CRL only at its KDS path
		"kdsintf.amd.com/vcek/v1/Milan/cert_chain": fx.chain,
		"README.txt":                               []byte("collateral for the air-gapped site\n"),
	})
	f, err := New(Options{Bundles: []string{dir}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for u, w := range map[string][]byte{
		fx.vcekURL:  fx.vcek, // PEM on disk, DER as the KDS serves it
		fx.chainURL: fx.chain,
		kds.ProductCertChainURL(abi.VlekReportSigner, "Milan"): trust.AskArkMilanVlekBytes,
		fx.crlURL:     crl,
		fx.vlekCRLURL: vlekCRL,
		kds.CrlLinkByKey("Genoa", abi.VcekReportSigner): genoaCRL,
	} {
		if got, err := f.Get(context.Background(), u); err != nil || !bytes.Equal(got, w) {
			t.Errorf("Get(%s) from a directory: %v", u, err)
		}
	}
	if n := len(f.mem); n != 6 {
		t.Fatalf("%d entries from the directory, want 6", n)
	}

	// A file at a KDS path must be what the path names.
	bad := t.TempDir()
	writeDirFixture(t, bad, map[string][]byte{"vcek/v1/Milan/crl": fx.vcek})
	if _, err := New(Options{Bundles: []string{bad}}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a certificate at a crl path: %v, want ErrMalformed", err)
	}
	if _, err := New(Options{Bundles: []string{filepath.Join(dir, "missing")}}); err == nil {
		t.Fatal("a missing bundle was accepted")
	}
}

// TestExportGolden: the bundle written for a directory of real AMD
// collateral (go test -update rewrites it).
func TestExportGolden(t *testing.T) {
	fx := loadFixtures(t)
	dir := t.TempDir()
	writeDirFixture(t, dir, map[string][]byte{"vcek.der": fx.vcek, "ask_ark_milan.pem": fx.chain})
	f, err := New(Options{Bundles: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Export(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "milan-bundle.golden.json")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("export differs from %s (go test -update to rewrite):\n%s", golden, buf.Bytes())
	}
}

// TestImportForgedThenGenuine: an import replaces what was fetched
// earlier, whatever the bodies claim about their expiry.
func TestImportForgedThenGenuine(t *testing.T) {
	fx := loadFixtures(t)
	forgedARK, forgedKey := newCA(t, "ARK-Milan")
	forged := (&fixtures{ark: forgedARK, arkKey: forgedKey}).crl(t, 99, t0.Add(-time.Hour), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	genuine := fx.crl(t, 2, t0, t0.Add(time.Hour))
	bundleOf := func(body []byte, fetchedAt time.Time) io.Reader {
		var b bytes.Buffer
		if err := writeBundle(&b, []*entry{newEntry(fx.crlURL, body, fetchedAt)}); err != nil {
			t.Fatal(err)
		}
		return &b
	}
	now := func() time.Time { return t0.Add(time.Minute) }
	dir := t.TempDir()
	f, err := New(Options{Dir: dir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	future := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, step := range []struct {
		body      []byte
		fetchedAt time.Time
		added     int
	}{
		{forged, t0.Add(-time.Hour), 1},
		{genuine, t0, 1},                // fetched later: replaces, though it expires sooner
		{forged, t0.Add(-time.Hour), 0}, // fetched earlier
		{forged, future, 0},             // a fetch time in the future is not believed
	} {
		if n, err := f.Import(bundleOf(step.body, step.fetchedAt)); n != step.added || err != nil {
			t.Fatalf("step %d: Import = %d, %v; want %d", i, n, err, step.added)
		}
	}
	f2, err := New(Options{Dir: dir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Fetcher{f, f2} {
		if got, err := f.Get(context.Background(), fx.crlURL); err != nil || !bytes.Equal(got, genuine) {
			t.Fatalf("Get: %v; want the genuine CRL", err)
		}
	}

	// A forged entry claiming a future fetch yields to a genuine import.
	f3, err := New(Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		body      []byte
		fetchedAt time.Time
	}{{forged, future}, {genuine, t0}} {
		if n, err := f3.Import(bundleOf(step.body, step.fetchedAt)); n != 1 || err != nil {
			t.Fatalf("step %d: Import = %d, %v; want 1", i, n, err)
		}
	}
	if got, err := f3.Get(context.Background(), fx.crlURL); err != nil || !bytes.Equal(got, genuine) {
		t.Fatalf("Get: %v; want the genuine CRL", err)
	}
}

// TestBundleDirectoryLooseCRL: a CRL's file name does not say whether it
// is the VCEK or the VLEK CRL; only its KDS path does.
func TestBundleDirectoryLooseCRL(t *testing.T) {
	fx := loadFixtures(t)
	vlekCRL := fx.crl(t, 2, t0, t0.Add(time.Hour))
	for name, body := range map[string][]byte{
		"crl.der":           vlekCRL,
		"milan-vlek.pem":    pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: vlekCRL}),
		"Milan/crl":         vlekCRL,
		"vlek/v2/Milan/crl": vlekCRL,
	} {
		dir := t.TempDir()
		writeDirFixture(t, dir, map[string][]byte{name: body})
		if _, err := New(Options{Bundles: []string{dir}, Now: func() time.Time { return t0 }}); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "vcek,vlek}/v1/{product line}/crl") {
			t.Errorf("a CRL at %s: %v, want ErrMalformed naming the KDS path", name, err)
		}
	}
	dir := t.TempDir()
	writeDirFixture(t, dir, map[string][]byte{"vlek/v1/Milan/crl": vlekCRL})
	f, err := New(Options{Bundles: []string{dir}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Get(context.Background(), fx.vlekCRLURL); err != nil || !bytes.Equal(got, vlekCRL) {
		t.Fatalf("the VLEK CRL at its KDS path: %v", err)
	}
	if _, err := f.Get(context.Background(), fx.crlURL); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the VCEK CRL: %v, want ErrNotFound", err)
	}
}

// TestBundleSingleFile: Options.Bundles (trustbound verify --collateral)
// takes one raw collateral file, classified by its content.
func TestBundleSingleFile(t *testing.T) {
	fx := loadFixtures(t)
	crl := fx.crl(t, 1, t0, t0.Add(time.Hour))
	dir := t.TempDir()
	writeDirFixture(t, dir, map[string][]byte{
		"vcek.pem":                          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.vcek}),
		"vcek.der":                          fx.vcek,
		"ask_ark_milan.pem":                 fx.chain,
		"kdsintf.amd.com/vcek/v1/Milan/crl": crl,
		"crl.der":                           crl,
		"notes.txt":                         []byte("collateral for the air-gapped site\n"),
		"empty":                             nil,
	})
	at := func() time.Time { return t0 }
	for name, want := range map[string]struct {
		url  string
		body []byte
	}{
		"vcek.pem":                          {fx.vcekURL, fx.vcek},
		"vcek.der":                          {fx.vcekURL, fx.vcek},
		"ask_ark_milan.pem":                 {fx.chainURL, fx.chain},
		"kdsintf.amd.com/vcek/v1/Milan/crl": {fx.crlURL, crl},
	} {
		f, err := New(Options{Bundles: []string{filepath.Join(dir, filepath.FromSlash(name))}, Now: at})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, err := f.Get(context.Background(), want.url); err != nil || !bytes.Equal(got, want.body) || len(f.mem) != 1 {
			t.Errorf("%s: Get(%s): %v (%d entries)", name, want.url, err, len(f.mem))
		}
	}
	for _, name := range []string{"crl.der", "notes.txt", "empty"} {
		if _, err := New(Options{Bundles: []string{filepath.Join(dir, name)}, Now: at}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}
