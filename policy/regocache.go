package policy

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// DefaultRegoCacheSize is how many compiled policies a RegoCache keeps
// unless told otherwise.
const DefaultRegoCacheSize = 256

// RegoCache keeps compiled Rego policies by name and the SHA-256 of their
// text, so that each version of a policy is compiled once however often it
// is evaluated, and a policy's deny reasons always carry its own name. It
// holds at most its size, evicting the least recently used. It is safe for
// concurrent use; failed compilations are not kept.
type RegoCache struct {
	size    int
	timeout time.Duration

	mu      sync.Mutex
	entries map[regoKey]*list.Element // (name, hash) → element holding *RegoPolicy
	lru     *list.List                // front: most recently used
}

// NewRegoCache returns a cache of at most size policies (DefaultRegoCacheSize
// when size is not positive) whose policies evaluate within timeout
// (DefaultRegoTimeout when timeout is not positive).
func NewRegoCache(size int, timeout time.Duration) *RegoCache {
	if size <= 0 {
		size = DefaultRegoCacheSize
	}
	if timeout <= 0 {
		timeout = DefaultRegoTimeout
	}
	return &RegoCache{size: size, timeout: timeout, entries: map[regoKey]*list.Element{}, lru: list.New()}
}

// regoKey is a cache entry's key: the policy's name and its text's hash.
type regoKey struct{ name, hash string }

// Get returns the compiled policy for module under name, compiling it when
// the cache does not hold it. The same name and text yield the same
// *RegoPolicy while it stays cached; the same text under another name is
// another entry, so that deny reasons name the policy asked for.
func (c *RegoCache) Get(ctx context.Context, name, module string) (*RegoPolicy, error) {
	sum := sha256.Sum256([]byte(module))
	key := regoKey{name, hex.EncodeToString(sum[:])}
	if p := c.lookup(key); p != nil {
		return p, nil
	}
	p, err := CompileRego(ctx, name, module)
	if err != nil {
		return nil, err
	}
	p = p.WithTimeout(c.timeout)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok { // compiled concurrently: keep the first
		c.lru.MoveToFront(e)
		return e.Value.(*RegoPolicy), nil
	}
	c.entries[key] = c.lru.PushFront(p)
	for c.lru.Len() > c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		old := oldest.Value.(*RegoPolicy)
		delete(c.entries, regoKey{old.Name(), old.Hash()})
	}
	return p, nil
}

// Len is the number of policies the cache holds.
func (c *RegoCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *RegoCache) lookup(key regoKey) *RegoPolicy {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*RegoPolicy)
}
