package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
)

// TestBoundedRoutesExist: every bounded pattern is a route the coordinator
// serves, so a renamed route cannot silently escape the bound.
func TestBoundedRoutesExist(t *testing.T) {
	served := map[string]bool{}
	for _, rt := range (&Coordinator{}).routes() {
		served[rt.pattern] = true
	}
	for p := range boundedRoutes {
		if !served[p] {
			t.Errorf("bounded pattern %q is not a route", p)
		}
	}
}

func TestNewGateDefaults(t *testing.T) {
	g := newGate(0, 0)
	if cap(g.slots) < inFlightPerCPU || g.wait != defaultQueueTimeout || g.retryAfterSeconds() != 10 {
		t.Errorf("slots %d wait %s retry %d", cap(g.slots), g.wait, g.retryAfterSeconds())
	}
	if g := newGate(3, 300*time.Millisecond); cap(g.slots) != 3 || g.retryAfterSeconds() != 1 {
		t.Errorf("slots %d retry %d", cap(g.slots), g.retryAfterSeconds())
	}
}

// TestHandlerSheds: with every slot taken, the real Handler refuses an
// attest with 503, Retry-After and a problem body, before touching the
// request, while cheap routes still answer.
func TestHandlerSheds(t *testing.T) {
	c := &Coordinator{gate: newGate(1, time.Millisecond), log: slog.New(slog.DiscardHandler)}
	if err := c.gate.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, api.PathAttest, strings.NewReader("{}")))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("attest at capacity: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	var p api.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != http.StatusServiceUnavailable || p.Title != "Overloaded" {
		t.Fatalf("problem %+v (%v)", p, err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.PathHealth, nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Fatalf("health at capacity: %d %q", rec.Code, rec.Body.String())
	}
}

// TestOverloadNeverWrong: 10 requests against 2 slots whose holders do not
// finish until the others have been refused. Each request gets either its
// own answer (200) or 503 with Retry-After — never another's answer, never
// a partial one — and exactly 2 are served.
func TestOverloadNeverWrong(t *testing.T) {
	c := &Coordinator{gate: newGate(2, time.Millisecond), log: slog.New(slog.DiscardHandler)}
	entered, finish := make(chan struct{}, 10), make(chan struct{})
	echo := c.bounded("POST "+api.PathRelease, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-finish
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("answer to "), b...))
	})
	const n = 10
	type result struct {
		code        int
		body, retry string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	var refused sync.WaitGroup
	refused.Add(n - 2)
	for i := range n {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			echo(rec, httptest.NewRequest(http.MethodPost, api.PathRelease, strings.NewReader("request "+string(rune('a'+i)))))
			results[i] = result{rec.Code, rec.Body.String(), rec.Header().Get("Retry-After")}
			if rec.Code == http.StatusServiceUnavailable {
				refused.Done()
			}
		})
	}
	<-entered
	<-entered
	refused.Wait() // the 8 others, shed while both slots are held
	close(finish)
	wg.Wait()
	served := 0
	for i, r := range results {
		switch r.code {
		case http.StatusOK:
			served++
			if want := "answer to request " + string(rune('a'+i)); r.body != want {
				t.Errorf("request %d answered %q, want %q", i, r.body, want)
			}
		case http.StatusServiceUnavailable:
			if r.retry != "1" || !strings.Contains(r.body, `"title":"Overloaded"`) {
				t.Errorf("request %d refused without Retry-After or problem: %q %q", i, r.retry, r.body)
			}
		default:
			t.Errorf("request %d: status %d", i, r.code)
		}
	}
	if served != 2 {
		t.Errorf("%d served, want 2", served)
	}
	if len(c.gate.slots) != 0 {
		t.Errorf("%d slots still held", len(c.gate.slots))
	}
}

// TestGateCancelled: a request whose client goes away while it waits
// stops waiting, with the context's error.
func TestGateCancelled(t *testing.T) {
	g := newGate(1, time.Hour)
	if err := g.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a cancelled context: %v", err)
	}
	g.release()
	if err := g.acquire(ctx); err != nil {
		t.Fatalf("a free slot is taken even with a cancelled context: %v", err)
	}
}
