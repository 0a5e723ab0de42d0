package boundedcache

import (
	"sync"
	"testing"
)

func TestBound(t *testing.T) {
	c := New[int, int](3)
	for i := range 10 {
		c.Put(i, i)
		if c.Len() > 3 {
			t.Fatalf("%d entries, bound 3", c.Len())
		}
		if v, ok := c.Get(i); !ok || v != i {
			t.Fatalf("just put %d: %v %v", i, v, ok)
		}
	}
	c.Put(9, 90) // replacing evicts nothing
	if v, _ := c.Get(9); v != 90 || c.Len() != 3 {
		t.Fatalf("replace: %d, %d entries", v, c.Len())
	}
}

// TestConcurrent is for the race detector.
func TestConcurrent(t *testing.T) {
	c := New[int, int](8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				c.Put(g*100+i, i)
				c.Get(i)
				c.Len()
			}
		})
	}
	wg.Wait()
	if c.Len() > 8 {
		t.Fatalf("%d entries, bound 8", c.Len())
	}
}

func TestDigest(t *testing.T) {
	// Length prefixes keep a part boundary from moving.
	if Digest([]byte("ab"), []byte("c")) == Digest([]byte("a"), []byte("bc")) {
		t.Fatal("part boundary not in the digest")
	}
	if Digest([]byte("a"), nil) == Digest([]byte("a")) {
		t.Fatal("empty part not in the digest")
	}
	if Digest([]byte("a"), []byte("b")) != Digest([]byte("a"), []byte("b")) {
		t.Fatal("digest not deterministic")
	}
}
