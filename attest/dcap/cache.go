package dcap

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// maxCached bounds the verified collateral sets an Evaluator keeps (one per
// FMSPC, PCK CA and collateral issue in practice).
const maxCached = 64

// cache holds verified collateral by the digest of everything it was
// verified from.
type cache struct {
	mu sync.Mutex
	m  map[[32]byte]*verified
}

func (c *cache) get(k [32]byte) *verified {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *cache) put(k [32]byte, v *verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[32]byte]*verified)
	}
	if len(c.m) >= maxCached {
		for old := range c.m { // evict one; which does not matter
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

// digest hashes the parts, each length-prefixed so that no two part lists
// collide.
func digest(parts ...[]byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
