// Package storetest is the conformance suite every store.Store backend
// passes: call Run from the backend's tests.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/trustbound/trustbound/store"
)

// Run checks the store.Store contract. open must return a new, empty store
// for each subtest; Run closes it. No assertion depends on absolute revision
// numbers, only on how they move.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"Create", testCreate},
		{"CreateTwiceConflicts", testCreateTwice},
		{"UpdateWithRevision", testUpdate},
		{"StaleRevisionConflicts", testStale},
		{"RevisionOnMissingKeyConflicts", testExpectOnMissing},
		{"Any", testAny},
		{"Delete", testDelete},
		{"RecreateGetsNewRevision", testRecreate},
		{"MultiOpCommitsTogether", testMultiOpCommit},
		{"MultiOpAbortsTogether", testMultiOpAbort},
		{"ListPrefix", testList},
		{"RangePages", testRange},
		{"LastOfPrefix", testLast},
		{"RevisionPlusOnePerApply", testRevisionMonotonic},
		{"ConcurrentCAS", testConcurrentCAS},
		{"ValuesAreCopies", testCopies},
		{"EmptyValue", testEmptyValue},
		{"CheckComparesWithoutWriting", testCheck},
		{"Invalid", testInvalid},
		{"CanceledContext", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func put(t *testing.T, s store.Store, key, value string, expect int64) int64 {
	t.Helper()
	rev, err := store.Put(t.Context(), s, key, []byte(value), expect)
	if err != nil {
		t.Fatalf("Put(%q, expect %d): %v", key, expect, err)
	}
	if rev <= 0 {
		t.Fatalf("Put(%q) returned revision %d, want > 0", key, rev)
	}
	return rev
}

// want checks that key holds value at revision rev.
func want(t *testing.T, s store.Store, key, value string, rev int64) {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if kv.Key != key || string(kv.Value) != value || kv.Revision != rev {
		t.Fatalf("Get(%q) = {%q, %q, %d}, want {%q, %q, %d}", key, kv.Key, kv.Value, kv.Revision, key, value, rev)
	}
}

func wantMissing(t *testing.T, s store.Store, key string) {
	t.Helper()
	if kv, err := s.Get(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %+v, %v; want ErrNotFound", key, kv, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// wantNextRevision checks that the next Apply gets before+1, where before
// is the revision of the last successful Apply: nothing in between (a
// refused or failed Apply) consumed a revision.
func wantNextRevision(t *testing.T, s store.Store, before int64) {
	t.Helper()
	if rev := put(t, s, "zz-probe/"+strconv.FormatInt(before, 10), "", store.Any); rev != before+1 {
		t.Fatalf("next Apply got revision %d, want %d: a failed or refused Apply consumed a revision", rev, before+1)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	wantMissing(t, s, "manifest/current")
	kvs, err := s.List(t.Context(), "")
	if err != nil || len(kvs) != 0 {
		t.Fatalf("List(\"\") on an empty store = %v, %v; want nothing", kvs, err)
	}
}

func testCreate(t *testing.T, s store.Store) {
	rev := put(t, s, "manifest/current", "v1", 0)
	want(t, s, "manifest/current", "v1", rev)
}

func testCreateTwice(t *testing.T, s store.Store) {
	rev := put(t, s, "manifest/current", "v1", 0)
	_, err := store.Put(t.Context(), s, "manifest/current", []byte("v2"), 0)
	wantErr(t, "second create", err, store.ErrConflict)
	want(t, s, "manifest/current", "v1", rev)
	wantNextRevision(t, s, rev)
}

func testUpdate(t *testing.T, s store.Store) {
	r1 := put(t, s, "manifest/current", "v1", 0)
	r2 := put(t, s, "manifest/current", "v2", r1)
	if r2 != r1+1 {
		t.Fatalf("update got revision %d, want %d", r2, r1+1)
	}
	want(t, s, "manifest/current", "v2", r2)
}

func testStale(t *testing.T, s store.Store) {
	r1 := put(t, s, "manifest/current", "v1", 0)
	r2 := put(t, s, "manifest/current", "v2", r1)
	_, err := store.Put(t.Context(), s, "manifest/current", []byte("v3"), r1)
	wantErr(t, "update with stale revision", err, store.ErrConflict)
	want(t, s, "manifest/current", "v2", r2)
	wantNextRevision(t, s, r2)
}

func testExpectOnMissing(t *testing.T, s store.Store) {
	r := put(t, s, "other", "x", 0)
	_, err := store.Put(t.Context(), s, "manifest/current", []byte("v1"), r)
	wantErr(t, "update of a missing key", err, store.ErrConflict)
	wantMissing(t, s, "manifest/current")
	err = store.Delete(t.Context(), s, "manifest/current", r)
	wantErr(t, "delete of a missing key with a revision", err, store.ErrConflict)
}

func testAny(t *testing.T, s store.Store) {
	r1 := put(t, s, "k", "v1", store.Any)
	want(t, s, "k", "v1", r1)
	r2 := put(t, s, "k", "v2", store.Any)
	want(t, s, "k", "v2", r2)
	if r2 != r1+1 {
		t.Fatalf("revisions %d then %d, want +1", r1, r2)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := put(t, s, "secrets/db-password/v1", "x", 0)
	r2 := put(t, s, "secrets/db-password/v1", "y", r1)

	wantErr(t, "delete with stale revision", store.Delete(ctx, s, "secrets/db-password/v1", r1), store.ErrConflict)
	want(t, s, "secrets/db-password/v1", "y", r2)

	if err := store.Delete(ctx, s, "secrets/db-password/v1", r2); err != nil {
		t.Fatalf("delete with current revision: %v", err)
	}
	wantMissing(t, s, "secrets/db-password/v1")
	wantErr(t, "delete of a missing key", store.Delete(ctx, s, "secrets/db-password/v1", store.Any), store.ErrNotFound)

	r3 := put(t, s, "secrets/db-password/v2", "z", 0)
	if err := store.Delete(ctx, s, "secrets/db-password/v2", store.Any); err != nil {
		t.Fatalf("delete with Any: %v", err)
	}
	wantMissing(t, s, "secrets/db-password/v2")
	wantNextRevision(t, s, r3+1) // the delete took one revision
}

func testRecreate(t *testing.T, s store.Store) {
	r1 := put(t, s, "k", "v1", 0)
	if err := store.Delete(t.Context(), s, "k", r1); err != nil {
		t.Fatal(err)
	}
	r3 := put(t, s, "k", "v2", 0)
	if r3 != r1+2 {
		t.Fatalf("re-created key got revision %d, want %d", r3, r1+2)
	}
	want(t, s, "k", "v2", r3)
	_, err := store.Put(t.Context(), s, "k", []byte("v3"), r1)
	wantErr(t, "update with the revision of the deleted incarnation", err, store.ErrConflict)
}

func testMultiOpCommit(t *testing.T, s store.Store) {
	ctx := t.Context()
	rOld := put(t, s, "old", "o", 0)
	rKeep := put(t, s, "keep", "k1", 0)
	rev, err := s.Apply(ctx,
		store.Op{Key: "a", Value: []byte("A")},
		store.Op{Key: "old", Delete: true, Expect: rOld},
		store.Op{Key: "keep", Value: []byte("k2"), Expect: rKeep},
	)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if rev != rKeep+1 {
		t.Fatalf("Apply returned revision %d, want %d", rev, rKeep+1)
	}
	want(t, s, "a", "A", rev)
	want(t, s, "keep", "k2", rev)
	wantMissing(t, s, "old")
}

func testMultiOpAbort(t *testing.T, s store.Store) {
	ctx := t.Context()
	rX := put(t, s, "x", "x1", 0)
	rC := put(t, s, "c", "c1", 0)
	cases := []struct {
		name   string
		target error
		last   store.Op
	}{
		{"stale revision", store.ErrConflict, store.Op{Key: "c", Value: []byte("c2"), Expect: rX}},
		{"create of an existing key", store.ErrConflict, store.Op{Key: "c", Value: []byte("c2")}},
		{"delete of a missing key", store.ErrNotFound, store.Op{Key: "missing", Delete: true, Expect: store.Any}},
	}
	for _, tc := range cases {
		_, err := s.Apply(ctx,
			store.Op{Key: "a", Value: []byte("A")},
			store.Op{Key: "x", Delete: true, Expect: rX},
			store.Op{Key: "b", Value: []byte("B"), Expect: store.Any},
			tc.last,
		)
		wantErr(t, tc.name, err, tc.target)
		wantMissing(t, s, "a")
		wantMissing(t, s, "b")
		want(t, s, "x", "x1", rX)
		want(t, s, "c", "c1", rC)
	}
	wantNextRevision(t, s, rC)
}

func testList(t *testing.T, s store.Store) {
	ctx := t.Context()
	revs := map[string]int64{}
	for _, k := range []string{"audit/2", "audit/10", "a", "audit", "auditx/1", "b/1", "audit/1", "aud"} {
		revs[k] = put(t, s, k, "v-"+k, 0)
	}
	check := func(prefix string, wantKeys ...string) {
		t.Helper()
		kvs, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var got []string
		for _, kv := range kvs {
			got = append(got, kv.Key)
			if string(kv.Value) != "v-"+kv.Key || kv.Revision != revs[kv.Key] {
				t.Errorf("List(%q): %q = {%q, %d}, want {%q, %d}", prefix, kv.Key, kv.Value, kv.Revision, "v-"+kv.Key, revs[kv.Key])
			}
		}
		if !slices.Equal(got, wantKeys) {
			t.Fatalf("List(%q) keys = %q, want %q", prefix, got, wantKeys)
		}
	}
	check("audit/", "audit/1", "audit/10", "audit/2")
	check("audit", "audit", "audit/1", "audit/10", "audit/2", "auditx/1")
	check("", "a", "aud", "audit", "audit/1", "audit/10", "audit/2", "auditx/1", "b/1")
	check("c")
	check("audit/10", "audit/10")
}

func testRange(t *testing.T, s store.Store) {
	ctx := t.Context()
	revs := map[string]int64{}
	keys := []string{"audit/2", "audit/10", "a", "audit", "auditx/1", "b/1", "audit/1", "aud", "audit/3", "audit/\xff"}
	for _, k := range keys {
		revs[k] = put(t, s, k, "v-"+k, 0)
	}
	check := func(prefix, after string, limit int, wantKeys ...string) {
		t.Helper()
		kvs, err := s.Range(ctx, prefix, after, limit)
		if err != nil {
			t.Fatalf("Range(%q, %q, %d): %v", prefix, after, limit, err)
		}
		var got []string
		for _, kv := range kvs {
			got = append(got, kv.Key)
			if string(kv.Value) != "v-"+kv.Key || kv.Revision != revs[kv.Key] {
				t.Errorf("Range(%q, %q, %d): %q = {%q, %d}, want {%q, %d}", prefix, after, limit, kv.Key, kv.Value, kv.Revision, "v-"+kv.Key, revs[kv.Key])
			}
		}
		if !slices.Equal(got, wantKeys) {
			t.Fatalf("Range(%q, %q, %d) keys = %q, want %q", prefix, after, limit, got, wantKeys)
		}
	}
	check("audit/", "", 2, "audit/1", "audit/10")
	check("audit/", "", 100, "audit/1", "audit/10", "audit/2", "audit/3", "audit/\xff")
	// after is exclusive, whether or not it is a stored key.
	check("audit/", "audit/10", 2, "audit/2", "audit/3")
	check("audit/", "audit/100", 2, "audit/2", "audit/3")
	check("audit/", "audit/3", 1, "audit/\xff")
	check("audit/", "audit/\xff", 5)
	// An after before the prefix starts at the prefix; one past it is empty.
	check("audit/", "a", 1, "audit/1")
	check("audit/", "b", 3)
	check("audit", "audit", 10, "audit/1", "audit/10", "audit/2", "audit/3", "audit/\xff", "auditx/1")
	check("", "aud", 2, "audit", "audit/1")
	check("", "b/1", 2)
	check("c", "", 1)
	// Paging with the last key of each page reads every entry once.
	var paged []string
	for after := ""; ; {
		kvs, err := s.Range(ctx, "", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) == 0 {
			break
		}
		for _, kv := range kvs {
			paged = append(paged, kv.Key)
		}
		after = kvs[len(kvs)-1].Key
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	if !slices.Equal(paged, sorted) {
		t.Fatalf("paging by 3 read %q, want %q", paged, sorted)
	}
	for _, limit := range []int{0, -1} {
		_, err := s.Range(ctx, "audit/", "", limit)
		wantErr(t, fmt.Sprintf("Range with limit %d", limit), err, store.ErrInvalid)
	}
}

func testLast(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Last(ctx, "")
	wantErr(t, "Last of an empty store", err, store.ErrNotFound)
	revs := map[string]int64{}
	for _, k := range []string{"audit/2", "audit/10", "a", "audit", "auditx/1", "b/1", "audit/1", "aud", "\xff\xff", "\xff\xff\xff"} {
		revs[k] = put(t, s, k, "v-"+k, 0)
	}
	for prefix, wantKey := range map[string]string{
		"audit/": "audit/2", "audit": "auditx/1", "aud": "auditx/1", "a": "auditx/1", "b": "b/1", "b/1": "b/1",
		"": "\xff\xff\xff", "\xff": "\xff\xff\xff", "\xff\xff\xff": "\xff\xff\xff",
	} {
		kv, err := s.Last(ctx, prefix)
		if err != nil {
			t.Fatalf("Last(%q): %v", prefix, err)
		}
		if kv.Key != wantKey || string(kv.Value) != "v-"+wantKey || kv.Revision != revs[wantKey] {
			t.Errorf("Last(%q) = {%q, %q, %d}, want {%q, %q, %d}", prefix, kv.Key, kv.Value, kv.Revision, wantKey, "v-"+wantKey, revs[wantKey])
		}
	}
	for _, prefix := range []string{"c", "audit/3", "auditx/2", "0", "\xff\xff\xff\xff"} {
		_, err := s.Last(ctx, prefix)
		wantErr(t, fmt.Sprintf("Last(%q)", prefix), err, store.ErrNotFound)
	}
}

func testRevisionMonotonic(t *testing.T, s store.Store) {
	ctx := t.Context()
	last := put(t, s, "k0", "", 0)
	step := func(name string, rev int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rev != last+1 {
			t.Fatalf("%s: revision %d, want %d", name, rev, last+1)
		}
		last = rev
	}
	for i := 1; i <= 5; i++ {
		rev, err := store.Put(ctx, s, fmt.Sprintf("k%d", i), []byte("v"), 0)
		step(fmt.Sprintf("put k%d", i), rev, err)
	}
	rev, err := s.Apply(ctx,
		store.Op{Key: "k1", Value: []byte("w"), Expect: store.Any},
		store.Op{Key: "k2", Delete: true, Expect: store.Any},
		store.Op{Key: "k6", Value: []byte("v")},
	)
	step("multi-op apply", rev, err)
	if _, err := store.Put(ctx, s, "k1", []byte("x"), 0); err == nil {
		t.Fatal("conflicting put succeeded")
	}
	if _, err := s.Apply(ctx); err == nil {
		t.Fatal("empty Apply succeeded")
	}
	rev, err = store.Put(ctx, s, "k1", []byte("x"), last)
	step("put after refused applies", rev, err)
}

func testConcurrentCAS(t *testing.T, s store.Store) {
	const workers, perWorker = 8, 50
	ctx := t.Context()
	start := put(t, s, "counter", "0", 0)

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	revs := make(chan int64, workers*perWorker)
	for range workers {
		wg.Go(func() {
			for range perWorker {
				for {
					kv, err := s.Get(ctx, "counter")
					if err != nil {
						errs <- err
						return
					}
					n, err := strconv.Atoi(string(kv.Value))
					if err != nil {
						errs <- err
						return
					}
					rev, err := store.Put(ctx, s, "counter", []byte(strconv.Itoa(n+1)), kv.Revision)
					if errors.Is(err, store.ErrConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					revs <- rev
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(revs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for rev := range revs {
		if rev <= start || rev > start+workers*perWorker || seen[rev] {
			t.Fatalf("increment got revision %d: outside (%d, %d] or seen twice", rev, start, start+workers*perWorker)
		}
		seen[rev] = true
	}
	want(t, s, "counter", strconv.Itoa(workers*perWorker), start+workers*perWorker)
}

func testCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := []byte("secret-ciphertext")
	rev, err := store.Put(ctx, s, "k", in, 0)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = 'X' // the store must have taken its own copy
	want(t, s, "k", "secret-ciphertext", rev)

	kv, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	kv.Value[0] = 'X'
	want(t, s, "k", "secret-ciphertext", rev)

	kvs, err := s.List(ctx, "")
	if err != nil || len(kvs) != 1 {
		t.Fatalf("List = %v, %v", kvs, err)
	}
	kvs[0].Value[0] = 'X'
	want(t, s, "k", "secret-ciphertext", rev)
	if again, err := s.List(ctx, ""); err != nil || !bytes.Equal(again[0].Value, []byte("secret-ciphertext")) {
		t.Fatalf("List after mutation = %v, %v", again, err)
	}
}

func testEmptyValue(t *testing.T, s store.Store) {
	rev := put(t, s, "empty", "", 0)
	want(t, s, "empty", "", rev)
	rev, err := store.Put(t.Context(), s, "nil", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	want(t, s, "nil", "", rev)
}

func testInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	last := put(t, s, "k", "v", 0)
	cases := map[string][]store.Op{
		"no ops":              nil,
		"empty key":           {{Key: "", Value: []byte("v"), Expect: store.Any}},
		"key twice":           {{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2"), Expect: store.Any}},
		"put and delete":      {{Key: "k", Value: []byte("1"), Expect: store.Any}, {Key: "k", Delete: true, Expect: store.Any}},
		"expect below Any":    {{Key: "a", Value: []byte("v"), Expect: -2}},
		"delete expect 0":     {{Key: "a", Delete: true}},
		"delete with a value": {{Key: "k", Value: []byte("v"), Delete: true, Expect: store.Any}},
		"empty key later":     {{Key: "a", Value: []byte("v")}, {Key: "", Value: []byte("v")}},
	}
	for name, ops := range cases {
		_, err := s.Apply(ctx, ops...)
		wantErr(t, name, err, store.ErrInvalid)
		wantMissing(t, s, "a")
		want(t, s, "k", "v", last)
	}
	_, err := s.Get(ctx, "")
	wantErr(t, "Get of empty key", err, store.ErrInvalid)
	wantNextRevision(t, s, last)
}

func testCanceled(t *testing.T, s store.Store) {
	last := put(t, s, "k", "v", 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Get(ctx, "k")
	wantErr(t, "Get", err, context.Canceled)
	_, err = s.List(ctx, "")
	wantErr(t, "List", err, context.Canceled)
	_, err = s.Range(ctx, "", "", 1)
	wantErr(t, "Range", err, context.Canceled)
	_, err = s.Last(ctx, "")
	wantErr(t, "Last", err, context.Canceled)
	_, err = s.Apply(ctx, store.Op{Key: "a", Value: []byte("v")})
	wantErr(t, "Apply", err, context.Canceled)
	wantMissing(t, s, "a")
	wantNextRevision(t, s, last)
}

func testCheck(t *testing.T, s store.Store) {
	ctx := t.Context()
	guard := put(t, s, "guard", "g", 0)
	rev, err := s.Apply(ctx, store.Op{Key: "guard", Expect: guard, Check: true}, store.Op{Key: "a", Value: []byte("1")})
	if err != nil {
		t.Fatalf("Apply with a holding check: %v", err)
	}
	want(t, s, "a", "1", rev)
	want(t, s, "guard", "g", guard) // a check writes nothing, not even a revision
	// A check that fails aborts the writes.
	if _, err := s.Apply(ctx, store.Op{Key: "guard", Expect: guard + 100, Check: true}, store.Op{Key: "b", Value: []byte("2")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Apply with a failing check: %v, want ErrConflict", err)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a write went through a failing check: %v", err)
	}
	// A check that the key is absent.
	if _, err := s.Apply(ctx, store.Op{Key: "nothing", Expect: 0, Check: true}, store.Op{Key: "c", Value: []byte("3")}); err != nil {
		t.Fatalf("check of an absent key: %v", err)
	}
	for name, ops := range map[string][]store.Op{
		"only checks":     {{Key: "guard", Expect: guard, Check: true}},
		"check with Any":  {{Key: "guard", Expect: store.Any, Check: true}, {Key: "d", Value: []byte("4")}},
		"check and value": {{Key: "guard", Expect: guard, Check: true, Value: []byte("x")}, {Key: "d", Value: []byte("4")}},
		"check deletes":   {{Key: "guard", Expect: guard, Check: true, Delete: true}, {Key: "d", Value: []byte("4")}},
	} {
		if _, err := s.Apply(ctx, ops...); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
