package coordinator

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestNoncesSingleUseAndExpiry(t *testing.T) {
	n := newNonces(time.Minute, 10)
	a, exp, err := n.issue(t0)
	if err != nil || !exp.Equal(t0.Add(time.Minute)) {
		t.Fatal(err)
	}
	if err := n.consume(a, t0.Add(59*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := n.consume(a, t0.Add(59*time.Second)); !errors.Is(err, ErrNonce) {
		t.Errorf("second use: %v", err)
	}
	b, _, _ := n.issue(t0)
	if err := n.consume(b, t0.Add(time.Minute)); !errors.Is(err, ErrNonce) {
		t.Errorf("expired: %v", err)
	}
	if err := n.consume("never-issued", t0); !errors.Is(err, ErrNonce) {
		t.Errorf("unknown: %v", err)
	}
}

// A flood of challenges evicts the oldest instead of refusing new ones, and
// memory stays bounded.
func TestNoncesFloodEvictsOldest(t *testing.T) {
	n := newNonces(time.Minute, 100)
	first, _, _ := n.issue(t0)
	for range 1000 {
		if _, _, err := n.issue(t0); err != nil {
			t.Fatal(err)
		}
	}
	if len(n.live) > 100 || len(n.order) > 101 {
		t.Fatalf("%d live, %d queued; want at most 100", len(n.live), len(n.order))
	}
	if err := n.consume(first, t0); !errors.Is(err, ErrNonce) {
		t.Error("the oldest nonce survived the flood")
	}
	fresh, _, _ := n.issue(t0)
	if err := n.consume(fresh, t0); err != nil {
		t.Errorf("a fresh nonce after the flood: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(10, 5, 2)
	for i := range 5 {
		if !l.allow("a", t0) {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if l.allow("a", t0) {
		t.Error("burst exceeded")
	}
	if !l.allow("a", t0.Add(100*time.Millisecond)) {
		t.Error("no refill after 100ms at 10/s")
	}
	if !l.allow("b", t0) {
		t.Error("another client limited by the first")
	}
	// The table is full (a, b) and neither has refilled: a third is refused...
	if l.allow("c", t0) {
		t.Error("client table grew past its bound")
	}
	// ...until the others have refilled.
	if !l.allow("c", t0.Add(time.Second)) {
		t.Error("idle clients were not forgotten")
	}
}
