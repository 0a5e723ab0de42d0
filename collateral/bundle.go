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

	"github.com/trustbound/trustbound/api"
)

const (
	bundleFormat     = "trustbound-collateral"
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
	URL       string            `json:"url"`
	Body      []byte            `json:"body"`
	FetchedAt time.Time         `json:"fetchedAt"`
	Headers   map[string]string `json:"headers,omitempty"` // version 2
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
		now := f.now()
		for _, e := range disk {
			if e = capFetched(e, now); better(e, all[e.url], now) {
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
	doc := bundleDoc{Format: bundleFormat, Entries: []bundleEntry{}}
	withHeaders := false
	for _, e := range entries {
		doc.Entries = append(doc.Entries, bundleEntry{URL: e.url, Body: e.body, FetchedAt: e.fetchedAt.UTC(), Headers: e.headers})
		withHeaders = withHeaders || e.headers != nil
	}
	doc.Version = formatVersion(withHeaders)
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

// Import adds the entries of a bundle, or of a dcap-qvl collateral JSON
// file, to the cache (and the cache directory), each unless the cache has
// one fetched as late or later (fetch times capped at now), and returns
// how many it added. A bundle that does not decode strictly adds nothing.
func (f *Fetcher) Import(r io.Reader) (int, error) {
	entries, err := readBundle(r)
	if err != nil {
		return 0, err
	}
	now := f.now()
	n := 0
	for _, e := range entries {
		e = capFetched(e, now)
		if cur := f.lookup(e.url, now); !better(e, cur, now) {
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
// and its headers valid for it. A dcap-qvl collateral JSON file (qvl.go)
// is read as the bundle of its entries.
func readBundle(r io.Reader) ([]*entry, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: bundle: %v", ErrMalformed, err)
	}
	if len(data) > maxBundleSize {
		return nil, fmt.Errorf("%w: bundle exceeds %d bytes", ErrMalformed, maxBundleSize)
	}
	if isQVL(data) {
		return parseQVL(data)
	}
	var doc bundleDoc
	if err := api.DecodeStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: bundle: %v", ErrMalformed, err)
	}
	if doc.Format != bundleFormat {
		return nil, fmt.Errorf("%w: bundle is format %q, want %q", ErrMalformed, doc.Format, bundleFormat)
	}
	if err := checkVersion("bundle", doc.Version, slices.ContainsFunc(doc.Entries, func(be bundleEntry) bool { return be.Headers != nil })); err != nil {
		return nil, err
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
		if be.FetchedAt.IsZero() || len(be.Body) == 0 || len(be.Body) > maxBody || headersSize(be.Headers) > maxHeaders {
			return nil, fmt.Errorf("%w: bundle entry %d (%s): no fetchedAt, body size %d outside 1..%d, or headers over %d bytes", ErrMalformed, i, be.URL, len(be.Body), maxBody, maxHeaders)
		}
		k, err := classify(be.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: bundle entry %d: %w", ErrMalformed, i, err)
		}
		if err := validateEntry(k, be.URL, be.Body, be.Headers); err != nil {
			return nil, fmt.Errorf("bundle entry %d: %w", i, err)
		}
		out = append(out, newEntryHeaders(be.URL, be.Body, be.Headers, be.FetchedAt))
	}
	return out, nil
}

// loadBundle reads a bundle file, a dcap-qvl collateral JSON file, a
// single raw collateral file or a directory of raw collateral files, with
// fetch times capped at now.
func loadBundle(path string, now time.Time, log *slog.Logger) ([]*entry, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("collateral: bundle: %w", err)
	}
	if fi.IsDir() {
		return loadDir(path, now, log)
	}
	data, err := readFileBounded(path, maxBundleSize)
	if err != nil {
		return nil, fmt.Errorf("collateral: bundle: %w", err)
	}
	var entries []*entry
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		entries, err = readBundle(bytes.NewReader(data))
	} else {
		entries, err = loadFile(path, fi, data)
	}
	if err != nil {
		return nil, fmt.Errorf("collateral: bundle %s: %w", path, err)
	}
	for i, e := range entries {
		entries[i] = capFetched(e, now)
	}
	return entries, nil
}

// loadFile reads one raw collateral file (not JSON) as the entry its
// content names, fetched when it was last modified.
func loadFile(path string, fi fs.FileInfo, data []byte) ([]*entry, error) {
	if len(data) > maxBody {
		return nil, fmt.Errorf("%w: a raw collateral file exceeds %d bytes", ErrMalformed, maxBody)
	}
	url, body, err := matchFile(filepath.ToSlash(path), data)
	if err != nil {
		return nil, err
	}
	if url == "" {
		return nil, fmt.Errorf("%w: neither a bundle, dcap-qvl collateral JSON, a VCEK certificate (DER or PEM) nor an AMD ASK/ARK cert_chain", ErrMalformed)
	}
	return []*entry{newEntry(url, body, fi.ModTime())}, nil
}

// kdsPath matches a file placed at its KDS URL path, under any directories
// (such as kdsintf.amd.com/ in a `wget -x` copy).
var kdsPath = regexp.MustCompile(`(?:^|/)((?:vcek|vlek)/v1/[A-Za-z0-9]{1,32}/(?:crl|cert_chain))$`)

// loadDir reads a directory of raw collateral files, matched to their URLs
// as the package documentation says, with fetch times capped at now. A
// file placed at a KDS path must be valid for it, and a CRL elsewhere is
// refused; other files that match nothing are skipped.
func loadDir(root string, now time.Time, log *slog.Logger) ([]*entry, error) {
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
		if isQVL(body) {
			es, err := parseQVL(body)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			for _, e := range es {
				if e = capFetched(e, now); better(e, byURL[e.url], now) {
					byURL[e.url] = e
				}
			}
			return nil
		}
		url, body, err := matchFile(rel, body)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if url == "" {
			log.Warn("collateral: skipping bundle file that is no known collateral", "file", rel)
			return nil
		}
		if e := capFetched(newEntry(url, body, fi.ModTime()), now); better(e, byURL[url], now) {
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

// matchFile returns the KDS URL a raw file at rel (a slash path) is the
// body of, and that body as the KDS serves it; "" if it is no known
// collateral. A CRL not at its KDS path is an error.
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
	if crl, err := parseCRL(derOf(body, "X509 CRL")); err == nil {
		// AMD's ARK issues both the VCEK and the VLEK CRL of its line, so
		// a CRL cannot say which it is: only its place can.
		return "", nil, fmt.Errorf("%w: a CRL (issued by %q) is taken only at its AMD KDS path, {vcek,vlek}/v1/{product line}/crl "+
			"(e.g. vcek/v1/Milan/crl), as its content cannot say whether it is the VCEK or the VLEK CRL; "+
			"Intel CRLs only within dcap-qvl collateral JSON or a bundle", ErrMalformed, crl.Issuer.CommonName)
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
