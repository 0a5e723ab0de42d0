package collateral

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// Getter returns the body at a collateral URL.
type Getter interface {
	Get(ctx context.Context, url string) ([]byte, error)
}

var _ Getter = (*Fetcher)(nil)

const (
	maxBody              = 1 << 20          // bytes of one collateral body
	defaultTTL           = 24 * time.Hour   // freshness of a body without dates
	defaultRate          = 2                // requests per second per host
	defaultBurst         = 2                // requests at once per host
	defaultMaxRetryWait  = 5 * time.Second  // longest Retry-After honoured
	maxRetries           = 2                // after the first attempt
	requestTimeout       = 30 * time.Second // one HTTP attempt
	staleRefetchInterval = time.Minute      // between refetches of a source's stale copy
)

// Options configure a Fetcher. The zero value is an offline, memory-only
// Fetcher with nothing in it.
type Options struct {
	// Dir is the on-disk cache directory, created 0700 if missing and
	// refused if group- or world-writable; "" keeps the cache in memory.
	Dir string
	// Client fetches from the vendor services; nil means no network: the
	// cache and the bundles only. Its CheckRedirect is replaced so that
	// redirects never leave the host asked.
	Client *http.Client
	// Now is the clock (default time.Now); Sleep waits for d unless ctx ends
	// first (default a timer). Tests inject both.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Rate is the sustained requests per second to each vendor host
	// (default 2: the AMD KDS throttles); Burst how many may go at once
	// (default 2).
	Rate  float64
	Burst int
	// MaxRetryWait is the longest Retry-After honoured (default 5s); a
	// longer one ends the retries at once.
	MaxRetryWait time.Duration
	// DisableMirrors turns off asking Azure's cache for a VCEK when the AMD
	// KDS is unavailable.
	DisableMirrors bool
	// Hosts sends the requests for a vendor host (kdsintf.amd.com,
	// global.acccache.azure.net) to another base URL, such as a test server
	// or a private mirror ("http://127.0.0.1:8080"). It adds no host: URLs
	// Get accepts stay those of the vendors.
	Hosts map[string]string
	// Bundles are offline bundles to serve from, in order: bundle files
	// written by Export, or directories of raw collateral files (see the
	// package documentation). They are read once, by New.
	Bundles []string
	// Logger receives fetches at debug level and ignored cache files and
	// mirror fallbacks at warning level (default: discard).
	Logger *slog.Logger
}

// Fetcher gets collateral from its cache, its bundles or the vendor
// services. It is safe for concurrent use.
type Fetcher struct {
	dir          string
	client       *http.Client
	now          func() time.Time
	sleep        func(context.Context, time.Duration) error
	rate         float64
	burst        int
	maxRetryWait time.Duration
	mirrors      bool
	hosts        map[string]*url.URL
	log          *slog.Logger

	cacheMu sync.RWMutex
	mem     map[string]*entry // by URL

	callsMu sync.Mutex
	calls   map[string]*call // in-flight fetches by URL

	limitMu sync.Mutex
	limits  map[string]*bucket // by vendor host
}

// New returns a Fetcher configured by opts, with its bundles loaded.
func New(opts Options) (*Fetcher, error) {
	f := &Fetcher{
		dir:          opts.Dir,
		now:          opts.Now,
		sleep:        opts.Sleep,
		rate:         opts.Rate,
		burst:        opts.Burst,
		maxRetryWait: opts.MaxRetryWait,
		mirrors:      !opts.DisableMirrors,
		hosts:        map[string]*url.URL{},
		log:          opts.Logger,
		mem:          map[string]*entry{},
		calls:        map[string]*call{},
		limits:       map[string]*bucket{},
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.sleep == nil {
		f.sleep = sleepContext
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case f.rate == 0:
		f.rate = defaultRate
	case f.rate < 0 || math.IsNaN(f.rate) || math.IsInf(f.rate, 0):
		return nil, fmt.Errorf("collateral: Rate %v is not a positive number of requests per second", opts.Rate)
	}
	switch {
	case f.burst == 0:
		f.burst = defaultBurst
	case f.burst < 0:
		return nil, fmt.Errorf("collateral: Burst %d is negative", opts.Burst)
	}
	switch {
	case f.maxRetryWait == 0:
		f.maxRetryWait = defaultMaxRetryWait
	case f.maxRetryWait < 0:
		return nil, fmt.Errorf("collateral: MaxRetryWait %v is negative", opts.MaxRetryWait)
	}
	for host, base := range opts.Hosts {
		if !isVendorHost(host) {
			return nil, fmt.Errorf("collateral: Hosts: %q is not a vendor collateral host (%v)", host, vendorHosts)
		}
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("collateral: Hosts[%q]: %q is not an http(s) base URL", host, base)
		}
		f.hosts[host] = u
	}
	if opts.Client != nil {
		c := *opts.Client
		c.CheckRedirect = sameHostRedirects
		f.client = &c
	}
	if f.dir != "" {
		if err := prepareDir(f.dir); err != nil {
			return nil, err
		}
	}
	for _, path := range opts.Bundles {
		entries, err := loadBundle(path, f.log)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			f.remember(e, false)
		}
	}
	return f, nil
}

func isVendorHost(h string) bool {
	for _, v := range vendorHosts {
		if h == v {
			return true
		}
	}
	return false
}

// prepareDir creates the cache directory 0700, and refuses one that others
// may write to (they could plant collateral).
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("collateral: cache directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("collateral: cache directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("collateral: cache directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("collateral: cache directory %s is writable by others (mode %v): chmod 700 it", dir, fi.Mode().Perm())
	}
	return nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// entry is one cached collateral body. Entries are never modified.
type entry struct {
	url       string
	body      []byte
	fetchedAt time.Time
	expiresAt time.Time // derived from body and fetchedAt
}

func newEntry(url string, body []byte, fetchedAt time.Time) *entry {
	return &entry{url: url, body: body, fetchedAt: fetchedAt, expiresAt: expiry(body, fetchedAt)}
}

func (e *entry) fresh(now time.Time) bool { return now.Before(e.expiresAt) }

func (e *entry) stale(cause error) *StaleError {
	return &StaleError{URL: e.url, Body: bytes.Clone(e.body), Expired: e.expiresAt, Err: cause}
}

// better reports whether a should replace b: it expires later, or as late
// and was fetched later.
func better(a, b *entry) bool {
	if b == nil {
		return true
	}
	if !a.expiresAt.Equal(b.expiresAt) {
		return a.expiresAt.After(b.expiresAt)
	}
	return a.fetchedAt.After(b.fetchedAt)
}

// Get returns the collateral at url: from the cache or the bundles while
// fresh, else from the vendor (or, for a VCEK the KDS cannot give now, from
// Azure's cache). It fails with ErrRefused, ErrNotFound, ErrUnavailable or a
// *StaleError (which is ErrUnavailable); it never returns a stale body
// without an error. The caller owns the returned slice.
func (f *Fetcher) Get(ctx context.Context, url string) ([]byte, error) {
	now := f.now()
	f.cacheMu.RLock()
	e := f.mem[url] // only URLs classify accepts are ever kept
	f.cacheMu.RUnlock()
	if e != nil && e.fresh(now) {
		return bytes.Clone(e.body), nil
	}
	k, err := classify(url)
	if err != nil {
		return nil, err
	}
	if e := f.lookup(url, now); e != nil && e.fresh(now) {
		return bytes.Clone(e.body), nil
	}
	return f.coalesce(ctx, url, func(ctx context.Context) ([]byte, error) {
		return f.refresh(ctx, url, k)
	})
}

// refresh runs once per URL at a time: it fetches unless another call has
// just done so, and stores what it fetched.
func (f *Fetcher) refresh(ctx context.Context, url string, k kind) ([]byte, error) {
	now := f.now()
	old := f.lookup(url, now)
	if old != nil && old.fresh(now) {
		return old.body, nil
	}
	if f.client == nil {
		if old != nil {
			return nil, old.stale(errors.New("no network configured (offline)"))
		}
		return nil, fmt.Errorf("%w: %s is in neither the cache nor the offline bundles (no network configured)", ErrNotFound, url)
	}
	if old != nil && !old.expiresAt.After(old.fetchedAt) && now.Sub(old.fetchedAt) < staleRefetchInterval {
		return nil, old.stale(fmt.Errorf("the vendor's copy was already expired when fetched at %s; not asking again before %s",
			old.fetchedAt.UTC().Format(time.RFC3339), staleRefetchInterval))
	}
	body, err := f.fetch(ctx, url, k)
	if err != nil {
		if old != nil {
			return nil, old.stale(err)
		}
		return nil, err
	}
	e := newEntry(url, body, f.now())
	f.remember(e, true)
	if f.dir != "" {
		if err := f.writeDisk(e); err != nil {
			f.log.Warn("collateral: cannot write cache file", "url", url, "err", err)
		}
	}
	if !e.fresh(now) {
		return nil, e.stale(fmt.Errorf("the vendor's copy expired at %s", e.expiresAt.UTC().Format(time.RFC3339)))
	}
	return body, nil
}

// lookup returns the best entry for url in memory and, unless memory has a
// fresh one, on disk.
func (f *Fetcher) lookup(url string, now time.Time) *entry {
	f.cacheMu.RLock()
	e := f.mem[url]
	f.cacheMu.RUnlock()
	if f.dir == "" || (e != nil && e.fresh(now)) {
		return e
	}
	d, err := f.readDisk(url)
	if err != nil {
		f.log.Warn("collateral: ignoring cache file", "url", url, "err", err)
		return e
	}
	if d == nil {
		return e
	}
	return f.remember(d, false)
}

// remember keeps e in memory if it is better than what is there (or
// always, if replace) and returns the entry kept.
func (f *Fetcher) remember(e *entry, replace bool) *entry {
	f.cacheMu.Lock()
	defer f.cacheMu.Unlock()
	if cur := f.mem[e.url]; replace || better(e, cur) {
		f.mem[e.url] = e
		return e
	}
	return f.mem[e.url]
}

// call is one in-flight fetch that concurrent Gets of a URL share.
type call struct {
	done    chan struct{}
	body    []byte
	err     error
	waiters int
	cancel  context.CancelFunc
}

// coalesce runs fn once for concurrent callers with the same key. fn runs
// with the first caller's context values but is cancelled only when every
// caller waiting for it has given up.
func (f *Fetcher) coalesce(ctx context.Context, key string, fn func(context.Context) ([]byte, error)) ([]byte, error) {
	f.callsMu.Lock()
	c := f.calls[key]
	if c == nil {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call{done: make(chan struct{}), cancel: cancel}
		f.calls[key] = c
		go func() {
			c.body, c.err = fn(cctx)
			f.callsMu.Lock()
			if f.calls[key] == c {
				delete(f.calls, key)
			}
			f.callsMu.Unlock()
			cancel()
			close(c.done)
		}()
	}
	c.waiters++
	f.callsMu.Unlock()

	select {
	case <-c.done:
		var se *StaleError
		if errors.As(c.err, &se) {
			cp := *se
			cp.Body = bytes.Clone(se.Body)
			return nil, &cp
		}
		return bytes.Clone(c.body), c.err
	case <-ctx.Done():
		f.callsMu.Lock()
		c.waiters--
		if c.waiters == 0 {
			c.cancel()
			if f.calls[key] == c {
				delete(f.calls, key)
			}
		}
		f.callsMu.Unlock()
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, key, ctx.Err())
	}
}
