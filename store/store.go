// Package store is trustbound's small transactional key-value contract:
// string keys, opaque byte values, and one store-wide revision that grows by
// exactly 1 per successful Apply, so that every write can be a
// compare-and-swap on the revision the caller last read (etcd's ModRevision).
// Bolt, on one embedded bbolt file, is the default implementation; the
// contract is kept small enough for an etcd backend to follow, and
// store/storetest checks any backend against it.
//
// Values are stored as given: callers encrypt what is secret. Keys are not
// secret and appear in errors.
package store

import (
	"context"
	"errors"
	"fmt"
)

// Errors every backend wraps, so that callers can tell outcomes apart with
// errors.Is. When Apply returns any error, nothing was written.
var (
	// ErrNotFound: the key is absent (Get, or an Op that deletes it).
	ErrNotFound = errors.New("key not found")
	// ErrConflict: an Op's Expect did not hold. Read the key again and retry,
	// or give up; nothing was written.
	ErrConflict = errors.New("revision conflict")
	// ErrInvalid: the request itself is malformed (empty key, a key twice in
	// one Apply, no ops, ...). Retrying will not help.
	ErrInvalid = errors.New("invalid request")
)

// Any, as an Op's Expect, makes the write unconditional.
const Any int64 = -1

// KV is one entry.
type KV struct {
	Key   string
	Value []byte // the caller's own copy
	// Revision is the store revision of the Apply that last wrote this
	// entry (etcd's ModRevision); always > 0.
	Revision int64
}

// Op is one write in an Apply.
type Op struct {
	Key string
	// Value is the new value of Key; it must be empty when Delete is set.
	Value []byte
	// Delete removes Key; deleting an absent key is ErrNotFound.
	Delete bool
	// Expect is the revision Key must have for the Apply to go ahead: Any
	// (no condition), 0 (Key must be absent; the zero value, so an Op is
	// create-only unless it says otherwise) or the Revision last read.
	Expect int64
	// Check makes the op a compare only: Expect must hold, nothing is
	// written (etcd's Compare without a Put). It carries no value, is not a
	// Delete and does not expect Any; an Apply needs at least one write.
	Check bool
}

// Store is the contract every backend implements. Its methods are safe for
// concurrent use and check ctx before starting a transaction.
type Store interface {
	// Get returns the entry at key, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every entry whose key starts with prefix, sorted by key
	// (byte-wise); none is an empty result, not an error.
	List(ctx context.Context, prefix string) ([]KV, error)
	// Range returns, sorted by key, at most limit entries whose key starts
	// with prefix and sorts after the key after (byte-wise; "" for the
	// first): one bounded page of a List. limit must be positive (else
	// ErrInvalid); none is an empty result, not an error.
	Range(ctx context.Context, prefix, after string, limit int) ([]KV, error)
	// Last returns the entry whose key starts with prefix and sorts last,
	// or ErrNotFound when no key starts with prefix.
	Last(ctx context.Context, prefix string) (KV, error)
	// Apply performs all ops atomically if every Expect holds, and returns
	// the new store revision, which each written entry takes. Otherwise it
	// returns ErrConflict (or ErrNotFound for a delete of an absent key) and
	// changes nothing, not even the store revision. Each key may appear at
	// most once.
	Apply(ctx context.Context, ops ...Op) (int64, error)
	// Close releases the store; no method may be called afterwards.
	Close() error
}

// Queuer is implemented by a Store whose Applies commit in the order they
// are queued, and which can queue one without waiting for it: a caller that
// must make its writes visible in some order (the audit trail, in the
// order of its keys, for readers that page through it) queues them in that
// order under its own lock and waits for them outside it, so that its
// writes can share commits.
type Queuer interface {
	// Queue queues ops as one Apply (same contract) and returns at once;
	// wait, which must be called exactly once, returns the Apply's outcome
	// once it is durable. An Apply queued later never becomes visible
	// before one queued earlier. Every writer of the store may wait for a
	// queued Apply, so between Queue and wait the caller must not block:
	// no other call on the store (Apply, another Queue's wait, Close), no
	// lock another writer may hold while it writes.
	Queue(ctx context.Context, ops ...Op) (wait func() (int64, error))
}

// Put writes one key if its revision is expect (Any, 0 for absent, or a
// revision) and returns the new store revision.
func Put(ctx context.Context, s Store, key string, value []byte, expect int64) (int64, error) {
	return s.Apply(ctx, Op{Key: key, Value: value, Expect: expect})
}

// Delete removes one key if its revision is expect (Any or a revision).
func Delete(ctx context.Context, s Store, key string, expect int64) error {
	_, err := s.Apply(ctx, Op{Key: key, Delete: true, Expect: expect})
	return err
}

// checkKey rejects keys no backend accepts.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	return nil
}

// checkOps validates an Apply before any backend looks at the data, so that
// every backend rejects the same requests.
func checkOps(ops []Op) error {
	if len(ops) == 0 {
		return fmt.Errorf("%w: no ops", ErrInvalid)
	}
	seen := make(map[string]struct{}, len(ops))
	writes := 0
	for i, op := range ops {
		if !op.Check {
			writes++
		}
		if err := checkKey(op.Key); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("%w: op %d: key %q appears more than once", ErrInvalid, i, op.Key)
		}
		seen[op.Key] = struct{}{}
		switch {
		case op.Expect < Any:
			return fmt.Errorf("%w: op %d: key %q: expect %d (want Any, 0 or a revision)", ErrInvalid, i, op.Key, op.Expect)
		case op.Delete && op.Expect == 0:
			return fmt.Errorf("%w: op %d: delete of %q expects it absent (want Any or its revision)", ErrInvalid, i, op.Key)
		case op.Delete && len(op.Value) != 0:
			return fmt.Errorf("%w: op %d: delete of %q carries a value", ErrInvalid, i, op.Key)
		case op.Check && (op.Delete || len(op.Value) != 0 || op.Expect == Any):
			return fmt.Errorf("%w: op %d: a check of %q compares a revision (not Any) and writes nothing", ErrInvalid, i, op.Key)
		}
	}
	if writes == 0 {
		return fmt.Errorf("%w: no write among the ops", ErrInvalid)
	}
	return nil
}

// conflict describes a failed Expect; have is 0 for an absent key.
func conflict(key string, have, want int64) error {
	state := fmt.Sprintf("is at revision %d", have)
	if have == 0 {
		state = "is absent"
	}
	wanted := fmt.Sprintf("revision %d", want)
	if want == 0 {
		wanted = "absent"
	}
	return fmt.Errorf("%w: %q %s, expected %s", ErrConflict, key, state, wanted)
}
