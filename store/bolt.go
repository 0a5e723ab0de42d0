package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
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

// Bolt is the embedded Store: one bbolt file, held under an exclusive file
// lock while open. Reads run concurrently; Applies run one at a time and
// are durable (fsync) when they return.
type Bolt struct {
	db   *bolt.DB
	path string
}

var _ Store = (*Bolt)(nil)

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
	return &Bolt{db: db, path: path}, nil
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
func (b *Bolt) Apply(ctx context.Context, ops ...Op) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("store: apply: %w", err)
	}
	if err := checkOps(ops); err != nil {
		return 0, fmt.Errorf("store: apply: %w", err)
	}
	var rev int64
	err := b.db.Update(func(tx *bolt.Tx) error {
		meta, kvs := tx.Bucket(bucketMeta), tx.Bucket(bucketKV)
		cur, err := storeRevision(meta)
		if err != nil {
			return err
		}
		for _, op := range ops {
			var have int64
			if raw := kvs.Get([]byte(op.Key)); raw != nil {
				if have, err = entryRevision(op.Key, raw); err != nil {
					return err
				}
				if have > cur {
					return fmt.Errorf("corrupt store: %q is at revision %d, past the store's %d", op.Key, have, cur)
				}
			}
			if op.Expect != Any && op.Expect != have {
				return conflict(op.Key, have, op.Expect)
			}
			if op.Delete && have == 0 {
				return fmt.Errorf("%w: cannot delete %q", ErrNotFound, op.Key)
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
				return fmt.Errorf("%q: %w", op.Key, err)
			}
		}
		if err := meta.Put(keyRevision, encodeRevision(next)); err != nil {
			return err
		}
		rev = next
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: apply: %w", err)
	}
	return rev, nil
}

// Close implements Store. It waits for transactions in flight and releases
// the file lock; calling it again does nothing.
func (b *Bolt) Close() error {
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
