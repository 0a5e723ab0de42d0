package keybroker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/manifest"
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
	if rc.Info != api.ReleaseInfo("w", "tok") || len(rc.Enc) == 0 || len(out) != 2 {
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
	other.Info = api.ReleaseInfo("w", "another-token")
	if _, err := UnwrapAll(priv, other, out); err == nil {
		t.Error("the release opened under another token's info")
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
// clock (set back across a restart) still records after it, once it has
// read a page; and the records it makes are paged without a new listing.
func TestAuditPageAfterRestart(t *testing.T) {
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
	rel(b, "before-restart", t0.Add(time.Hour))
	b2 := New(st, b.sealer)
	if recs, next, err := b2.AuditPage(ctx, "", 10); err != nil || len(recs) != 1 || next != "" {
		t.Fatalf("first page: %+v %q %v", recs, next, err)
	}
	rel(b2, "after-restart", t0)
	recs, _, err := b2.AuditPage(ctx, "", 10)
	if err != nil || len(recs) != 2 || recs[0].TokenID != "before-restart" || recs[1].TokenID != "after-restart" {
		t.Fatalf("pages after the restart: %+v %v", recs, err)
	}
}
