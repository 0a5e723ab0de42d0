package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrLocked: another process (or another Bolt in this one) holds the store
// file open. Only one may hold it at a time.
var ErrLocked = errors.New("locked by another process")

// defaultLockTimeout is how long OpenBolt waits for the file lock unless
// BoltOptions says otherwise.
const defaultLockTimeout = time.Second

// Layout of the file, version 1:
//
//	bucket "meta": "format" → 1 byte (1), "revision" → uint64 big-endian
//	bucket "kv":   key → uint64 big-endian revision ‖ value
const formatVersion = 1

var (
	bucketMeta  = []byte("meta")
	bucketKV    = []byte("kv")
	keyFormat   = []byte("format")
	keyRevision = []byte("revision")
)

// BoltOptions tunes OpenBolt; the zero value is the default.
type BoltOptions struct {
	// LockTimeout bounds how long OpenBolt waits for another holder of the
	// file to let go before it fails with ErrLocked. Zero means one second.
	LockTimeout time.Duration
}

// maxBatch bounds how many Applies share one transaction, so that one
// transaction (and the pages it dirties) stays small.
const maxBatch = 128

// Bolt is the embedded Store: one bbolt file, held under an exclusive file
// lock while open. Reads run concurrently. Writes are group-committed: an
// Apply that finds no commit running commits at once; Applies that arrive
// while one runs queue up and then share one transaction and one fsync
// (at most maxBatch of them), each still taking its own revision and
// seeing the writes of those queued before it, exactly as if they had run
// one after the other. An Apply is durable (fsynced) when it returns.
type Bolt struct {
	db   *bolt.DB
	path string

	mu sync.Mutex
	// idle is signalled (on mu) when committing turns false.
	idle *sync.Cond
	// queue holds the Applies not yet taken into a transaction, in arrival
	// order; committing is set while one caller (the leader) commits.
	// committing false implies queue is empty.
	queue      []*applyReq
	committing bool
	closed     bool

	// hooks is for tests only and nil in production.
	hooks *boltHooks
}

// applyReq is one Apply waiting in the queue. The leader that commits it
// sets rev and err, or sets lead to hand it the next batch, and then closes
// done.
type applyReq struct {
	ctx  context.Context
	ops  []Op
	rev  int64
	err  error
	lead bool
	done chan struct{}
}

// boltHooks lets tests force and observe batches; every field is optional.
type boltHooks struct {
	// queued runs under Bolt.mu when an Apply joins the queue, with the
	// queue's new length.
	queued func(n int)
	// beforeTx runs at the start of each write transaction, inside it
	// (a panic there is one in the transaction), for n Applies.
	beforeTx func(n int)
	// committed runs after a write transaction for n Applies committed.
	committed func(n int)
}

var (
	_ Store  = (*Bolt)(nil)
	_ Queuer = (*Bolt)(nil)
)

// OpenBolt opens the store file at path, creating it with mode 0600 if it
// does not exist; its parent directory must exist. It fails with ErrLocked
// if another process holds the file for longer than opts.LockTimeout, and
// refuses a file that is not a trustbound store.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if path == "" {
		return nil, fmt.Errorf("store: open: %w: empty path", ErrInvalid)
	}
	timeout := opts.LockTimeout
	switch {
	case timeout == 0:
		timeout = defaultLockTimeout
	case timeout < 0:
		return nil, fmt.Errorf("store: open %s: %w: negative lock timeout %s", path, ErrInvalid, timeout)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("store: open %s: %w (waited %s): stop the other trustbound process or use another data directory: %w", path, ErrLocked, timeout, err)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("store: open %s: its parent directory must exist: %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(initFile); err != nil {
		_ = db.Close() // the open error is the one that matters
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	b := &Bolt{db: db, path: path}
	b.idle = sync.NewCond(&b.mu)
	return b, nil
}

// initFile lays out a new file, or checks that an existing one is a
// trustbound store of a format this build reads.
func initFile(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		if name, _ := tx.Cursor().First(); name != nil {
			return fmt.Errorf("not a trustbound store: it holds bucket %q but no %q", name, bucketMeta)
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketKV); err != nil {
			return err
		}
		if err := meta.Put(keyFormat, []byte{formatVersion}); err != nil {
			return err
		}
		return meta.Put(keyRevision, encodeRevision(0))
	}
	if f := meta.Get(keyFormat); len(f) != 1 || f[0] != formatVersion {
		return fmt.Errorf("unsupported store format %v (this build reads [%d]); use the trustbound release that wrote it", f, formatVersion)
	}
	if tx.Bucket(bucketKV) == nil {
		return fmt.Errorf("corrupt store: bucket %q is missing", bucketKV)
	}
	_, err := storeRevision(meta)
	return err
}

// Get implements Store.
func (b *Bolt) Get(ctx context.Context, key string) (KV, error) {
	if err := ctx.Err(); err != nil {
		return KV{}, fmt.Errorf("store: get %q: %w", key, err)
	}
	if err := checkKey(key); err != nil {
		return KV{}, fmt.Errorf("store: get: %w", err)
	}
	var kv KV
	err := b.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketKV).Get([]byte(key))
		if raw == nil {
			return ErrNotFound
		}
		var err error
		kv, err = decodeEntry(key, raw)
		return err
	})
	if err != nil {
		return KV{}, fmt.Errorf("store: get %q: %w", key, err)
	}
	return kv, nil
}

// List implements Store.
func (b *Bolt) List(ctx context.Context, prefix string) ([]KV, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	var kvs []KV
	err := b.db.View(func(tx *bolt.Tx) error {
		p := []byte(prefix)
		c := tx.Bucket(bucketKV).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			kv, err := decodeEntry(string(k), v)
			if err != nil {
				return err
			}
			kvs = append(kvs, kv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	return kvs, nil
}

// Range implements Store: a cursor seek to the first key after after (or
// to prefix), then at most limit steps.
func (b *Bolt) Range(ctx context.Context, prefix, after string, limit int) ([]KV, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: range %q after %q: %w", prefix, after, err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("store: range %q after %q: %w: limit %d (want > 0)", prefix, after, ErrInvalid, limit)
	}
	var kvs []KV
	err := b.db.View(func(tx *bolt.Tx) error {
		p, a := []byte(prefix), []byte(after)
		c := tx.Bucket(bucketKV).Cursor()
		var k, v []byte
		if bytes.Compare(a, p) < 0 {
			k, v = c.Seek(p)
		} else if k, v = c.Seek(a); k != nil && bytes.Equal(k, a) {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(kvs) < limit; k, v = c.Next() {
			kv, err := decodeEntry(string(k), v)
			if err != nil {
				return err
			}
			kvs = append(kvs, kv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: range %q after %q: %w", prefix, after, err)
	}
	return kvs, nil
}

// Last implements Store: a cursor seek past the prefix, then one step back.
func (b *Bolt) Last(ctx context.Context, prefix string) (KV, error) {
	if err := ctx.Err(); err != nil {
		return KV{}, fmt.Errorf("store: last %q: %w", prefix, err)
	}
	var kv KV
	err := b.db.View(func(tx *bolt.Tx) error {
		p := []byte(prefix)
		c := tx.Bucket(bucketKV).Cursor()
		var k, v []byte
		if end := prefixEnd(p); end == nil {
			k, v = c.Last()
		} else if k, _ = c.Seek(end); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		if k == nil || !bytes.HasPrefix(k, p) {
			return ErrNotFound
		}
		var err error
		kv, err = decodeEntry(string(k), v)
		return err
	})
	if err != nil {
		return KV{}, fmt.Errorf("store: last %q: %w", prefix, err)
	}
	return kv, nil
}

// prefixEnd returns the least key greater than every key starting with p,
// or nil when there is none (p is empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Apply implements Store. As in an etcd transaction, every compare runs
// before any write.
//
// Applies are group-committed (see Bolt): the caller that finds no commit
// running becomes the leader and commits its batch at once; the others wait,
// and when a commit ends the first of them leads the next batch. A request
// whose ctx is done by the time its batch starts is dropped with ctx's error
// and writes nothing.
func (b *Bolt) Apply(ctx context.Context, ops ...Op) (int64, error) {
	return b.Queue(ctx, ops...)()
}

// Queue implements Queuer: it queues ops as one Apply and returns at once;
// wait returns the Apply's outcome once it is durable. Queued Applies
// commit in the order they were queued. wait must be called (exactly
// once, without blocking in between: see Queuer): the first Apply queued
// while no commit runs leads the next batch from its wait, and every
// Apply queued after it waits for that.
func (b *Bolt) Queue(ctx context.Context, ops ...Op) (wait func() (int64, error)) {
	fail := func(err error) func() (int64, error) {
		return func() (int64, error) { return 0, fmt.Errorf("store: apply: %w", err) }
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := checkOps(ops); err != nil {
		return fail(err)
	}
	r := &applyReq{ctx: ctx, ops: ops, done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fail(fmt.Errorf("%s: %w", b.path, bolterrors.ErrDatabaseNotOpen))
	}
	b.queue = append(b.queue, r)
	if b.hooks != nil && b.hooks.queued != nil {
		b.hooks.queued(len(b.queue))
	}
	if !b.committing {
		// The queue was empty: r leads, from its wait.
		b.committing = true
		return func() (int64, error) {
			b.mu.Lock()
			b.lead(r)
			return r.rev, r.err
		}
	}
	return func() (int64, error) {
		<-r.done
		if r.lead {
			b.mu.Lock()
			b.lead(r)
		}
		return r.rev, r.err
	}
}

// lead commits one batch from the head of the queue, which holds self, and
// hands the next batch to the first Apply still queued. It is called with
// b.mu held and committing set, and returns with b.mu released. The
// hand-off is deferred so that it happens whatever commit does: a leader
// that left committing set would make every later Apply and Close wait for
// ever.
func (b *Bolt) lead(self *applyReq) {
	n := min(len(b.queue), maxBatch)
	batch := slices.Clone(b.queue[:n])
	b.queue = slices.Delete(b.queue, 0, n)
	b.mu.Unlock()
	defer b.handOff(batch, self)
	b.commit(batch)
}

// handOff ends a leader's turn: every request of batch but self learns its
// outcome (one without any, which only a bug in this file could leave, is
// failed), and the first Apply still queued leads next.
func (b *Bolt) handOff(batch []*applyReq, self *applyReq) {
	for _, r := range batch {
		if r.err == nil && r.rev == 0 {
			r.err = fmt.Errorf("store: apply: %s: the write was not carried out", b.path)
		}
	}
	b.mu.Lock()
	var next *applyReq
	if len(b.queue) > 0 {
		next = b.queue[0]
		next.lead = true
	} else {
		b.committing = false
		b.idle.Broadcast()
	}
	b.mu.Unlock()
	for _, r := range batch {
		if r != self {
			close(r.done)
		}
	}
	if next != nil {
		close(next.done)
	}
}

// commit runs batch in one transaction and sets each request's outcome. If
// the transaction is refused by what a request does in it (anything but a
// refused compare: a write bbolt refuses, a corrupt entry, a panic), it is
// rolled back and each request is retried alone, in order, so that one bad
// request cannot fail the others' writes. If bbolt fails to begin or to
// commit the transaction, every request of it fails and none is retried:
// after a failed commit the file may hold some of the batch (bbolt writes
// its meta page before the last fdatasync), and a retry could write a
// request twice.
func (b *Bolt) commit(batch []*applyReq) {
	live := make([]*applyReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("store: apply: %w", err)
			continue
		}
		live = append(live, r)
	}
	if len(live) > 1 {
		if retry := b.update(live); !retry {
			return
		}
	}
	for _, r := range live {
		b.update([]*applyReq{r}) // a lone request's outcome is set either way
	}
}

// errNothingWritten rolls back a transaction in which every request was
// refused, so that no empty transaction is fsynced.
var errNothingWritten = errors.New("nothing written")

// update applies reqs in order in one write transaction: each takes the
// next revision and sees the writes of those before it. A request whose
// compares fail gets its error and writes nothing. If the transaction is
// refused by what a request does in it, it is rolled back and update
// reports retry for a batch, or fails the lone request. If bbolt cannot
// begin or commit it — including a panic in its commit, where most of its
// corruption panics are raised — every request fails. Otherwise every
// request's outcome is set.
func (b *Bolt) update(reqs []*applyReq) (retry bool) {
	revs := make([]int64, len(reqs))
	refused := make([]error, len(reqs))
	var inner error // why the transaction function refused the transaction
	err := b.transact(len(reqs), func(tx *bolt.Tx) (err error) {
		// bbolt panics on some corruptions; it rolls the transaction back.
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
			if err != nil && err != errNothingWritten {
				inner = err
			}
		}()
		if b.hooks != nil && b.hooks.beforeTx != nil {
			b.hooks.beforeTx(len(reqs))
		}
		meta, kvs := tx.Bucket(bucketMeta), tx.Bucket(bucketKV)
		cur, err := storeRevision(meta)
		if err != nil {
			return err
		}
		wrote := false
		for i, r := range reqs {
			if refused[i], err = applyOps(kvs, cur, r.ops); err != nil {
				return err
			}
			if refused[i] == nil {
				cur++
				revs[i] = cur
				wrote = true
			}
		}
		if !wrote {
			return errNothingWritten
		}
		return meta.Put(keyRevision, encodeRevision(cur))
	})
	switch {
	case err != nil && inner != nil && len(reqs) > 1:
		return true
	case err != nil && inner != nil:
		reqs[0].rev, reqs[0].err = 0, fmt.Errorf("store: apply: %w", inner)
		return false
	case err != nil && err != errNothingWritten:
		for _, r := range reqs {
			r.rev, r.err = 0, fmt.Errorf("store: apply: %s: the transaction of %d writes failed: %w", b.path, len(reqs), err)
		}
		return false
	}
	for i, r := range reqs {
		if refused[i] != nil {
			r.rev, r.err = 0, fmt.Errorf("store: apply: %w", refused[i])
		} else {
			r.rev, r.err = revs[i], nil
		}
	}
	return false
}

// transact runs fn in a bbolt write transaction for n Applies, with a panic
// anywhere in it (fn's own are fn's to recover) returned as an error: a
// panic must not come out of the leader's Apply, whose own write may
// already be committed.
func (b *Bolt) transact(n int, fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	if err := b.db.Update(fn); err != nil {
		return err
	}
	if b.hooks != nil && b.hooks.committed != nil {
		b.hooks.committed(n) // after the commit, where tests stand in for a panic in it
	}
	return nil
}

// applyOps checks ops against kvs at store revision cur and, if every
// compare holds, writes them at revision cur+1. refused is the compare that
// failed (ErrConflict, or ErrNotFound for a delete of an absent key), in
// which case nothing was written; err is any other failure, after which the
// transaction must be rolled back.
func applyOps(kvs *bolt.Bucket, cur int64, ops []Op) (refused, err error) {
	for _, op := range ops {
		var have int64
		if raw := kvs.Get([]byte(op.Key)); raw != nil {
			if have, err = entryRevision(op.Key, raw); err != nil {
				return nil, err
			}
			if have > cur {
				return nil, fmt.Errorf("corrupt store: %q is at revision %d, past the store's %d", op.Key, have, cur)
			}
		}
		if op.Expect != Any && op.Expect != have {
			return conflict(op.Key, have, op.Expect), nil
		}
		if op.Delete && have == 0 {
			return fmt.Errorf("%w: cannot delete %q", ErrNotFound, op.Key), nil
		}
	}
	next := cur + 1
	for _, op := range ops {
		if op.Check {
			continue
		}
		if op.Delete {
			err = kvs.Delete([]byte(op.Key))
		} else {
			err = kvs.Put([]byte(op.Key), encodeEntry(next, op.Value))
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %w", op.Key, err)
		}
	}
	return nil, nil
}

// Close implements Store. It refuses new Applies, waits for those already
// queued or committing and for other transactions in flight, and releases
// the file lock; calling it again does nothing.
func (b *Bolt) Close() error {
	b.mu.Lock()
	b.closed = true
	for b.committing {
		b.idle.Wait()
	}
	b.mu.Unlock()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", b.path, err)
	}
	return nil
}

func encodeRevision(rev int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(rev))
}

func storeRevision(meta *bolt.Bucket) (int64, error) {
	raw := meta.Get(keyRevision)
	if len(raw) != 8 {
		return 0, fmt.Errorf("corrupt store: revision is %d bytes, want 8", len(raw))
	}
	rev := int64(binary.BigEndian.Uint64(raw))
	if rev < 0 {
		return 0, fmt.Errorf("corrupt store: negative revision %d", rev)
	}
	return rev, nil
}

// encodeEntry returns a fresh slice, so the caller's value may change after
// Apply returns.
func encodeEntry(rev int64, value []byte) []byte {
	out := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(out, uint64(rev))
	return append(out, value...)
}

func entryRevision(key string, raw []byte) (int64, error) {
	if len(raw) < 8 {
		return 0, fmt.Errorf("corrupt store: entry %q is %d bytes, want at least 8", key, len(raw))
	}
	rev := int64(binary.BigEndian.Uint64(raw))
	if rev <= 0 {
		return 0, fmt.Errorf("corrupt store: entry %q has revision %d", key, rev)
	}
	return rev, nil
}

// decodeEntry copies the value out of raw, which bbolt owns and which is
// valid only inside the transaction.
func decodeEntry(key string, raw []byte) (KV, error) {
	rev, err := entryRevision(key, raw)
	if err != nil {
		return KV{}, err
	}
	return KV{Key: key, Value: bytes.Clone(raw[8:]), Revision: rev}, nil
}
