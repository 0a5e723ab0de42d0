package collateral

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustbound/trustbound/api"
)

// maxCacheFile bounds one cache file: a base64 body, its headers and its
// metadata.
const maxCacheFile = 3 * maxBody

// maxHeaders bounds the headers kept with one entry (an issuer chain is
// about 2 KiB).
const maxHeaders = 64 << 10

// cacheFile is the on-disk form of an entry (see the package
// documentation): version 1 without headers, version 2 with them.
type cacheFile struct {
	Version   int               `json:"version"`
	URL       string            `json:"url"`
	FetchedAt time.Time         `json:"fetchedAt"`
	ExpiresAt time.Time         `json:"expiresAt"`
	SHA256    string            `json:"sha256"`
	Body      []byte            `json:"body"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// formatVersion is the version of a cache file or bundle: 1 if it carries
// no headers (so that older readers still read it), else 2.
func formatVersion(withHeaders bool) int {
	if withHeaders {
		return 2
	}
	return 1
}

// checkVersion checks a cache file's or bundle's version against whether
// it carries headers.
func checkVersion(what string, version int, withHeaders bool) error {
	switch {
	case version == 2:
		return nil
	case version == 1 && !withHeaders:
		return nil
	case version == 1:
		return fmt.Errorf("%w: %s version 1 carries headers (version 2 may)", ErrMalformed, what)
	}
	return fmt.Errorf("%w: %s version %d, want 1 or 2", ErrMalformed, what, version)
}

// headersSize is the number of bytes of hdr's names and values.
func headersSize(hdr map[string]string) int {
	n := 0
	for k, v := range hdr {
		n += len(k) + len(v)
	}
	return n
}

func cacheName(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:]) + ".json"
}

// readDisk returns the cached entry for url, nil if there is none, or an
// error if the file is not a valid entry for url.
func (f *Fetcher) readDisk(url string) (*entry, error) {
	data, err := readFileBounded(filepath.Join(f.dir, cacheName(url)), maxCacheFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := decodeCacheFile(data)
	if err != nil {
		return nil, err
	}
	if e.url != url {
		return nil, fmt.Errorf("%w: cache file for %s holds %s", ErrMalformed, url, e.url)
	}
	return e, nil
}

// decodeCacheFile strictly decodes a cache file and checks its body
// against its hash and its URL's kind. The expiry is recomputed from the
// body, never taken from the file.
func decodeCacheFile(data []byte) (*entry, error) {
	var c cacheFile
	if err := api.DecodeStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%w: cache file: %v", ErrMalformed, err)
	}
	if err := checkVersion("cache file", c.Version, c.Headers != nil); err != nil {
		return nil, err
	}
	if headersSize(c.Headers) > maxHeaders {
		return nil, fmt.Errorf("%w: cache file for %s: headers exceed %d bytes", ErrMalformed, c.URL, maxHeaders)
	}
	if c.FetchedAt.IsZero() || len(c.Body) == 0 || len(c.Body) > maxBody {
		return nil, fmt.Errorf("%w: cache file for %s: no fetch time, or body size %d outside 1..%d", ErrMalformed, c.URL, len(c.Body), maxBody)
	}
	sum := sha256.Sum256(c.Body)
	if c.SHA256 != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("%w: cache file for %s: body does not match its SHA-256", ErrMalformed, c.URL)
	}
	k, err := classify(c.URL)
	if err != nil {
		return nil, err
	}
	if err := validateEntry(k, c.URL, c.Body, c.Headers); err != nil {
		return nil, err
	}
	return newEntryHeaders(c.URL, c.Body, c.Headers, c.FetchedAt), nil
}

// writeDisk writes e atomically: a 0600 temporary file, synced, renamed.
func (f *Fetcher) writeDisk(e *entry) error {
	sum := sha256.Sum256(e.body)
	data, err := json.Marshal(cacheFile{
		Version:   formatVersion(e.headers != nil),
		URL:       e.url,
		FetchedAt: e.fetchedAt.UTC(),
		ExpiresAt: e.expiresAt.UTC(),
		SHA256:    hex.EncodeToString(sum[:]),
		Body:      e.body,
		Headers:   e.headers,
	})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(f.dir, cacheName(e.url)))
}

// readAllDisk returns every valid entry of the cache directory; invalid
// files are logged and skipped.
func (f *Fetcher) readAllDisk() ([]*entry, error) {
	des, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, err
	}
	var out []*entry
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || len(name) != 64+len(".json") || !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := readFileBounded(filepath.Join(f.dir, name), maxCacheFile)
		if err == nil {
			var e *entry
			if e, err = decodeCacheFile(data); err == nil {
				if cacheName(e.url) == name {
					out = append(out, e)
					continue
				}
				err = fmt.Errorf("%w: holds %s", ErrMalformed, e.url)
			}
		}
		f.log.Warn("collateral: ignoring cache file", "file", name, "err", err)
	}
	return out, nil
}

// readFileBounded reads a file of at most limit bytes.
func readFileBounded(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrMalformed, path, limit)
	}
	return data, nil
}
