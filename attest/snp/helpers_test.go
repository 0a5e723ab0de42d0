package snp_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeGetter is an in-memory AMD KDS: it serves files by URL and counts
// the requests. Unknown URLs fail like a 404.
type fakeGetter struct {
	mu    sync.Mutex
	files map[string][]byte
	calls map[string]int
}

func newGetter(files map[string][]byte) *fakeGetter {
	if files == nil {
		files = map[string][]byte{}
	}
	return &fakeGetter{files: files, calls: map[string]int{}}
}

func (g *fakeGetter) Get(ctx context.Context, url string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls[url]++
	b, ok := g.files[url]
	if !ok {
		return nil, fmt.Errorf("GET %s: 404 Not Found", url)
	}
	return bytes.Clone(b), nil
}

func (g *fakeGetter) set(url string, b []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.files[url] = b
}

// requests returns the number of requests so far, for all URLs.
func (g *fakeGetter) requests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.calls {
		n += c
	}
	return n
}

func (g *fakeGetter) urls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var us []string
	for u := range g.calls {
		us = append(us, u)
	}
	return us
}
