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

// errNonceFull means too many challenges are outstanding.
var errNonceFull = errors.New("too many outstanding challenges; try again shortly")

// nonces hands out single-use, short-lived challenge nonces. They live in
// memory: a restart invalidates outstanding challenges, which only costs
// the clients a retry.
type nonces struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	live map[string]time.Time // nonce → expiry
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
	if len(n.live) >= n.max {
		for k, e := range n.live {
			if !now.Before(e) {
				delete(n.live, k)
			}
		}
		if len(n.live) >= n.max {
			return "", time.Time{}, errNonceFull
		}
	}
	n.live[nonce] = exp
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
	delete(n.live, nonce)
	if !now.Before(exp) {
		return ErrNonce
	}
	return nil
}
