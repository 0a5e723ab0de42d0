package store_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/trustbound/trustbound/store"
	"github.com/trustbound/trustbound/store/storetest"
)

func openBolt(t testing.TB, path string) *store.Bolt {
	t.Helper()
	s, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	return s
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openBolt(t, filepath.Join(t.TempDir(), "trustbound.db"))
	})
}

func TestBoltPersists(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "trustbound.db")
	s := openBolt(t, path)
	r1, err := store.Put(ctx, s, "manifest/current", []byte("m1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, s, "audit/00000000000001", []byte("a1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, s, "audit/00000000000001", store.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openBolt(t, path)
	defer s.Close()
	kv, err := s.Get(ctx, "manifest/current")
	if err != nil || string(kv.Value) != "m1" || kv.Revision != r1 {
		t.Fatalf("after reopen Get = %+v, %v; want m1 at %d", kv, err, r1)
	}
	if _, err := s.Get(ctx, "audit/00000000000001"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key after reopen: %v, want ErrNotFound", err)
	}
	r4, err := store.Put(ctx, s, "manifest/current", []byte("m2"), r1)
	if err != nil {
		t.Fatal(err)
	}
	if r4 != r1+3 {
		t.Fatalf("first Apply after reopen got revision %d, want %d", r4, r1+3)
	}
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trustbound.db")
	first := openBolt(t, path)

	const timeout = 200 * time.Millisecond
	start := time.Now()
	second, err := store.OpenBolt(path, store.BoltOptions{LockTimeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second OpenBolt of a held file succeeded")
	}
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second OpenBolt: %v, want ErrLocked", err)
	}
	if elapsed > timeout+2*time.Second {
		t.Fatalf("second OpenBolt took %s with a %s timeout", elapsed, timeout)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openBolt(t, path).Close()
}

func TestBoltFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "trustbound.db")
	openBolt(t, path).Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("mode %v, want 0600", got)
	}
}

func TestBoltOpenErrors(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "no-such-dir", "trustbound.db")
	_, err := store.OpenBolt(missing, store.BoltOptions{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "parent directory must exist") {
		t.Fatalf("missing parent: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenBolt created the parent directory: %v", err)
	}

	if _, err := store.OpenBolt(filepath.Join(dir, "x.db"), store.BoltOptions{LockTimeout: -time.Second}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("negative timeout: %v, want ErrInvalid", err)
	}
	if _, err := store.OpenBolt("", store.BoltOptions{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty path: %v, want ErrInvalid", err)
	}

	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := store.OpenBolt(garbage, store.BoltOptions{}); err == nil {
		s.Close()
		t.Fatal("OpenBolt accepted a file that is not a bbolt database")
	}

	// A bbolt file written by something else is refused, not adopted.
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("widgets"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := store.OpenBolt(foreign, store.BoltOptions{}); err == nil || !strings.Contains(err.Error(), "not a trustbound store") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("foreign bbolt file: %v, want \"not a trustbound store\"", err)
	}
}

func TestBoltAfterClose(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "trustbound.db"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "k"); err == nil {
		t.Fatal("Get after Close succeeded")
	}
	if _, err := store.Put(t.Context(), s, "k", nil, store.Any); err == nil {
		t.Fatal("Apply after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func BenchmarkBoltApply(b *testing.B) {
	s := openBolt(b, filepath.Join(b.TempDir(), "trustbound.db"))
	defer s.Close()
	value := make([]byte, 256)
	i := 0
	for b.Loop() {
		if _, err := store.Put(b.Context(), s, fmt.Sprintf("bench/%04d", i%1024), value, store.Any); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkBoltGet(b *testing.B) {
	s := openBolt(b, filepath.Join(b.TempDir(), "trustbound.db"))
	defer s.Close()
	const n = 1024
	ops := make([]store.Op, n)
	for i := range ops {
		ops[i] = store.Op{Key: fmt.Sprintf("bench/%04d", i), Value: make([]byte, 256)}
	}
	if _, err := s.Apply(b.Context(), ops...); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := s.Get(b.Context(), ops[i%n].Key); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkBoltApplyParallel is BenchmarkBoltApply with 4×GOMAXPROCS
// writers, each on its own keys: the load under which group commit shares
// one transaction and one fsync between writers.
func BenchmarkBoltApplyParallel(b *testing.B) {
	s := openBolt(b, filepath.Join(b.TempDir(), "trustbound.db"))
	defer s.Close()
	var writer atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		w := writer.Add(1)
		value := make([]byte, 256)
		i := 0
		for pb.Next() {
			if _, err := store.Put(b.Context(), s, fmt.Sprintf("bench/%02d/%04d", w, i%1024), value, store.Any); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
