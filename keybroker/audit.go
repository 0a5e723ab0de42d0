package keybroker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustbound/trustbound/store"
)

// The audit trail: one store entry per released secret, at
// audit/<position>, where a position is <20-digit time>-<16 hex>-<16 hex>.

const auditPrefix = "audit/"

// auditTrail orders a broker's audit records.
//
// A release takes the positions of its records and queues them for the
// store under mu, with time parts that strictly grow whatever the clock
// does (a coarse clock, a clock set back, a restart with the clock behind
// the last stored record), so positions grow in the order records are
// committed and a reader paging through the trail never finds a record
// appear behind its cursor. With a store.Queuer (store.Bolt) the release
// waits for its commit outside mu, so that the records of concurrent
// releases share commits (group commit); with another store it commits
// under mu. The first record after the broker is made
// reads the last stored position (store.Store.Last) to continue after it.
// This assumes the broker is its store's only writer of audit records, as
// a coordinator's broker is (bbolt locks its file to one process).
//
// Pages need no index: each is one bounded range read of the store
// (store.Store.Range), whatever the trail's length.
type auditTrail struct {
	mu     sync.Mutex
	last   int64 // time part of the last position taken
	loaded bool  // last accounts for the stored trail
}

// auditKey is the store key of a record at time part ts: the digest and
// random parts keep positions unique between writers of one store.
func auditKey(ts int64, tokenID, secret string) string {
	h := sha256.Sum256([]byte(tokenID + "\x00" + secret))
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails
	return fmt.Sprintf(auditPrefix+"%020d-%s-%s", ts, hex.EncodeToString(h[:8]), hex.EncodeToString(r[:]))
}

// record writes the audit entries of one release (entries[i] for secret
// names[i]) at fresh positions, in one Apply with conditions.
func (b *Broker) record(ctx context.Context, now time.Time, tokenID string, names []string, entries [][]byte, conditions []store.Op) error {
	wait, err := b.queueRecord(ctx, now, tokenID, names, entries, conditions)
	if err == nil {
		_, err = wait()
	}
	if err != nil {
		return fmt.Errorf("keybroker: recording the release: %w", err)
	}
	return nil
}

// queueRecord takes the positions of a release's entries and, under the
// trail's lock, queues their Apply (store.Queuer) or, with another store,
// carries it out; wait is the Apply's outcome, to be waited for outside
// the lock.
func (b *Broker) queueRecord(ctx context.Context, now time.Time, tokenID string, names []string, entries [][]byte, conditions []store.Op) (wait func() (int64, error), err error) {
	t := &b.trail
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.loaded {
		stored, err := lastPosition(ctx, b.st)
		if err != nil {
			return nil, err
		}
		t.last, t.loaded = max(t.last, stored), true
	}
	last := t.last
	ops := make([]store.Op, 0, len(entries)+len(conditions))
	for i, entry := range entries {
		last = max(now.UnixNano(), last+1)
		ops = append(ops, store.Op{Key: auditKey(last, tokenID, names[i]), Value: entry, Expect: 0})
	}
	ops = append(ops, conditions...)
	if q, ok := b.st.(store.Queuer); ok {
		// Queued in position order; the positions are taken even if the
		// write fails (a gap in the trail is harmless, going back is not).
		t.last = last
		return q.Queue(ctx, ops...), nil
	}
	rev, err := b.st.Apply(ctx, ops...)
	if err == nil {
		t.last = last
	}
	return func() (int64, error) { return rev, err }, nil
}

// lastPosition returns the time part of the last stored audit position, 0
// for an empty trail.
func lastPosition(ctx context.Context, st store.Store) (int64, error) {
	kv, err := st.Last(ctx, auditPrefix)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("keybroker: reading the last audit position: %w", err)
	}
	pos := strings.TrimPrefix(kv.Key, auditPrefix)
	if CheckCursor(pos) != nil {
		return 0, fmt.Errorf("keybroker: corrupt audit trail: key %q is not a position <20 digits>-<16 hex>-<16 hex>", kv.Key)
	}
	ts, err := strconv.ParseInt(pos[:20], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("keybroker: corrupt audit trail: key %q: %w", kv.Key, err)
	}
	return ts, nil
}

// Audit lists the recorded releases, oldest first.
func (b *Broker) Audit(ctx context.Context) ([]Release, error) {
	kvs, err := b.st.List(ctx, auditPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Release, 0, len(kvs))
	for _, kv := range kvs {
		r, err := decodeAudit(kv)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ErrCursor means an audit cursor is not one AuditPage returned.
var ErrCursor = errors.New("keybroker: malformed audit cursor (use the next of a previous page)")

// CheckCursor refuses a cursor that is not of the form AuditPage returns:
// the position of a record, <20 digits>-<16 hex>-<16 hex>.
func CheckCursor(cursor string) error {
	const n = 20 + 1 + 16 + 1 + 16
	if len(cursor) != n || cursor[20] != '-' || cursor[37] != '-' {
		return ErrCursor
	}
	for i := range n {
		ch := cursor[i]
		switch {
		case i == 20 || i == 37:
		case i < 20 && '0' <= ch && ch <= '9':
		case i > 20 && ('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f'):
		default:
			return ErrCursor
		}
	}
	return nil
}

// AuditPage returns at most limit recorded releases that follow the
// record at cursor ("" for the start), oldest first, and the cursor of
// the last one when more follow ("" when the page is the last so far).
// Every record has its own position and positions grow in the order
// records are committed (auditTrail), so successive pages neither repeat
// nor skip a record.
func (b *Broker) AuditPage(ctx context.Context, cursor string, limit int) ([]Release, string, error) {
	if cursor != "" {
		if err := CheckCursor(cursor); err != nil {
			return nil, "", err
		}
	}
	if limit <= 0 {
		return nil, "", errors.New("keybroker: an audit page needs a positive limit")
	}
	after := ""
	if cursor != "" {
		after = auditPrefix + cursor
	}
	// One more than asked for tells whether more follow.
	kvs, err := b.st.Range(ctx, auditPrefix, after, min(limit, math.MaxInt-1)+1)
	if err != nil {
		return nil, "", fmt.Errorf("keybroker: audit page: %w", err)
	}
	more := len(kvs) > limit
	if more {
		kvs = kvs[:limit]
	}
	out := make([]Release, 0, len(kvs))
	for _, kv := range kvs {
		r, err := decodeAudit(kv)
		if err != nil {
			return nil, "", err
		}
		out = append(out, r)
	}
	next := ""
	if more {
		next = strings.TrimPrefix(kvs[len(kvs)-1].Key, auditPrefix)
	}
	return out, next, nil
}

func decodeAudit(kv store.KV) (Release, error) {
	var r Release
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return Release{}, fmt.Errorf("keybroker: audit %s: %w", kv.Key, err)
	}
	return r, nil
}
