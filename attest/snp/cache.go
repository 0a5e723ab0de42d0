package snp

import "sync"

// Bounds of the Verifier's caches. A chain entry is a few kilobytes (the
// parsed certificates are shared with the root set), so the chain cache
// stays within a few tens of megabytes at its bound. Simulated chains have
// their own small cache (see Verifier.verifiedEndorsement).
const (
	maxCachedChains          = 4096
	maxCachedSimulatedChains = 16
	maxCachedCRLs            = 256
)

// boundedCache is a map of at most max entries, safe for concurrent use.
// When full, inserting evicts an arbitrary entry (Go randomises map
// iteration), which bounds memory without bookkeeping on the read path.
// It holds only results that depend on their key alone (verified chains,
// verified CRLs); time-dependent checks are made by the caller on every use.
type boundedCache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

func newBoundedCache[K comparable, V any](max int) *boundedCache[K, V] {
	return &boundedCache[K, V]{m: make(map[K]V), max: max}
}

func (c *boundedCache[K, V]) get(k K) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

func (c *boundedCache[K, V]) put(k K, v V) {
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

func (c *boundedCache[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
