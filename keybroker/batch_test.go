package keybroker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

func TestReleaseAllOneContext(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	priv, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	pw := manifest.Secret{Name: "pw", Type: manifest.User}
	if _, err := b.SetUser(ctx, pw, []byte("pw-value"), t0); err != nil {
		t.Fatal(err)
	}
	req := ReleaseRequest{
		Record:  Release{Workload: "w", TokenID: "tok"},
		Secrets: []manifest.Secret{{Name: "k", Type: manifest.Symmetric}, pw},
		To:      wire, Now: t0,
	}
	out, rc, err := b.ReleaseAll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Info != api.ReleaseInfo("w", "tok", out) || len(rc.Enc) == 0 || len(out) != 2 {
		t.Fatalf("context %+v, %d secrets", rc, len(out))
	}
	vals, err := UnwrapAll(priv, rc, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals[0]) != 32 || string(vals[1]) != "pw-value" {
		t.Fatalf("values: %d bytes, %q", len(vals[0]), vals[1])
	}
	// The additional data binds each message to its secret's name and version.
	tampered := slices.Clone(out)
	tampered[1].Info = api.SecretInfo("w", "pw", 99)
	if _, err := UnwrapAll(priv, rc, tampered); err == nil {
		t.Error("a secret opened under another version's info")
	}
	// The info string binds the context to the release.
	other := rc
	other.Info = api.ReleaseInfo("w", "another-token", out)
	if _, err := UnwrapAll(priv, other, out); err == nil {
		t.Error("the release opened under another token's info")
	}
	// The info names the secrets in order: cut short or reordered, the
	// release is refused before any message is opened, even under the
	// info the context was made with.
	for name, secrets := range map[string][]api.WrappedSecret{
		"truncated": out[:1],
		"reordered": {out[1], out[0]},
	} {
		if vals, err := UnwrapAll(priv, rc, secrets); !errors.Is(err, ErrReleaseMismatch) || vals != nil {
			t.Errorf("%s: %v, %v; want ErrReleaseMismatch", name, vals, err)
		}
		forged := rc
		forged.Info = api.ReleaseInfo("w", "tok", secrets)
		if vals, err := UnwrapAll(priv, forged, secrets); err == nil || vals != nil {
			t.Errorf("%s under an info naming them: opened %v", name, vals)
		}
	}
	if audit, err := b.Audit(ctx); err != nil || len(audit) != 2 || audit[0].TokenID != "tok" {
		t.Fatalf("audit %+v %v", audit, err)
	}
	if vals, err := UnwrapAll(priv, api.ReleaseContext{}, nil); err != nil || vals != nil {
		t.Errorf("an empty release: %v %v", vals, err)
	}
}

func TestAuditPage(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	_, wire, _ := NewTEEKey()
	// Every release at the same instant (a coarse clock): positions still
	// follow the order of recording.
	for i := range 7 {
		req := ReleaseRequest{Record: Release{Workload: "w", TokenID: fmt.Sprint("t", i)},
			Secrets: []manifest.Secret{{Name: "k", Type: manifest.Symmetric}}, To: wire, Now: t0}
		if _, err := b.Release(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	// The clock stepping back does not put a record behind the others.
	req := ReleaseRequest{Record: Release{Workload: "w", TokenID: "t7"},
		Secrets: []manifest.Secret{{Name: "k", Type: manifest.Symmetric}}, To: wire, Now: t0.Add(-time.Hour)}
	if _, err := b.Release(ctx, req); err != nil {
		t.Fatal(err)
	}
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		recs, next, err := b.AuditPage(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		if pages > 3 || (next != "" && len(recs) != 3) {
			t.Fatalf("page %d: %d records, next %q", pages, len(recs), next)
		}
		for _, r := range recs {
			ids = append(ids, r.TokenID)
		}
		if next == "" {
			break
		}
		if err := CheckCursor(next); err != nil {
			t.Fatalf("next %q: %v", next, err)
		}
		cursor = next
	}
	if want := []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"}; !slices.Equal(ids, want) {
		t.Fatalf("pages give %v, want %v", ids, want)
	}
	for _, bad := range []string{"x", "00000000000000000001-0123456789abcdef-0123456789abcdeF",
		"0000000000000000000a-0123456789abcdef-0123456789abcdef", "00000000000000000001_0123456789abcdef-0123456789abcdef",
		"00000000000000000001-0123456789abcdef-0123456789abcdef0"} {
		if _, _, err := b.AuditPage(ctx, bad, 3); !errors.Is(err, ErrCursor) {
			t.Errorf("cursor %q: %v, want ErrCursor", bad, err)
		}
	}
	if _, _, err := b.AuditPage(ctx, "", 0); err == nil {
		t.Error("a page of 0 records was asked for and given")
	}
}

// FuzzCheckCursor: a cursor comes from a query string, untrusted. One that
// passes is exactly the shape of an audit position.
func FuzzCheckCursor(f *testing.F) {
	f.Add("00000000000000000001-0123456789abcdef-0123456789abcdef")
	f.Add("")
	f.Add("00000000000000000001-0123456789abcdef-0123456789abcde")
	f.Fuzz(func(t *testing.T, c string) {
		if CheckCursor(c) != nil {
			return
		}
		if len(c) != 54 || c[20] != '-' || c[37] != '-' {
			t.Fatalf("accepted %q", c)
		}
		for i, ch := range c {
			digit := '0' <= ch && ch <= '9'
			switch {
			case i == 20 || i == 37:
			case i < 20 && digit, i > 20 && (digit || 'a' <= ch && ch <= 'f'):
			default:
				t.Fatalf("accepted %q", c)
			}
		}
	})
}

// A broker made again on a store whose last record is later than its
// clock (set back across a restart) still records after it, whether or not
// it has read a page first, so a reader resuming from its cursor at the
// last record before the restart finds the new ones.
func TestAuditAfterRestartWithClockBehind(t *testing.T) {
	ctx := context.Background()
	b, st := newBroker(t)
	_, wire, _ := NewTEEKey()
	rel := func(b *Broker, tok string, now time.Time) {
		t.Helper()
		req := ReleaseRequest{Record: Release{Workload: "w", TokenID: tok},
			Secrets: []manifest.Secret{{Name: "k", Type: manifest.Symmetric}}, To: wire, Now: now}
		if _, err := b.Release(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	rel(b, "first", t0)
	rel(b, "before-restart", t0.Add(time.Hour)) // "in the future" of the clock below
	recs, next, err := b.AuditPage(ctx, "", 1)
	if err != nil || len(recs) != 1 || next == "" {
		t.Fatalf("first page: %+v %q %v", recs, next, err)
	}
	recs, _, err = b.AuditPage(ctx, next, 1)
	if err != nil || len(recs) != 1 || recs[0].TokenID != "before-restart" {
		t.Fatalf("second page: %+v %v", recs, err)
	}
	last, err := st.Last(ctx, auditPrefix)
	if err != nil {
		t.Fatal(err)
	}
	cursor := last.Key[len(auditPrefix):] // where a reader stands after the restart

	for _, firstPage := range []bool{false, true} {
		b2 := New(st, b.sealer)
		if firstPage {
			if _, _, err := b2.AuditPage(ctx, "", 10); err != nil {
				t.Fatal(err)
			}
		}
		tok := fmt.Sprint("after-restart-", firstPage)
		rel(b2, tok, t0)
		recs, next, err := b2.AuditPage(ctx, cursor, 10)
		if err != nil || len(recs) != 1 || recs[0].TokenID != tok || next != "" {
			t.Fatalf("read a page first %v: resuming from the last record before the restart gives %+v %q %v, want %s", firstPage, recs, next, err, tok)
		}
		last, err := st.Last(ctx, auditPrefix)
		if err != nil {
			t.Fatal(err)
		}
		cursor = last.Key[len(auditPrefix):]
	}
}

// A broker whose store holds an audit key that is not a position refuses
// to record rather than guess where the trail ends.
func TestAuditRefusesCorruptLastPosition(t *testing.T) {
	ctx := context.Background()
	b, st := newBroker(t)
	if _, err := store.Put(ctx, st, auditPrefix+"zzz", []byte("{}"), 0); err != nil {
		t.Fatal(err)
	}
	_, wire, _ := NewTEEKey()
	req := ReleaseRequest{Record: Release{Workload: "w", TokenID: "t"},
		Secrets: []manifest.Secret{{Name: "k", Type: manifest.Symmetric}}, To: wire, Now: t0}
	if _, err := b.Release(ctx, req); err == nil || !strings.Contains(err.Error(), "corrupt audit trail") {
		t.Fatalf("release over a corrupt trail: %v", err)
	}
}

// countingStore counts the entries its reads hand out and refuses List
// under the audit prefix: a page must be a bounded range read.
type countingStore struct {
	store.Store
	read int
}

func (c *countingStore) List(ctx context.Context, prefix string) ([]store.KV, error) {
	if strings.HasPrefix(prefix, auditPrefix) || strings.HasPrefix(auditPrefix, prefix) {
		return nil, errors.New("test: the audit trail was listed whole")
	}
	kvs, err := c.Store.List(ctx, prefix)
	c.read += len(kvs)
	return kvs, err
}

func (c *countingStore) Range(ctx context.Context, prefix, after string, limit int) ([]store.KV, error) {
	kvs, err := c.Store.Range(ctx, prefix, after, limit)
	c.read += len(kvs)
	return kvs, err
}

func (c *countingStore) Get(ctx context.Context, key string) (store.KV, error) {
	c.read++
	return c.Store.Get(ctx, key)
}

// A page reads its records and one more, whatever the trail's length, and
// sees records another broker on the same store wrote after an earlier
// page.
func TestAuditPageIsBounded(t *testing.T) {
	ctx := context.Background()
	writer, st := newBroker(t)
	_, wire, _ := NewTEEKey()
	rel := func(b *Broker, tok string) {
		t.Helper()
		req := ReleaseRequest{Record: Release{Workload: "w", TokenID: tok},
			Secrets: []manifest.Secret{{Name: "k", Type: manifest.Symmetric}}, To: wire, Now: t0}
		if _, err := b.Release(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		rel(writer, fmt.Sprint("t", i))
	}
	cs := &countingStore{Store: st}
	reader := New(cs, writer.sealer)
	recs, next, err := reader.AuditPage(ctx, "", 3)
	if err != nil || len(recs) != 3 || next == "" {
		t.Fatalf("first page: %d records, next %q, %v", len(recs), next, err)
	}
	if cs.read != 4 {
		t.Errorf("a page of 3 of 40 records read %d entries, want 4", cs.read)
	}
	// Past the end of the trail so far, then a record from the other broker.
	var cursor string
	for cursor = next; ; {
		_, n, err := reader.AuditPage(ctx, cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		if n == "" {
			break
		}
		cursor = n
	}
	recs, _, err = reader.AuditPage(ctx, cursor, 10)
	if err != nil || len(recs) == 0 || recs[len(recs)-1].TokenID != "t39" {
		t.Fatalf("last page: %+v %v", recs, err)
	}
	last, err := st.Last(ctx, auditPrefix)
	if err != nil {
		t.Fatal(err)
	}
	rel(writer, "late")
	recs, next, err = reader.AuditPage(ctx, last.Key[len(auditPrefix):], 10)
	if err != nil || len(recs) != 1 || recs[0].TokenID != "late" || next != "" {
		t.Fatalf("a record written after the reader's first page: %+v %q %v", recs, next, err)
	}
}

// The plaintexts a release seals are zeroed before it returns: after
// sealing, when sealing fails, when recording fails, and when a later
// secret has no value.
func TestReleaseZeroesPlaintexts(t *testing.T) {
	ctx := context.Background()
	b, st := newBroker(t)
	_, wire, _ := NewTEEKey()
	pw := manifest.Secret{Name: "pw", Type: manifest.User}
	if _, err := b.SetUser(ctx, pw, []byte("pw-value"), t0); err != nil {
		t.Fatal(err)
	}
	guard, err := store.Put(ctx, st, "guard", []byte("g"), 0)
	if err != nil {
		t.Fatal(err)
	}
	k := manifest.Secret{Name: "k", Type: manifest.Symmetric}
	for name, tc := range map[string]struct {
		secrets    []manifest.Secret
		sealErr    error
		conditions []store.Op
		wantErr    bool
		wantSeen   int
	}{
		"sealed":          {secrets: []manifest.Secret{k, pw}, wantSeen: 2},
		"sealing fails":   {secrets: []manifest.Secret{k, pw}, sealErr: errors.New("test: seal"), wantErr: true, wantSeen: 2},
		"recording fails": {secrets: []manifest.Secret{k, pw}, conditions: []store.Op{{Key: "guard", Expect: guard + 1, Check: true}}, wantErr: true, wantSeen: 2},
		"a secret unset":  {secrets: []manifest.Secret{k, {Name: "unset", Type: manifest.User}}, wantErr: true},
	} {
		var seen [][]byte
		req := ReleaseRequest{Record: Release{Workload: "w", TokenID: "tok"}, Secrets: tc.secrets, To: wire, Now: t0, Conditions: tc.conditions}
		_, err := b.release(ctx, req, func(out []api.WrappedSecret, values [][]byte) error {
			for _, v := range values {
				if len(v) == 0 || bytes.Equal(v, make([]byte, len(v))) {
					t.Errorf("%s: seal got an empty or zero value", name)
				}
			}
			seen = values
			return tc.sealErr
		})
		if (err != nil) != tc.wantErr || len(seen) != tc.wantSeen {
			t.Fatalf("%s: err %v, seal saw %d values; want error %v, %d values", name, err, len(seen), tc.wantErr, tc.wantSeen)
		}
		for i, v := range seen {
			if !bytes.Equal(v, make([]byte, len(v))) {
				t.Errorf("%s: value %d is not zeroed after release returned", name, i)
			}
		}
	}
	// The stored values are untouched: the next release opens them again.
	priv, wire2, _ := NewTEEKey()
	out, err := b.Release(ctx, ReleaseRequest{Record: Release{Workload: "w", TokenID: "t2"}, Secrets: []manifest.Secret{pw}, To: wire2, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Unwrap(priv, out[0]); err != nil || string(v) != "pw-value" {
		t.Fatalf("pw after the releases: %q %v", v, err)
	}
}

// A release of no secrets still names its token and says "0 secrets", with
// nothing encapsulated.
func TestReleaseAllNoSecrets(t *testing.T) {
	b, _ := newBroker(t)
	_, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	out, rc, err := b.ReleaseAll(context.Background(), ReleaseRequest{Record: Release{Workload: "w", TokenID: "tok"}, To: wire, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 || len(rc.Enc) != 0 || rc.Info != api.ReleaseInfo("w", "tok", nil) || !strings.Contains(rc.Info, " 0 secrets") {
		t.Fatalf("%d secrets, context %+v", len(out), rc)
	}
}

// onlyStore hides a store's Queuer, so the broker commits each record
// under its lock.
type onlyStore struct{ store.Store }

// Concurrent releases: every record is stored, and records commit in the
// order of their positions (a store revision never goes down along the
// trail), so a reader paging through it never finds a record appear behind
// its cursor — with the records queued for group commit (store.Bolt) and
// committed under the trail's lock (any other store).
func TestAuditConcurrentReleasesCommitInPositionOrder(t *testing.T) {
	for name, wrap := range map[string]func(store.Store) store.Store{
		"queued":       func(s store.Store) store.Store { return s },
		"under a lock": func(s store.Store) store.Store { return onlyStore{s} },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			_, st := newBroker(t)
			b := New(wrap(st), newSealer(t))
			if _, ok := b.st.(store.Queuer); ok != (name == "queued") {
				t.Fatalf("broker's store is a Queuer: %v", ok)
			}
			_, wire, err := NewTEEKey()
			if err != nil {
				t.Fatal(err)
			}
			const workers, each = 16, 8
			errs := make(chan error, workers)
			for w := range workers {
				go func() {
					for i := range each {
						_, _, err := b.ReleaseAll(ctx, ReleaseRequest{
							Record:  Release{Workload: "w", TokenID: fmt.Sprintf("tok-%d-%d", w, i)},
							Secrets: []manifest.Secret{{Name: "a", Type: manifest.Symmetric}, {Name: "b", Type: manifest.Symmetric}},
							To:      wire, Now: t0,
						})
						if err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}()
			}
			for range workers {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			kvs, err := st.List(ctx, auditPrefix)
			if err != nil {
				t.Fatal(err)
			}
			if len(kvs) != workers*each*2 {
				t.Fatalf("%d audit records, want %d", len(kvs), workers*each*2)
			}
			for i := 1; i < len(kvs); i++ {
				if kvs[i].Revision < kvs[i-1].Revision {
					t.Fatalf("record %s (revision %d) sorts after %s but committed before it (revision %d)",
						kvs[i].Key, kvs[i].Revision, kvs[i-1].Key, kvs[i-1].Revision)
				}
			}
		})
	}
}

// gatedQueuer passes Queue through to a store.Queuer, but the first
// queued release waits for its commit only once a second release has
// queued its records.
type gatedQueuer struct {
	store.Store
	q      store.Queuer
	n      atomic.Int32
	second chan struct{}
}

func (g *gatedQueuer) Queue(ctx context.Context, ops ...store.Op) func() (int64, error) {
	wait := g.q.Queue(ctx, ops...)
	switch g.n.Add(1) {
	case 1:
		return func() (int64, error) {
			select {
			case <-g.second:
				return wait()
			case <-time.After(20 * time.Second):
				_, _ = wait()
				return 0, errors.New("no other release queued its records while the first waited for its commit")
			}
		}
	case 2:
		close(g.second)
	}
	return wait
}

// A release waits for its audit commit outside the trail's lock, so that
// another release can queue its records meanwhile and share the commit.
func TestAuditReleasesQueueWhileOneWaits(t *testing.T) {
	ctx := context.Background()
	_, st := newBroker(t)
	g := &gatedQueuer{Store: st, q: st.(store.Queuer), second: make(chan struct{})}
	b := New(g, newSealer(t))
	_, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, _, err := b.ReleaseAll(ctx, ReleaseRequest{
				Record:  Release{Workload: "w", TokenID: fmt.Sprintf("tok-%d", i)},
				Secrets: []manifest.Secret{{Name: "a", Type: manifest.Symmetric}},
				To:      wire, Now: t0,
			})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if kvs, err := st.List(ctx, auditPrefix); err != nil || len(kvs) != 2 {
		t.Fatalf("audit trail: %d records, %v", len(kvs), err)
	}
}
