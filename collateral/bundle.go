package collateral

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
)

const (
	bundleFormat     = "trustbound-collateral"
	bundleVersion    = 1
	maxBundleSize    = 64 << 20
	maxBundleEntries = 10000
)

// bundleDoc is the offline bundle (see the package documentation).
type bundleDoc struct {
	Version int           `json:"version"`
	Format  string        `json:"format"`
	Entries []bundleEntry `json:"entries"`
}

type bundleEntry struct {
	URL       string    `json:"url"`
	Body      []byte    `json:"body"`
	FetchedAt time.Time `json:"fetchedAt"`
}

// Export writes every entry of the cache, the bundles and the cache
// directory, fresh or not, as one bundle, sorted by URL.
func (f *Fetcher) Export(w io.Writer) error {
	all := map[string]*entry{}
	f.cacheMu.RLock()
	for u, e := range f.mem {
		all[u] = e
	}
	f.cacheMu.RUnlock()
	if f.dir != "" {
		disk, err := f.readAllDisk()
		if err != nil {
			return fmt.Errorf("collateral: export: %w", err)
		}
		for _, e := range disk {
			if better(e, all[e.url]) {
				all[e.url] = e
			}
		}
	}
	entries := make([]*entry, 0, len(all))
	for _, e := range all {
		entries = append(entries, e)
	}
	return writeBundle(w, entries)
}

func writeBundle(w io.Writer, entries []*entry) error {
	slices.SortFunc(entries, func(a, b *entry) int { return strings.Compare(a.url, b.url) })
	doc := bundleDoc{Version: bundleVersion, Format: bundleFormat, Entries: []bundleEntry{}}
	for _, e := range entries {
		doc.Entries = append(doc.Entries, bundleEntry{URL: e.url, Body: e.body, FetchedAt: e.fetchedAt.UTC()})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Import adds the entries of a bundle to the cache (and the cache
// directory), each unless the cache has one that expires later, and
// returns how many it added. A bundle that does not decode strictly adds
// nothing.
func (f *Fetcher) Import(r io.Reader) (int, error) {
	entries, err := readBundle(r)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if cur := f.lookup(e.url, f.now()); !better(e, cur) {
			continue
		}
		f.remember(e, true)
		if f.dir != "" {
			if err := f.writeDisk(e); err != nil {
				return n, fmt.Errorf("collateral: import: %w", err)
			}
		}
		n++
	}
	return n, nil
}

// readBundle strictly decodes a bundle: bounded, no unknown fields, no
// trailing data, no duplicate URLs, each URL one Get accepts and each body
// valid for it.
func readBundle(r io.Reader) ([]*entry, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: bundle: %v", ErrMalformed, err)
	}
	if len(data) > maxBundleSize {
		return nil, fmt.Errorf("%w: bundle exceeds %d bytes", ErrMalformed, maxBundleSize)
	}
	var doc bundleDoc
	if err := decodeStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: bundle: %v", ErrMalformed, err)
	}
	if doc.Version != bundleVersion || doc.Format != bundleFormat {
		return nil, fmt.Errorf("%w: bundle is version %d format %q, want version %d format %q", ErrMalformed, doc.Version, doc.Format, bundleVersion, bundleFormat)
	}
	if len(doc.Entries) > maxBundleEntries {
		return nil, fmt.Errorf("%w: bundle has %d entries, at most %d allowed", ErrMalformed, len(doc.Entries), maxBundleEntries)
	}
	seen := map[string]bool{}
	out := make([]*entry, 0, len(doc.Entries))
	for i, be := range doc.Entries {
		if seen[be.URL] {
			return nil, fmt.Errorf("%w: bundle entry %d: %s appears twice", ErrMalformed, i, be.URL)
		}
		seen[be.URL] = true
		if be.FetchedAt.IsZero() || len(be.Body) == 0 || len(be.Body) > maxBody {
			return nil, fmt.Errorf("%w: bundle entry %d (%s): no fetchedAt, or body size %d outside 1..%d", ErrMalformed, i, be.URL, len(be.Body), maxBody)
		}
		k, err := classify(be.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: bundle entry %d: %w", ErrMalformed, i, err)
		}
		if err := validate(k, be.URL, be.Body); err != nil {
			return nil, fmt.Errorf("bundle entry %d: %w", i, err)
		}
		out = append(out, newEntry(be.URL, be.Body, be.FetchedAt))
	}
	return out, nil
}

// loadBundle reads a bundle file or a directory of raw collateral files.
func loadBundle(path string, log *slog.Logger) ([]*entry, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("collateral: bundle: %w", err)
	}
	if fi.IsDir() {
		return loadDir(path, log)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("collateral: bundle: %w", err)
	}
	defer fh.Close()
	entries, err := readBundle(fh)
	if err != nil {
		return nil, fmt.Errorf("collateral: bundle %s: %w", path, err)
	}
	return entries, nil
}

// kdsPath matches a file placed at its KDS URL path under a directory.
var kdsPath = regexp.MustCompile(`^(?:kdsintf\.amd\.com/)?((?:vcek|vlek)/v1/[A-Za-z0-9]{1,32}/(?:crl|cert_chain))$`)

// loadDir reads a directory of raw collateral files, matched to their URLs
// as the package documentation says. A file placed at a KDS path must be
// valid for it; other files that match nothing are skipped.
func loadDir(root string, log *slog.Logger) ([]*entry, error) {
	byURL := map[string]*entry{}
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := os.Stat(path) // follows a symlinked file
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		if files++; files > maxBundleEntries {
			return fmt.Errorf("%w: more than %d files", ErrMalformed, maxBundleEntries)
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if fi.Size() > maxBody {
			log.Warn("collateral: skipping bundle file larger than 1 MiB", "file", rel)
			return nil
		}
		body, err := readFileBounded(path, maxBody)
		if err != nil {
			return err
		}
		url, body, err := matchFile(rel, body)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if url == "" {
			log.Warn("collateral: skipping bundle file that is no known collateral", "file", rel)
			return nil
		}
		if e := newEntry(url, body, fi.ModTime()); better(e, byURL[url]) {
			byURL[url] = e
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collateral: bundle directory %s: %w", root, err)
	}
	out := make([]*entry, 0, len(byURL))
	for _, e := range byURL {
		out = append(out, e)
	}
	return out, nil
}

// matchFile returns the KDS URL a raw file at rel is the body of, and that
// body as the KDS serves it; "" if it is no known collateral.
func matchFile(rel string, body []byte) (string, []byte, error) {
	url, body, err := matchFileURL(rel, body)
	if err != nil || url == "" {
		return "", nil, err
	}
	k, err := classify(url)
	if err != nil {
		return "", nil, err
	}
	if err := validate(k, url, body); err != nil {
		return "", nil, err
	}
	return url, body, nil
}

func matchFileURL(rel string, body []byte) (string, []byte, error) {
	if m := kdsPath.FindStringSubmatch(rel); m != nil {
		if strings.HasSuffix(m[1], "/crl") {
			body = derOf(body, "X509 CRL")
		}
		return "https://" + hostKDS + "/" + m[1], body, nil
	}
	if crl, err := parseCRL(body); err == nil {
		line, ok := strings.CutPrefix(crl.Issuer.CommonName, "ARK-")
		if !ok || !isProductLine(line) {
			return "", nil, nil
		}
		signer := abi.VcekReportSigner
		if strings.Contains(strings.ToLower(filepath.Base(rel)), "vlek") {
			signer = abi.VlekReportSigner
		}
		return kds.CrlLinkByKey(line, signer), crl.Raw, nil
	}
	if ask, _, err := kds.ParseProductCertChain(body); err == nil {
		c, err := x509.ParseCertificate(ask)
		if err != nil {
			return "", nil, nil
		}
		signer, line := abi.VcekReportSigner, ""
		if l, ok := strings.CutPrefix(c.Subject.CommonName, "SEV-VLEK-"); ok {
			signer, line = abi.VlekReportSigner, l
		} else if l, ok := strings.CutPrefix(c.Subject.CommonName, "SEV-"); ok {
			line = l
		}
		if !isProductLine(line) {
			return "", nil, nil
		}
		return kds.ProductCertChainURL(signer, line), body, nil
	}
	if certs, err := parseCerts(body); err == nil && len(certs) == 1 {
		exts, err := kds.VcekCertificateExtensions(certs[0])
		if err != nil {
			return "", nil, nil
		}
		product, err := kds.ParseProductName(exts.ProductName, abi.VcekReportSigner)
		if err != nil {
			return "", nil, nil
		}
		return kds.VCEKCertURL(kds.ProductLine(product), exts.HWID, exts.TCBVersion), certs[0].Raw, nil
	}
	return "", nil, nil
}

// derOf returns the DER inside body if body is one PEM block of type typ,
// else body.
func derOf(body []byte, typ string) []byte {
	if b, rest := pem.Decode(body); b != nil && b.Type == typ && len(bytes.TrimSpace(rest)) == 0 {
		return b.Bytes
	}
	return body
}
