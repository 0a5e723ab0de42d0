package tdx

import "sync"

// maxCachedChains bounds the Verifier's cache of verified PCK chains. An
// entry is a few kilobytes (three parsed certificates), one per platform.
const maxCachedChains = 4096

// boundedCache is a map of at most max entries, safe for concurrent use.
// When full, inserting evicts an arbitrary entry (Go randomises map
// iteration), which bounds memory without bookkeeping on the read path. It
// holds only results that depend on their key alone; time-dependent checks
// are made by the caller on every use.
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
