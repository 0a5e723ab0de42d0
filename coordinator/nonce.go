package coordinator

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// ErrNonce means a nonce is unknown, expired or already used.
var ErrNonce = errors.New("nonce unknown, expired or already used (fetch a fresh challenge)")

// nonces hands out single-use, short-lived challenge nonces. They live in
// memory: a restart invalidates outstanding challenges, which only costs
// the clients a retry. At most max are outstanding; past that the oldest is
// dropped, so a flood of challenges cannot lock honest clients out (it can
// only shorten how long a nonce stays valid, and the per-client limiter
// bounds that).
type nonces struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	live  map[string]time.Time // nonce → expiry
	order []string             // issue order (= expiry order: the TTL is fixed)
}

func newNonces(ttl time.Duration, max int) *nonces {
	return &nonces{ttl: ttl, max: max, live: make(map[string]time.Time)}
}

// issue returns a fresh nonce valid until the returned time.
func (n *nonces) issue(now time.Time) (string, time.Time, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, err
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	exp := now.Add(n.ttl)
	n.mu.Lock()
	defer n.mu.Unlock()
	// Drop what has expired or been used, then the oldest if still full.
	for len(n.order) > 0 {
		head := n.order[0]
		e, ok := n.live[head]
		if ok && now.Before(e) && len(n.live) < n.max {
			break
		}
		delete(n.live, head)
		n.order = n.order[1:]
	}
	n.live[nonce] = exp
	n.order = append(n.order, nonce)
	return nonce, exp, nil
}

// consume uses a nonce up: it succeeds once, before the nonce expires.
func (n *nonces) consume(nonce string, now time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	exp, ok := n.live[nonce]
	if !ok {
		return ErrNonce
	}
	delete(n.live, nonce) // its slot in order is dropped lazily by issue
	if !now.Before(exp) {
		return ErrNonce
	}
	return nil
}

// limiter is a token bucket per client address, bounding how fast one
// client can take challenges.
type limiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	max     int // clients tracked at most
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, max int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: max, buckets: make(map[string]*bucket)}
}

// allow takes one token for client at now.
func (l *limiter) allow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[client]
	if b == nil {
		if len(l.buckets) >= l.max {
			// Forget clients whose buckets have refilled: they lose nothing.
			for k, v := range l.buckets {
				if v.tokens+now.Sub(v.last).Seconds()*l.rate >= l.burst {
					delete(l.buckets, k)
				}
			}
			if len(l.buckets) >= l.max {
				return false
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
