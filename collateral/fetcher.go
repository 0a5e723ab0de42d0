package collateral

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Getter returns the body at a collateral URL.
//
// A Getter that caches should also be an Invalidator: a verifier that
// rejects a body it got (a signature that does not verify against its
// trusted roots, a wrong issuer) calls Invalidate with that URL, if its
// Getter has the method, so that the next Get asks the vendor again rather
// than serve the rejected copy until it expires.
type Getter interface {
	Get(ctx context.Context, url string) ([]byte, error)
}

// Invalidator is the optional capability of a caching Getter: Invalidate
// forgets what it holds for a URL.
type Invalidator interface {
	Invalidate(url string)
}

var (
	_ Getter      = (*Fetcher)(nil)
	_ Invalidator = (*Fetcher)(nil)
)

const (
	maxBody              = 1 << 20          // bytes of one collateral body
	defaultTTL           = 24 * time.Hour   // freshness of a body without dates
	defaultRate          = 2                // requests per second per host
	defaultBurst         = 2                // requests at once per host
	defaultMaxRetryWait  = 5 * time.Second  // longest Retry-After honoured
	maxRetries           = 2                // after the first attempt
	requestTimeout       = 30 * time.Second // one HTTP attempt
	staleRefetchInterval = time.Minute      // between refetches of a source's stale copy
	negativeTTL          = 10 * time.Minute // how long a "not found" is believed
	maxNegative          = 4096             // URLs remembered as not found
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
	// Now is the clock of freshness (default time.Now): an entry is served
	// while Now is before its expiry, and what is fetched is filed as
	// fetched at Now. It must tell the current time: never set it to a
	// verification time (trustbound verify --at), or the cache files what
	// it fetches under that time. A fetch time later than Now, in a cache
	// file or a bundle, is not believed (see the package documentation).
	// Rate limits, Retry-After and remembered 404s run on the monotonic
	// wall clock (time.Now), never on Now.
	Now func() time.Time
	// Sleep waits for d unless ctx ends first (default a timer). Tests
	// inject it with Now.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rate is the sustained requests per second to each vendor host
	// (default 2: the AMD KDS throttles); Burst how many may go at once
	// (default 2).
	Rate  float64
	Burst int
	// MaxRetryWait is the longest wait accepted (default 5s), for a
	// Retry-After or for a rate limit token: a longer Retry-After ends the
	// retries at once, and a longer (or one past the caller's deadline)
	// wait for a token fails at once with ErrUnavailable, leaving the
	// token to others.
	MaxRetryWait time.Duration
	// DisableMirrors turns off asking Azure's cache for a VCEK when the AMD
	// KDS is unavailable.
	DisableMirrors bool
	// Hosts sends the requests for a vendor host (kdsintf.amd.com,
	// global.acccache.azure.net, api.trustedservices.intel.com,
	// certificates.trustedservices.intel.com) to another base URL, such as
	// a test server or a private mirror ("http://127.0.0.1:8080"). It adds
	// no host: URLs Get accepts stay those of the vendors.
	Hosts map[string]string
	// PCCS is the https base URL of an Intel PCCS (e.g.
	// https://pccs.example:8081/sgx/certification/v4/) to ask instead of
	// Intel PCS: every PCS v4 path goes to it, and so does the root CA CRL
	// (its rootcacrl path). Collateral is still cached and bundled under
	// the PCS URLs; Get also accepts the PCCS's own URLs for them.
	PCCS string
	// Bundles are offline bundles to serve from, in order: bundle files
	// written by Export, dcap-qvl collateral JSON files, single raw
	// collateral files (a VCEK, a cert_chain), or directories of raw
	// collateral files (see the package documentation). They are read
	// once, by New.
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
	now          func() time.Time // freshness (Options.Now)
	wall         func() time.Time // rate limits and 404s: time.Now (tests: a fake)
	sleep        func(context.Context, time.Duration) error
	rate         float64
	burst        int
	maxRetryWait time.Duration
	mirrors      bool
	hosts        map[string]*url.URL
	pccsBase     string // PCCS URL prefix of the PCS paths; "" for Intel PCS
	pccsHost     string
	log          *slog.Logger

	cacheMu sync.RWMutex
	mem     map[string]*entry // by URL

	callsMu sync.Mutex
	calls   map[string]*call // in-flight fetches by URL

	limitMu sync.Mutex
	limits  map[string]*bucket // by limitKey

	negMu sync.Mutex
	neg   map[string]time.Time // URL answered not found → until when (wall)
}

// New returns a Fetcher configured by opts, with its bundles loaded.
func New(opts Options) (*Fetcher, error) {
	f := &Fetcher{
		dir:          opts.Dir,
		now:          opts.Now,
		wall:         time.Now,
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
		neg:          map[string]time.Time{},
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
	if opts.PCCS != "" {
		var err error
		if f.pccsBase, f.pccsHost, err = parsePCCS(opts.PCCS); err != nil {
			return nil, err
		}
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
	now := f.now()
	for _, path := range opts.Bundles {
		entries, err := loadBundle(path, now, f.log)
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

// entry is one cached collateral body, with the response headers its
// kind keeps (Intel issuer chains, URL-decoded). Entries are never
// modified.
type entry struct {
	url       string
	body      []byte
	headers   map[string]string
	fetchedAt time.Time
	expiresAt time.Time // derived from body, headers and fetchedAt
	capped    bool      // loaded claiming a fetch after now (capFetched)
}

func newEntry(url string, body []byte, fetchedAt time.Time) *entry {
	return newEntryHeaders(url, body, nil, fetchedAt)
}

// newEntryHeaders makes an entry that expires with its body or with the
// first certificate of its header chains to expire.
func newEntryHeaders(url string, body []byte, hdr map[string]string, fetchedAt time.Time) *entry {
	if len(hdr) == 0 {
		hdr = nil
	}
	return &entry{url: url, body: body, headers: hdr, fetchedAt: fetchedAt, expiresAt: chainsExpiry(hdr, expiry(body, fetchedAt))}
}

func (e *entry) fresh(now time.Time) bool { return now.Before(e.expiresAt) }

func (e *entry) stale(cause error) *StaleError {
	return &StaleError{URL: e.url, Expired: e.expiresAt, Err: cause}
}

// capFetched returns e, or, if e (from a cache file or a bundle) claims to
// have been fetched after now, a copy fetched at now and marked capped: a
// clock set ahead, or a forger, must not make it outrank what is fetched
// until then, nor hold back a refetch. A capped entry whose freshness
// would come from its fetch time alone (no date in its body) is stale.
func capFetched(e *entry, now time.Time) *entry {
	if !e.fetchedAt.After(now) {
		return e
	}
	c := newEntryHeaders(e.url, e.body, e.headers, now)
	c.capped = true
	if _, dated := bodyExpiry(e.body); !dated && c.expiresAt.After(now) {
		c.expiresAt = now
	}
	return c
}

// better reports whether a should replace b (nil: nothing): a was fetched
// later, fetch times capped at now. An entry whose fetch time was not
// believed (capped) replaces only nothing or another such entry, so that
// one planted with a fetch time in the future yields to any genuine copy.
// The expiry is not compared: it is the body's own claim, and a forged
// body may claim anything.
func better(a, b *entry, now time.Time) bool {
	if b == nil {
		return true
	}
	if a.capped != b.capped {
		return b.capped
	}
	return capTime(a.fetchedAt, now).After(capTime(b.fetchedAt, now))
}

func capTime(t, now time.Time) time.Time {
	if t.After(now) {
		return now
	}
	return t
}

// Get returns the collateral at url: from the cache or the bundles while
// fresh, else from the vendor (or, for a VCEK the KDS cannot give now, from
// Azure's cache). It fails with ErrRefused, ErrNotFound, ErrUnavailable or a
// *StaleError (which is ErrUnavailable); it never returns a stale body
// without an error. The caller owns the returned slice.
func (f *Fetcher) Get(ctx context.Context, url string) ([]byte, error) {
	e, err := f.get(ctx, url)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(e.body), nil
}

// cached returns the fresh in-memory entry of url, or nil.
func (f *Fetcher) cached(url string, now time.Time) *entry {
	f.cacheMu.RLock()
	e := f.mem[url] // only URLs classify accepts are ever kept
	f.cacheMu.RUnlock()
	if e != nil && e.fresh(now) {
		return e
	}
	return nil
}

// get is Get returning the shared, immutable entry.
func (f *Fetcher) get(ctx context.Context, url string) (*entry, error) {
	url = f.canonical(url)
	now := f.now()
	if e := f.cached(url, now); e != nil {
		return e, nil
	}
	k, err := classify(url)
	if err != nil {
		return nil, err
	}
	if e := f.lookup(url, now); e != nil && e.fresh(now) {
		return e, nil
	}
	deadline, _ := ctx.Deadline() // the first caller's bounds the rate limit wait
	return f.coalesce(ctx, url, func(ctx context.Context) (*entry, error) {
		return f.refresh(ctx, url, k, deadline)
	})
}

// refresh runs once per URL at a time: it fetches unless another call has
// just done so, or the vendor has just answered not found, and stores what
// it fetched. A non-zero deadline bounds the wait for the rate limit.
func (f *Fetcher) refresh(ctx context.Context, url string, k kind, deadline time.Time) (*entry, error) {
	now := f.now()
	old := f.lookup(url, now)
	if old != nil && old.fresh(now) {
		return old, nil
	}
	if f.client == nil {
		if old != nil {
			return nil, old.stale(errors.New("no network configured (offline)"))
		}
		return nil, fmt.Errorf("%w: %s is in neither the cache nor the offline bundles (no network configured)", ErrNotFound, url)
	}
	if old != nil && !old.capped && !old.expiresAt.After(old.fetchedAt) &&
		!old.fetchedAt.After(now) && now.Sub(old.fetchedAt) < staleRefetchInterval {
		return nil, old.stale(fmt.Errorf("the vendor's copy was already expired when fetched at %s; not asking again before %s",
			old.fetchedAt.UTC().Format(time.RFC3339), staleRefetchInterval))
	}
	if err := f.missing(url); err != nil {
		if old != nil {
			return nil, old.stale(err)
		}
		return nil, err
	}
	body, hdr, err := f.fetch(ctx, url, k, deadline)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			f.rememberMissing(url)
		}
		if old != nil {
			return nil, old.stale(err)
		}
		return nil, err
	}
	e := newEntryHeaders(url, body, hdr, f.now())
	f.remember(e, true)
	if f.dir != "" {
		if err := f.writeDisk(e); err != nil {
			f.log.Warn("collateral: cannot write cache file", "url", url, "err", err)
		}
	}
	if !e.fresh(now) {
		return nil, e.stale(fmt.Errorf("the vendor's copy expired at %s", e.expiresAt.UTC().Format(time.RFC3339)))
	}
	return e, nil
}

// lookup returns the best entry for url in memory and, unless memory has a
// fresh one, on disk (its fetch time capped at now).
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
	return f.remember(capFetched(d, now), false)
}

// remember keeps e in memory if it is better than what is there (or
// always, if replace) and returns the entry kept.
func (f *Fetcher) remember(e *entry, replace bool) *entry {
	now := f.now()
	f.cacheMu.Lock()
	defer f.cacheMu.Unlock()
	if cur := f.mem[e.url]; replace || better(e, cur, now) {
		f.mem[e.url] = e
		return e
	}
	return f.mem[e.url]
}

// Invalidate forgets the entry of url, in memory and in the cache
// directory, so that the next Get asks the vendor again (offline: fails
// with ErrNotFound). A verifier calls it for a body it rejects; see Getter.
func (f *Fetcher) Invalidate(url string) {
	url = f.canonical(url)
	f.cacheMu.Lock()
	_, had := f.mem[url]
	delete(f.mem, url)
	f.cacheMu.Unlock()
	if f.dir != "" {
		err := os.Remove(filepath.Join(f.dir, cacheName(url)))
		switch {
		case err == nil:
			had = true
		case !errors.Is(err, fs.ErrNotExist):
			f.log.Warn("collateral: cannot remove cache file", "url", url, "err", err)
		}
	}
	if had {
		f.log.Info("collateral: entry invalidated", "url", url)
	}
}

// missing returns an ErrNotFound if the vendor answered url not found
// less than negativeTTL ago.
func (f *Fetcher) missing(url string) error {
	f.negMu.Lock()
	defer f.negMu.Unlock()
	until, ok := f.neg[url]
	if !ok {
		return nil
	}
	now := f.wall()
	if !now.Before(until) {
		delete(f.neg, url)
		return nil
	}
	return fmt.Errorf("%w: %s: the vendor answered not found less than %s ago; not asking again for %s",
		ErrNotFound, url, negativeTTL, until.Sub(now).Round(time.Second))
}

// rememberMissing notes that the vendor answered url not found. At most
// maxNegative URLs are kept: when full, the expired ones go, else the one
// that would expire first. They are kept in memory only, never in the
// cache directory or bundles.
func (f *Fetcher) rememberMissing(url string) {
	f.negMu.Lock()
	defer f.negMu.Unlock()
	now := f.wall()
	if _, ok := f.neg[url]; !ok && len(f.neg) >= maxNegative {
		first, firstUntil := "", time.Time{}
		for u, until := range f.neg {
			if !now.Before(until) {
				delete(f.neg, u)
				continue
			}
			if first == "" || until.Before(firstUntil) {
				first, firstUntil = u, until
			}
		}
		if len(f.neg) >= maxNegative {
			delete(f.neg, first)
		}
	}
	f.neg[url] = now.Add(negativeTTL)
}

// call is one in-flight fetch that concurrent Gets of a URL share.
type call struct {
	done    chan struct{}
	e       *entry
	err     error
	waiters int
	cancel  context.CancelFunc
}

// coalesce runs fn once for concurrent callers with the same key. fn runs
// with the first caller's context values but is cancelled only when every
// caller waiting for it has given up.
func (f *Fetcher) coalesce(ctx context.Context, key string, fn func(context.Context) (*entry, error)) (*entry, error) {
	f.callsMu.Lock()
	c := f.calls[key]
	if c == nil {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call{done: make(chan struct{}), cancel: cancel}
		f.calls[key] = c
		go func() {
			c.e, c.err = fn(cctx)
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
			cp := *se // each caller its own
			return nil, &cp
		}
		return c.e, c.err
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
