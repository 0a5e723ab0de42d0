package keybroker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustbound/trustbound/store"
)

// The audit trail: one store entry per released secret, at
// audit/<position>, where a position is <20-digit time>-<16 hex>-<16 hex>.

const auditPrefix = "audit/"

// auditTrail orders a broker's audit records and indexes their
// positions for pages.
//
// Positions: a release takes the positions of its records and records
// them under mu, with time parts that strictly grow whatever the clock
// does (a coarse clock, a clock set back), so positions grow in the order
// records are committed and a reader paging through the trail never finds
// a record appear behind its cursor.
//
// Index: the first page read lists the trail once and keeps its
// positions (about 80 bytes a record), in order; the broker's later
// records are appended as they are committed. A page is then a search and
// one Get per record, whatever the trail's length: the store contract has
// no range read, and listing the whole trail for each page is what
// reading a large trail cost before (memory and time in the trail's
// size). The index assumes the broker is its store's only writer of audit
// records, as a coordinator's broker is (bbolt locks its file to one
// process); a record written by another broker on the same store after
// the index was built is not paged until the broker is made again.
type auditTrail struct {
	mu     sync.Mutex
	last   int64    // time part of the last position taken
	keys   []string // the index: store keys in order, once loaded
	loaded bool
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
	t := &b.trail
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.last
	keys := make([]string, len(entries))
	ops := make([]store.Op, 0, len(entries)+len(conditions))
	for i, entry := range entries {
		last = max(now.UnixNano(), last+1)
		keys[i] = auditKey(last, tokenID, names[i])
		ops = append(ops, store.Op{Key: keys[i], Value: entry, Expect: 0})
	}
	ops = append(ops, conditions...)
	if _, err := b.st.Apply(ctx, ops...); err != nil {
		return fmt.Errorf("keybroker: recording the release: %w", err)
	}
	t.last = last
	if t.loaded {
		t.keys = append(t.keys, keys...)
	}
	return nil
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
	keys, more, err := b.trail.page(ctx, b.st, auditPrefix+cursor, cursor != "", limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]Release, 0, len(keys))
	for _, k := range keys {
		kv, err := b.st.Get(ctx, k)
		if err != nil {
			return nil, "", fmt.Errorf("keybroker: audit %s: %w", k, err)
		}
		r, err := decodeAudit(kv)
		if err != nil {
			return nil, "", err
		}
		out = append(out, r)
	}
	next := ""
	if more {
		next = strings.TrimPrefix(keys[len(keys)-1], auditPrefix)
	}
	return out, next, nil
}

// page returns the keys of at most limit records after the key after
// (from the start when !exclusive and after is the prefix), loading the
// index on first use, and whether more follow.
func (t *auditTrail) page(ctx context.Context, st store.Store, after string, exclusive bool, limit int) ([]string, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.loaded {
		kvs, err := st.List(ctx, auditPrefix)
		if err != nil {
			return nil, false, err
		}
		t.keys = make([]string, len(kvs))
		for i, kv := range kvs {
			t.keys[i] = kv.Key
		}
		t.loaded = true
		// Positions taken from now on follow every stored one, even one
		// a clock set back would place before.
		if n := len(t.keys); n > 0 && len(t.keys[n-1]) >= len(auditPrefix)+20 {
			if ts, err := strconv.ParseInt(t.keys[n-1][len(auditPrefix):len(auditPrefix)+20], 10, 64); err == nil {
				t.last = max(t.last, ts)
			}
		}
	}
	start, found := slices.BinarySearch(t.keys, after)
	if found && exclusive {
		start++
	}
	end := min(start+limit, len(t.keys))
	return slices.Clone(t.keys[start:end]), end < len(t.keys), nil
}

func decodeAudit(kv store.KV) (Release, error) {
	var r Release
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return Release{}, fmt.Errorf("keybroker: audit %s: %w", kv.Key, err)
	}
	return r, nil
}
