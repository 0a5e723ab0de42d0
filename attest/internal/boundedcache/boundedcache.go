// Package boundedcache is the map of at most a fixed number of entries,
// safe for concurrent use, in which attest's verifiers keep results that
// depend on their key alone (verified chains, CRLs and collateral); the
// time-dependent checks on a cached result are the caller's, on every use.
package boundedcache

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// Cache is a map of at most max entries, safe for concurrent use. When
// full, inserting a new key evicts an arbitrary entry (Go randomises map
// iteration), which bounds memory without bookkeeping on the read path.
type Cache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

// New returns an empty Cache of at most max entries (max > 0).
func New[K comparable, V any](max int) *Cache[K, V] {
	return &Cache[K, V]{m: make(map[K]V), max: max}
}

// Get returns the value cached for k, and whether there was one.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

// Put caches v for k. Replacing k's value evicts nothing.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

// Len returns the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Digest hashes the parts into a cache key, each part length-prefixed so
// that no two part lists collide.
func Digest(parts ...[]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
