package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// batcher forces a batch through Bolt's test hooks: a blocker Apply leads
// and stops just before its transaction until the test has queued every
// request it wants in one batch, in a known order.
type batcher struct {
	queued  chan int      // queue length after each enqueue
	entered chan struct{} // the blocker reached its transaction
	gate    chan struct{} // closed to let the blocker go on

	mu        sync.Mutex
	started   []int // size of each write transaction started
	committed []int // size of each write transaction committed
}

// newGroupBolt opens a store at path, applies seed without hooks, then
// installs the batcher's hooks.
func newGroupBolt(t *testing.T, path string, seed ...request) (*Bolt, *batcher) {
	t.Helper()
	b, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	for _, r := range seed {
		if _, err := b.Apply(t.Context(), r.ops...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	bt := &batcher{
		queued:  make(chan int, 1024),
		entered: make(chan struct{}),
		gate:    make(chan struct{}),
	}
	b.hooks = &boltHooks{
		queued: func(n int) { bt.queued <- n },
		beforeTx: func(n int) {
			bt.mu.Lock()
			bt.started = append(bt.started, n)
			first := len(bt.started) == 1
			bt.mu.Unlock()
			if first {
				close(bt.entered)
				<-bt.gate
			}
		},
		committed: func(n int) {
			bt.mu.Lock()
			bt.committed = append(bt.committed, n)
			bt.mu.Unlock()
		},
	}
	return b, bt
}

// txs returns the sizes of the write transactions started and committed.
func (bt *batcher) txs() (started, committed []int) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	return slices.Clone(bt.started), slices.Clone(bt.committed)
}

type outcome struct {
	rev int64
	err error
}

// request is one Apply of a forced batch.
type request struct {
	ctx context.Context // nil: the test's
	ops []Op
}

// start runs the blocker Apply and waits until it leads and is held before
// its transaction. It returns the blocker's outcome channel.
func (bt *batcher) start(t *testing.T, b *Bolt) <-chan outcome {
	t.Helper()
	out := make(chan outcome, 1)
	go func() {
		rev, err := b.Apply(t.Context(), Op{Key: "blocker", Value: []byte("b"), Expect: Any})
		out <- outcome{rev, err}
	}()
	if n := <-bt.queued; n != 1 {
		t.Fatalf("blocker queued at length %d, want 1", n)
	}
	<-bt.entered
	return out
}

// queue starts each request in turn, waiting until it is queued before
// starting the next, so that queue order is reqs order. It returns one
// outcome channel per request.
func (bt *batcher) queue(t *testing.T, b *Bolt, reqs []request) []chan outcome {
	t.Helper()
	outs := make([]chan outcome, len(reqs))
	for i, r := range reqs {
		outs[i] = make(chan outcome, 1)
		ctx := r.ctx
		if ctx == nil {
			ctx = t.Context()
		}
		go func() {
			rev, err := b.Apply(ctx, r.ops...)
			outs[i] <- outcome{rev, err}
		}()
		if n := <-bt.queued; n != i+1 {
			t.Fatalf("request %d queued at length %d, want %d", i, n, i+1)
		}
	}
	return outs
}

// runBatch commits the blocker alone, then reqs together in one batch, and
// returns their outcomes. The blocker takes revision base+1, where base is
// the store revision before.
func runBatch(t *testing.T, b *Bolt, bt *batcher, reqs []request) []outcome {
	t.Helper()
	base := revision(t, b)
	blocker := bt.start(t, b)
	outs := bt.queue(t, b, reqs)
	close(bt.gate)
	if o := <-blocker; o.err != nil || o.rev != base+1 {
		t.Fatalf("blocker Apply = %d, %v; want %d", o.rev, o.err, base+1)
	}
	res := make([]outcome, len(outs))
	for i, c := range outs {
		res[i] = <-c
	}
	return res
}

// revision reads the store revision from the file.
func revision(t *testing.T, b *Bolt) int64 {
	t.Helper()
	var rev int64
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		rev, err = storeRevision(tx.Bucket(bucketMeta))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func wantKV(t *testing.T, s Store, key, value string, rev int64) {
	t.Helper()
	kv, err := s.Get(context.Background(), key)
	if err != nil || string(kv.Value) != value || kv.Revision != rev {
		t.Fatalf("Get(%q) = %q at %d, %v; want %q at %d", key, kv.Value, kv.Revision, err, value, rev)
	}
}

func wantAbsent(t *testing.T, s Store, key string) {
	t.Helper()
	if kv, err := s.Get(context.Background(), key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %+v, %v; want ErrNotFound", key, kv, err)
	}
}

func wantTxs(t *testing.T, bt *batcher, started, committed []int) {
	t.Helper()
	s, c := bt.txs()
	if !slices.Equal(s, started) || !slices.Equal(c, committed) {
		t.Fatalf("transactions started %v, committed %v; want %v, %v", s, c, started, committed)
	}
}

func put(key, value string, expect int64) request {
	return request{ops: []Op{{Key: key, Value: []byte(value), Expect: expect}}}
}

// N Applies on distinct keys queued behind a running commit share one
// transaction, take consecutive revisions in queue order, and survive a
// reopen of the file.
func TestBoltGroupCommitOneTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trustbound.db")
	b, bt := newGroupBolt(t, path, put("setup", "s", 0))
	const n = 8
	reqs := make([]request, n)
	for i := range reqs {
		reqs[i] = put(fmt.Sprintf("k/%d", i), fmt.Sprintf("v%d", i), 0)
	}
	cur := revision(t, b) + 1 // after the blocker
	res := runBatch(t, b, bt, reqs)
	for i, o := range res {
		if o.err != nil || o.rev != cur+int64(i)+1 {
			t.Fatalf("Apply %d = %d, %v; want %d", i, o.rev, o.err, cur+int64(i)+1)
		}
		wantKV(t, b, fmt.Sprintf("k/%d", i), fmt.Sprintf("v%d", i), o.rev)
	}
	if got := revision(t, b); got != cur+n {
		t.Fatalf("store revision %d after the batch, want %d", got, cur+n)
	}
	// The blocker alone, then the batch in one transaction.
	wantTxs(t, bt, []int{1, n}, []int{1, n})

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, o := range res {
		wantKV(t, r, fmt.Sprintf("k/%d", i), fmt.Sprintf("v%d", i), o.rev)
	}
	wantKV(t, r, "blocker", "b", cur)
	if got := revision(t, r); got != cur+n {
		t.Fatalf("store revision %d after reopen, want %d", got, cur+n)
	}
}

// Each Apply's compares see the writes of those queued before it in the
// same batch; a refused Apply writes nothing and the rest commit together.
func TestBoltGroupCommitCompares(t *testing.T) {
	b, bt := newGroupBolt(t, filepath.Join(t.TempDir(), "trustbound.db"))
	cur := revision(t, b) + 1 // after the blocker
	a := cur + 1
	reqs := []request{
		put("k", "a", 0), // A creates k: a
		put("k", "b", 0), // B creates k too: conflict
		{ops: []Op{ // C checks k at A's revision and writes c: a+1
			{Key: "k", Check: true, Expect: a},
			{Key: "c", Value: []byte("c")},
		}},
		{ops: []Op{ // D would create d but k is no longer absent
			{Key: "d", Value: []byte("d")},
			{Key: "k", Check: true, Expect: 0},
		}},
		{ops: []Op{{Key: "absent", Delete: true, Expect: Any}}}, // E: not found
		{ops: []Op{{Key: "k", Delete: true, Expect: a}}},        // F deletes k: a+2
		put("k", "g", 0), // G creates k again: a+3
	}
	res := runBatch(t, b, bt, reqs)
	want := []outcome{
		{a, nil},
		{0, ErrConflict},
		{a + 1, nil},
		{0, ErrConflict},
		{0, ErrNotFound},
		{a + 2, nil},
		{a + 3, nil},
	}
	for i, o := range res {
		if o.rev != want[i].rev || !errors.Is(o.err, want[i].err) || (want[i].err == nil) != (o.err == nil) {
			t.Errorf("Apply %d = %d, %v; want %d, %v", i, o.rev, o.err, want[i].rev, want[i].err)
		}
	}
	if got, want := res[1].err.Error(), fmt.Sprintf(`store: apply: revision conflict: "k" is at revision %d, expected absent`, a); got != want {
		t.Errorf("B's error %q, want %q", got, want)
	}
	if got, want := res[4].err.Error(), `store: apply: key not found: cannot delete "absent"`; got != want {
		t.Errorf("E's error %q, want %q", got, want)
	}
	wantKV(t, b, "k", "g", a+3)
	wantKV(t, b, "c", "c", a+1)
	wantAbsent(t, b, "d")
	if got := revision(t, b); got != a+3 {
		t.Fatalf("store revision %d, want %d", got, a+3)
	}
	wantTxs(t, bt, []int{1, len(reqs)}, []int{1, len(reqs)})
}

// A request that fails inside the shared transaction for a reason other
// than a compare (here a key bbolt refuses, and a corrupt entry) rolls the
// batch back; each request is then retried alone, in order, so only the
// bad ones fail.
func TestBoltGroupCommitRetriesAlone(t *testing.T) {
	b, bt := newGroupBolt(t, filepath.Join(t.TempDir(), "trustbound.db"))
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKV).Put([]byte("bad"), []byte{1, 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("h", bolt.MaxKeySize+1)
	cur := revision(t, b) + 1 // after the blocker
	reqs := []request{
		put("x", "x1", 0),
		put(huge, "h", Any),
		put("bad", "v", Any),
		put("z", "z1", 0),
		put("x", "x2", 0), // conflicts with the first, as it would in sequence
	}
	res := runBatch(t, b, bt, reqs)
	if o := res[0]; o.err != nil || o.rev != cur+1 {
		t.Errorf("x = %d, %v; want %d", o.rev, o.err, cur+1)
	}
	if o := res[1]; o.rev != 0 || !errors.Is(o.err, bolterrors.ErrKeyTooLarge) {
		t.Errorf("huge key = %d, %v; want ErrKeyTooLarge", o.rev, o.err)
	}
	if o := res[2]; o.rev != 0 || o.err == nil || !strings.Contains(o.err.Error(), `corrupt store: entry "bad" is 2 bytes`) {
		t.Errorf("corrupt entry = %d, %v; want corrupt store", o.rev, o.err)
	}
	if o := res[3]; o.err != nil || o.rev != cur+2 {
		t.Errorf("z = %d, %v; want %d", o.rev, o.err, cur+2)
	}
	if o := res[4]; o.rev != 0 || !errors.Is(o.err, ErrConflict) {
		t.Errorf("second create of x = %d, %v; want ErrConflict", o.rev, o.err)
	}
	wantKV(t, b, "x", "x1", cur+1)
	wantKV(t, b, "z", "z1", cur+2)
	if got := revision(t, b); got != cur+2 {
		t.Fatalf("store revision %d, want %d", got, cur+2)
	}
	// The shared transaction of 5 is rolled back; then each alone: x and z
	// commit, the others roll back.
	wantTxs(t, bt, []int{1, 5, 1, 1, 1, 1, 1}, []int{1, 1, 1})
}

// A request whose ctx is done before its batch starts is dropped with ctx's
// error and writes nothing; the rest of the batch commits.
func TestBoltGroupCommitCanceledInQueue(t *testing.T) {
	b, bt := newGroupBolt(t, filepath.Join(t.TempDir(), "trustbound.db"))
	ctx, cancel := context.WithCancel(t.Context())
	base := revision(t, b)
	cur := base + 1 // after the blocker
	blocker := bt.start(t, b)
	outs := bt.queue(t, b, []request{put("a", "a", 0), {ctx: ctx, ops: put("c", "c", 0).ops}, put("d", "d", 0)})
	cancel()
	close(bt.gate)
	if o := <-blocker; o.err != nil || o.rev != base+1 {
		t.Fatalf("blocker = %d, %v", o.rev, o.err)
	}
	if o := <-outs[0]; o.err != nil || o.rev != cur+1 {
		t.Errorf("a = %d, %v; want %d", o.rev, o.err, cur+1)
	}
	if o := <-outs[1]; o.rev != 0 || !errors.Is(o.err, context.Canceled) {
		t.Errorf("canceled = %d, %v; want context.Canceled", o.rev, o.err)
	}
	if o := <-outs[2]; o.err != nil || o.rev != cur+2 {
		t.Errorf("d = %d, %v; want %d", o.rev, o.err, cur+2)
	}
	wantAbsent(t, b, "c")
	wantTxs(t, bt, []int{1, 2}, []int{1, 2})
}

// Close waits for queued and committing Applies; an Apply after Close
// fails at once instead of waiting.
func TestBoltGroupCommitClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trustbound.db")
	b, bt := newGroupBolt(t, path)
	blocker := bt.start(t, b)
	outs := bt.queue(t, b, []request{put("a", "a", 0), put("b", "b", 0)})
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	for {
		b.mu.Lock()
		c := b.closed
		b.mu.Unlock()
		if c {
			break
		}
		runtime.Gosched()
	}
	if _, err := Put(t.Context(), b, "late", nil, Any); !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		t.Fatalf("Apply after Close: %v, want ErrDatabaseNotOpen", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a commit in flight", err)
	default:
	}
	close(bt.gate)
	for _, c := range outs {
		if o := <-c; o.err != nil {
			t.Fatalf("queued Apply: %v", o.err)
		}
	}
	if o := <-blocker; o.err != nil {
		t.Fatalf("blocker: %v", o.err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	r, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantKV(t, r, "a", "a", 2)
	wantKV(t, r, "b", "b", 3)
	wantAbsent(t, r, "late")
}

// Under real contention every successful Apply gets its own revision and
// together they are exactly 1..n, whatever the batching.
func TestBoltGroupCommitConcurrent(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "trustbound.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const writers, each = 8, 40
	revs := make([][]int64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rev, err := Put(t.Context(), b, fmt.Sprintf("w%d/%d", w, i), []byte("v"), 0)
				if err != nil {
					t.Error(err)
					return
				}
				revs[w] = append(revs[w], rev)
			}
		})
	}
	wg.Wait()
	var all []int64
	for w := range writers {
		if !slices.IsSorted(revs[w]) {
			t.Errorf("writer %d saw revisions out of order: %v", w, revs[w])
		}
		for i, rev := range revs[w] {
			wantKV(t, b, fmt.Sprintf("w%d/%d", w, i), "v", rev)
		}
		all = append(all, revs[w]...)
	}
	slices.Sort(all)
	for i, rev := range all {
		if rev != int64(i)+1 {
			t.Fatalf("revisions %v, want 1..%d each once", all, writers*each)
		}
	}
	if got := revision(t, b); got != writers*each {
		t.Fatalf("store revision %d, want %d", got, writers*each)
	}
}

// TestBoltGroupCommitPanic: a transaction that panics (bbolt panics on
// some corruptions) fails its lone request with an error naming the panic,
// is rolled back, and leaves the store usable: the request queued behind
// it leads the next batch, a later Apply commits and Close returns.
func TestBoltGroupCommitPanic(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan int, 16)
	release := make(chan struct{})
	calls := 0
	b.hooks = &boltHooks{
		queued: func(n int) { queued <- n },
		beforeTx: func(n int) {
			calls++
			if calls == 1 {
				<-release
				panic("injected commit failure")
			}
		},
	}
	leader := make(chan error, 1)
	go func() {
		_, err := b.Apply(t.Context(), Op{Key: "first", Value: []byte("1"), Expect: Any})
		leader <- err
	}()
	<-queued
	follower := make(chan error, 1)
	go func() {
		_, err := b.Apply(t.Context(), Op{Key: "second", Value: []byte("2"), Expect: Any})
		follower <- err
	}()
	<-queued
	close(release)
	if err := <-leader; err == nil || !strings.Contains(err.Error(), "panic: injected commit failure") {
		t.Fatalf("leader's Apply = %v, want the injected panic as an error", err)
	}
	// The follower was queued behind the panicking leader, so it led the next batch alone.
	select {
	case err := <-follower:
		if err != nil {
			t.Fatalf("follower after the panic: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the follower still waits: the panic left the store committing")
	}
	rev, err := b.Apply(t.Context(), Op{Key: "third", Value: []byte("3"), Expect: Any})
	if err != nil || rev != 2 {
		t.Fatalf("Apply after the panic = %d, %v; want 2, nil", rev, err)
	}
	wantAbsent(t, b, "first")
	wantKV(t, b, "second", "2", 1)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBoltGroupCommitPanicInBatch: a panic in a shared transaction is one
// request's doing as far as the store can tell, so the batch is retried
// alone and the others commit.
func TestBoltGroupCommitPanicInBatch(t *testing.T) {
	b, bt := newGroupBolt(t, filepath.Join(t.TempDir(), "s.db"))
	inner := b.hooks.beforeTx
	b.hooks.beforeTx = func(n int) {
		inner(n)
		if n > 1 {
			panic("injected panic in the shared transaction")
		}
	}
	out := runBatch(t, b, bt, []request{put("x", "1", 0), put("y", "2", 0), put("z", "3", 0)})
	for i, o := range out {
		if o.err != nil || o.rev != int64(i)+2 {
			t.Errorf("request %d = %d, %v; want %d, nil", i, o.rev, o.err, i+2)
		}
	}
	wantTxs(t, bt, []int{1, 3, 1, 1, 1}, []int{1, 1, 1, 1})
	wantKV(t, b, "z", "3", 4)
}

// TestBoltGroupCommitPanicAfterLeaderCommitted: a batch of two (a, then a
// request whose key bbolt refuses) is rolled back and retried alone; a
// commits; the retry of the other panics. The panic must not come out of
// a's Apply: a's write is committed, so a's caller must get its revision,
// not a panic it can only take for a failure. (Before group commit a's
// Apply never ran another request's transaction.)
func TestBoltGroupCommitPanicAfterLeaderCommitted(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	queued := make(chan int, 16)
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	b.hooks = &boltHooks{
		queued: func(n int) { queued <- n },
		beforeTx: func(n int) {
			mu.Lock()
			sizes = append(sizes, n)
			call := len(sizes)
			mu.Unlock()
			switch call {
			case 1: // the blocker, alone: hold it until a and bad are queued
				<-release
			case 4: // blocker, batch [a bad], a alone, then bad alone
				panic("injected commit failure")
			}
		},
	}
	blocker := make(chan error, 1)
	go func() {
		_, err := b.Apply(t.Context(), Op{Key: "blocker", Value: []byte("b"), Expect: Any})
		blocker <- err
	}()
	<-queued
	type result struct {
		rev int64
		err error
		p   any
	}
	a := make(chan result, 1)
	go func() {
		var r result
		defer func() { r.p = recover(); a <- r }()
		r.rev, r.err = b.Apply(t.Context(), Op{Key: "a", Value: []byte("a"), Expect: 0})
	}()
	if n := <-queued; n != 1 { // the blocker has left the queue
		close(release)
		t.Fatalf("a queued at %d, want 1", n)
	}
	bad := make(chan error, 1)
	go func() {
		_, err := b.Apply(t.Context(), Op{Key: strings.Repeat("h", bolt.MaxKeySize+1), Value: []byte("h"), Expect: Any})
		bad <- err
	}()
	if n := <-queued; n != 2 {
		close(release)
		t.Fatalf("bad queued at %d, want 2", n)
	}
	close(release)
	if err := <-blocker; err != nil {
		t.Fatalf("blocker: %v", err)
	}
	ra := <-a
	if err := <-bad; err == nil {
		t.Errorf("the request whose commit panicked returned no error")
	}
	mu.Lock()
	got := slices.Clone(sizes)
	mu.Unlock()
	if !slices.Equal(got, []int{1, 2, 1, 1}) {
		t.Fatalf("transactions %v, want [1 2 1 1]", got)
	}
	kv, gerr := b.Get(t.Context(), "a")
	if gerr != nil || kv.Revision != 2 {
		t.Fatalf("Get(a) = %+v, %v; want it committed at 2", kv, gerr)
	}
	if ra.p != nil || ra.err != nil || ra.rev != 2 {
		t.Fatalf("a's Apply = %d, %v, panic %v; want 2, nil, no panic: a's write is committed at revision %d", ra.rev, ra.err, ra.p, kv.Revision)
	}
}

// TestBoltGroupCommitTransactionFailureNotRetried: when bbolt itself fails
// the transaction (here: it cannot begin one, the file having been closed
// under the store), every request of the batch fails with that error and
// none is retried alone — after a failed commit the file may hold part of
// the batch, and a retry could write a request twice.
func TestBoltGroupCommitTransactionFailureNotRetried(t *testing.T) {
	b, bt := newGroupBolt(t, filepath.Join(t.TempDir(), "s.db"))
	first := true
	b.hooks.committed = func(n int) {
		if first { // the blocker's commit: take the file away before the batch
			first = false
			if err := b.db.Close(); err != nil {
				t.Errorf("closing the bbolt file: %v", err)
			}
		}
	}
	out := runBatch(t, b, bt, []request{put("x", "1", 0), put("y", "2", Any), put("z", "3", 0)})
	for i, o := range out {
		if o.rev != 0 || !errors.Is(o.err, bolterrors.ErrDatabaseNotOpen) || !strings.Contains(o.err.Error(), "the transaction of 3 writes failed") {
			t.Errorf("request %d = %d, %v; want the batch's transaction error, not a retry's", i, o.rev, o.err)
		}
	}
	// Only the blocker's transaction ever ran its function.
	wantTxs(t, bt, []int{1}, nil)
}

// TestBoltQueue: Applies queued before the first one's wait is called
// commit together, in queue order, from that wait; a Queue that cannot be
// carried out answers its error from wait.
func TestBoltQueue(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	b.hooks = &boltHooks{beforeTx: func(n int) { sizes = append(sizes, n) }}
	first := b.Queue(t.Context(), Op{Key: "audit/1", Value: []byte("one")})
	second := b.Queue(t.Context(), Op{Key: "audit/2", Value: []byte("two")})
	third := b.Queue(t.Context(), Op{Key: "audit/1", Value: []byte("again")}) // create-only: refused
	invalid := b.Queue(t.Context(), Op{Key: ""})
	type outcome struct {
		rev int64
		err error
	}
	later := make(chan outcome, 2)
	for _, w := range []func() (int64, error){second, third} {
		go func() { rev, err := w(); later <- outcome{rev, err} }()
	}
	if rev, err := first(); err != nil || rev != 1 {
		t.Fatalf("first = %d, %v; want 1", rev, err)
	}
	got := []outcome{<-later, <-later}
	slices.SortFunc(got, func(a, b outcome) int { return int(a.rev - b.rev) })
	if got[0].rev != 0 || !errors.Is(got[0].err, ErrConflict) || got[1].rev != 2 || got[1].err != nil {
		t.Fatalf("second and third = %+v; want one at revision 2 and one conflict", got)
	}
	if _, err := invalid(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid Queue: %v, want ErrInvalid", err)
	}
	if !slices.Equal(sizes, []int{3}) {
		t.Fatalf("transactions %v, want one of 3", sizes)
	}
	wantKV(t, b, "audit/1", "one", 1)
	wantKV(t, b, "audit/2", "two", 2)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Queue(t.Context(), Op{Key: "late", Value: []byte("x")})(); !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		t.Fatalf("Queue after Close: %v", err)
	}
}

// TestBoltGroupCommitPanicInCommit: a panic in a transaction after its
// function returned — bbolt raises most of its corruption panics there, in
// Tx.Commit (spill, freelist "page already freed") — fails that
// transaction's requests and comes out of no Apply: here it happens in the
// lone retry of a later request, after the leader's own write committed.
// The committed hook stands in for the commit-phase panic.
func TestBoltGroupCommitPanicInCommit(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	commits := 0
	b.hooks = &boltHooks{committed: func(n int) {
		commits++
		if commits == 2 { // a alone, then c alone
			panic("stand-in for a panic in bbolt's Tx.Commit")
		}
	}}
	a := b.Queue(t.Context(), Op{Key: "a", Value: []byte("a"), Expect: 0})
	bad := b.Queue(t.Context(), Op{Key: strings.Repeat("h", bolt.MaxKeySize+1), Value: []byte("h"), Expect: Any})
	c := b.Queue(t.Context(), Op{Key: "c", Value: []byte("c"), Expect: 0})
	errs := make([]chan error, 2)
	for i, w := range []func() (int64, error){bad, c} {
		errs[i] = make(chan error, 1)
		go func() { _, err := w(); errs[i] <- err }()
	}
	var rev int64
	var p any
	func() {
		defer func() { p = recover() }()
		rev, err = a()
	}()
	if err := <-errs[0]; err == nil || strings.Contains(err.Error(), "panic") {
		t.Errorf("the too-long key: %v, want its own refusal", err)
	}
	if err := <-errs[1]; err == nil || !strings.Contains(err.Error(), "the transaction of 1 writes failed: panic: stand-in") {
		t.Errorf("c, whose commit panicked: %v, want the panic as its transaction's error", err)
	}
	kv, gerr := b.Get(t.Context(), "a")
	if gerr != nil || kv.Revision != 1 {
		t.Fatalf("Get(a) = %+v, %v; want it committed at 1", kv, gerr)
	}
	if p != nil || err != nil || rev != 1 {
		t.Fatalf("a's wait = %d, %v, panic %v; want 1, nil, no panic: a's write is committed", rev, err, p)
	}
}
