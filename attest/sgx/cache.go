package sgx

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/trustbound/trustbound/attest/dcap"
)

// maxCachedChains bounds the verified PCK chains a Verifier keeps (one per
// platform and TCB level it sees).
const maxCachedChains = 1024

// chainCache holds verified chains by the digest of their DER certificates.
type chainCache struct {
	mu sync.Mutex
	m  map[[32]byte]*dcap.PCKChain
}

func (c *chainCache) get(k [32]byte) *dcap.PCKChain {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *chainCache) put(k [32]byte, e *dcap.PCKChain) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[32]byte]*dcap.PCKChain)
	}
	if len(c.m) >= maxCachedChains {
		for old := range c.m { // evict one; which does not matter
			delete(c.m, old)
			break
		}
	}
	c.m[k] = e
}

// chainKey digests DER certificates, each length-prefixed.
func chainKey(ders [][]byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, d := range ders {
		binary.BigEndian.PutUint64(n[:], uint64(len(d)))
		h.Write(n[:])
		h.Write(d)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
