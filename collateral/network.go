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

// fetch gets url of kind k from its vendor, falling back to Azure's cache
// for a VCEK the KDS cannot give now, and checks the body's form.
func (f *Fetcher) fetch(ctx context.Context, url string, k kind) ([]byte, error) {
	body, err := f.fetchURL(ctx, url)
	if err == nil {
		if verr := validate(k, url, body); verr != nil {
			err = fmt.Errorf("%w: %w", ErrUnavailable, verr)
		}
	}
	if err != nil && k == kindVCEK && f.mirrors && errors.Is(err, ErrUnavailable) {
		mbody, merr := f.fetchAzureVCEK(ctx, url)
		if merr != nil {
			return nil, fmt.Errorf("%w; Azure mirror: %v", err, merr)
		}
		f.log.Warn("collateral: AMD KDS unavailable, VCEK taken from Azure's cache", "url", url, "kds", err)
		return mbody, nil
	}
	return body, err
}

// fetchAzureVCEK asks Azure's cache for the VCEK the KDS URL names and
// returns it DER, checked to be that VCEK.
func (f *Fetcher) fetchAzureVCEK(ctx context.Context, kdsURL string) ([]byte, error) {
	v, err := kds.ParseVCEKCertURL(kdsURL)
	if err != nil {
		return nil, err
	}
	body, err := f.fetchURL(ctx, azureVCEKURL(v))
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

// fetchURL GETs a vendor URL under the host's rate limit, retrying HTTP
// 429 and 503 at most maxRetries times.
func (f *Fetcher) fetchURL(ctx context.Context, vendorURL string) ([]byte, error) {
	u, err := url.Parse(vendorURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	target := vendorURL
	if base := f.hosts[u.Host]; base != nil {
		target = strings.TrimSuffix(base.String(), "/") + u.EscapedPath()
		if u.RawQuery != "" {
			target += "?" + u.RawQuery
		}
	}
	for attempt := 0; ; attempt++ {
		if err := f.wait(ctx, u.Host); err != nil {
			return nil, fmt.Errorf("%w: %s: waiting for the rate limit: %w", ErrUnavailable, vendorURL, err)
		}
		body, wait, retry, err := f.do(ctx, vendorURL, target)
		if err == nil || !retry || attempt == maxRetries {
			return body, err
		}
		if wait < 0 {
			wait = time.Second << attempt
		}
		if wait > f.maxRetryWait {
			return nil, fmt.Errorf("%w (the server asks to retry after %s, longer than the %s this fetcher waits)", err, wait, f.maxRetryWait)
		}
		f.log.Debug("collateral: retrying", "url", vendorURL, "after", wait, "err", err)
		if err := f.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%w: %s: waiting to retry: %w", ErrUnavailable, vendorURL, err)
		}
	}
}

// do makes one GET of target (which stands for vendorURL). For HTTP 429
// and 503 it says retry, with the Retry-After wait or -1 if none is given.
func (f *Fetcher) do(ctx context.Context, vendorURL, target string) (body []byte, wait time.Duration, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, 0, false, fmt.Errorf("%w: %s: %v", ErrRefused, vendorURL, err)
	}
	req.Header.Set("User-Agent", "trustbound-collateral/1")
	f.log.Debug("collateral: fetching", "url", vendorURL)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, false, fmt.Errorf("%w: GET %s: %w", ErrUnavailable, vendorURL, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
	}()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		body, err := readBounded(resp.Body)
		if err != nil {
			return nil, 0, false, fmt.Errorf("%w: GET %s: %w", ErrUnavailable, vendorURL, err)
		}
		if len(body) == 0 {
			return nil, 0, false, fmt.Errorf("%w: GET %s: empty body", ErrUnavailable, vendorURL)
		}
		return body, 0, false, nil
	case code == http.StatusNotFound || code == http.StatusGone:
		return nil, 0, false, fmt.Errorf("%w: GET %s: HTTP %d", ErrNotFound, vendorURL, code)
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), f.now())
		if !ok {
			wait = -1
		}
		return nil, wait, true, fmt.Errorf("%w: GET %s: HTTP %d", ErrUnavailable, vendorURL, code)
	default:
		return nil, 0, false, fmt.Errorf("%w: GET %s: HTTP %d", ErrUnavailable, vendorURL, code)
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

// wait takes a token from host's bucket, sleeping until it is due.
func (f *Fetcher) wait(ctx context.Context, host string) error {
	f.limitMu.Lock()
	b := f.limits[host]
	if b == nil {
		b = &bucket{rate: f.rate, burst: float64(f.burst)}
		f.limits[host] = b
	}
	f.limitMu.Unlock()
	if d := b.reserve(f.now()); d > 0 {
		return f.sleep(ctx, d)
	}
	return ctx.Err()
}

// bucket is a token bucket: it holds up to burst tokens, refilled at rate
// per second; each request takes one, and waits for it if none is left.
// A reservation is not given back when its waiter gives up, so the
// sustained rate never exceeds rate.
type bucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

// reserve takes a token and returns how long after now it is due.
func (b *bucket) reserve(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens, b.last = b.burst, now
	}
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-b.tokens / b.rate * float64(time.Second)))
}
