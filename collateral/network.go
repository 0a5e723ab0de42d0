package collateral

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-sev-guest/kds"
)

var errOffHost = errors.New("redirect to another host refused")

// sameHostRedirects lets the client follow at most 3 redirects, each to
// the scheme and host first asked.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("more than 3 redirects")
	}
	if first := via[0].URL; req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("%w (%s to %s)", errOffHost, first.Host, req.URL.Host)
	}
	return nil
}

// fetch gets url of kind k from its vendor (or the PCCS), falling back to
// Azure's cache for a VCEK the KDS cannot give now, and checks the body's
// form and the headers its kind keeps. A non-zero deadline bounds the
// waits for the rate limit.
func (f *Fetcher) fetch(ctx context.Context, url string, k kind, deadline time.Time) ([]byte, map[string]string, error) {
	body, h, err := f.fetchURL(ctx, url, k, deadline)
	var hdr map[string]string
	if err == nil {
		if k == kindPCKCRL || k == kindRootCACRL {
			body = normalizeCRL(body)
		}
		if hdr, err = pickHeaders(k, h); err != nil {
			err = fmt.Errorf("%s: %w", url, err)
		} else {
			err = validateEntry(k, url, body, hdr)
		}
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if err != nil && k == kindVCEK && f.mirrors && errors.Is(err, ErrUnavailable) {
		mbody, merr := f.fetchAzureVCEK(ctx, url, deadline)
		if merr != nil {
			return nil, nil, fmt.Errorf("%w; Azure mirror: %v", err, merr)
		}
		f.log.Warn("collateral: AMD KDS unavailable, VCEK taken from Azure's cache", "url", url, "kds", err)
		return mbody, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return body, hdr, nil
}

// fetchAzureVCEK asks Azure's cache for the VCEK the KDS URL names and
// returns it DER, checked to be that VCEK.
func (f *Fetcher) fetchAzureVCEK(ctx context.Context, kdsURL string, deadline time.Time) ([]byte, error) {
	v, err := kds.ParseVCEKCertURL(kdsURL)
	if err != nil {
		return nil, err
	}
	body, _, err := f.fetchURL(ctx, azureVCEKURL(v), kindVCEK, deadline)
	if err != nil {
		return nil, err
	}
	der, err := parseTHIM(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := validate(kindVCEK, kdsURL, der); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return der, nil
}

// fetchURL GETs a vendor URL of kind k (from the PCCS, for Intel
// collateral when one is configured) under the rate limit of its host and
// kind, retrying HTTP 429 and 503 at most maxRetries times. It returns the
// body and the response headers.
func (f *Fetcher) fetchURL(ctx context.Context, vendorURL string, k kind, deadline time.Time) ([]byte, http.Header, error) {
	u, err := url.Parse(vendorURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	target, limitHost := vendorURL, u.Host
	if t, ok := f.pccsTarget(vendorURL, u); ok {
		target, limitHost = t, f.pccsHost
	} else if base := f.hosts[u.Host]; base != nil {
		target = strings.TrimSuffix(base.String(), "/") + u.EscapedPath()
		if u.RawQuery != "" {
			target += "?" + u.RawQuery
		}
	}
	key := limitKey(limitHost, k)
	for attempt := 0; ; attempt++ {
		if err := f.wait(ctx, key, deadline); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, vendorURL, err)
		}
		body, h, wait, retry, err := f.do(ctx, vendorURL, target)
		if err == nil || !retry || attempt == maxRetries {
			return body, h, err
		}
		if wait < 0 {
			wait = time.Second << attempt
		}
		if wait > f.maxRetryWait {
			return nil, nil, fmt.Errorf("%w (the server asks to retry after %s, longer than the %s this fetcher waits)", err, wait, f.maxRetryWait)
		}
		f.log.Debug("collateral: retrying", "url", vendorURL, "after", wait, "err", err)
		if err := f.sleep(ctx, wait); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: waiting to retry: %w", ErrUnavailable, vendorURL, err)
		}
	}
}

// do makes one GET of target (which stands for vendorURL). For HTTP 429
// and 503 it says retry, with the Retry-After wait or -1 if none is given.
func (f *Fetcher) do(ctx context.Context, vendorURL, target string) (body []byte, h http.Header, wait time.Duration, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, 0, false, fmt.Errorf("%w: %s: %v", ErrRefused, vendorURL, err)
	}
	req.Header.Set("User-Agent", "trustbound-collateral/1")
	f.log.Debug("collateral: fetching", "url", vendorURL)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, nil, 0, false, fmt.Errorf("%w: GET %s: %w", ErrUnavailable, vendorURL, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
	}()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		body, err := readBounded(resp.Body)
		if err != nil {
			return nil, nil, 0, false, fmt.Errorf("%w: GET %s: %w", ErrUnavailable, vendorURL, err)
		}
		if len(body) == 0 {
			return nil, nil, 0, false, fmt.Errorf("%w: GET %s: empty body", ErrUnavailable, vendorURL)
		}
		return body, resp.Header, 0, false, nil
	case code == http.StatusNotFound || code == http.StatusGone:
		return nil, nil, 0, false, fmt.Errorf("%w: GET %s: HTTP %d", ErrNotFound, vendorURL, code)
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), f.wall())
		if !ok {
			wait = -1
		}
		return nil, nil, wait, true, fmt.Errorf("%w: GET %s: HTTP %d", ErrUnavailable, vendorURL, code)
	default:
		return nil, nil, 0, false, fmt.Errorf("%w: GET %s: HTTP %d", ErrUnavailable, vendorURL, code)
	}
}

// readBounded reads all of r, refusing more than maxBody bytes.
func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("body exceeds %d bytes", maxBody)
	}
	return b, nil
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(h, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// limitKey names the token bucket a request of kind k to host draws from.
// CRLs and certificate chains have their own on each host, so that a flood
// of requests for made-up VCEKs or FMSPCs (an unsigned report can name any
// chip) cannot starve revocation checks.
func limitKey(host string, k kind) string {
	switch k {
	case kindCRL, kindCertChain, kindPCKCRL, kindRootCACRL:
		return host + " (CRLs and chains)"
	}
	return host
}

// errRateLimited: a token would come later than the request may wait.
var errRateLimited = errors.New("rate limited")

// wait takes a token from the bucket key, sleeping until it is due. It
// fails at once, without taking it, if it is due later than MaxRetryWait
// or the deadline (if not zero), and gives it back if ctx ends first.
// Buckets run on the monotonic wall clock, never on Options.Now.
func (f *Fetcher) wait(ctx context.Context, key string, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("waiting for the rate limit: %w", err)
	}
	f.limitMu.Lock()
	b := f.limits[key]
	if b == nil {
		b = &bucket{rate: f.rate, burst: float64(f.burst)}
		f.limits[key] = b
	}
	f.limitMu.Unlock()
	limit := f.maxRetryWait
	if !deadline.IsZero() {
		limit = min(limit, time.Until(deadline))
	}
	now := f.wall()
	d, ok := b.tryReserve(now, limit)
	if !ok {
		return fmt.Errorf("%w: the %s rate limit would delay the request %s, more than the %s it may wait; retry later",
			errRateLimited, key, d, max(limit, 0))
	}
	if d == 0 {
		return nil
	}
	if err := f.sleep(ctx, d); err != nil {
		b.cancel(f.wall(), now.Add(d))
		return fmt.Errorf("waiting for the rate limit: %w", err)
	}
	return nil
}

// bucket is a token bucket: it holds up to burst tokens, refilled at rate
// per second; each request takes one, and waits for it if none is left.
// A reservation given up before it is due gives its token back, less what
// later reservations already count on, so the sustained rate never
// exceeds rate.
type bucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time // of the last refill
	lastDue     time.Time // when the latest reservation is due
}

func (b *bucket) refill(now time.Time) {
	if b.last.IsZero() {
		b.tokens, b.last = b.burst, now
	}
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// reserve takes a token and returns how long after now it is due.
func (b *bucket) reserve(now time.Time) time.Duration {
	d, _ := b.tryReserve(now, math.MaxInt64)
	return d
}

// tryReserve takes a token and returns how long after now it is due, if
// that is at most limit; else it returns that wait and takes nothing.
func (b *bucket) tryReserve(now time.Time, limit time.Duration) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	var d time.Duration
	if left := b.tokens - 1; left < 0 {
		d = time.Duration(math.Ceil(-left / b.rate * float64(time.Second)))
	}
	if d > limit {
		return d, false
	}
	b.tokens--
	b.lastDue = now.Add(d)
	return d, true
}

// cancel gives back the token of a reservation due at due, given up at
// now: all of it if it is the latest, less the tokens of the reservations
// made after it otherwise, nothing once it is due.
func (b *bucket) cancel(now, due time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !due.After(now) {
		return
	}
	back := 1 - b.lastDue.Sub(due).Seconds()*b.rate
	if back <= 0 {
		return
	}
	b.refill(now)
	b.tokens = min(b.burst, b.tokens+back)
	if due.Equal(b.lastDue) {
		b.lastDue = due.Add(-time.Duration(float64(time.Second) / b.rate))
	}
}
