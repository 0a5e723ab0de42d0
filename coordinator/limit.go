package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/trustbound/trustbound/api"
)

// Defaults of the bound on expensive requests (Config.MaxInFlight,
// Config.QueueTimeout).
const (
	inFlightPerCPU      = 4
	defaultQueueTimeout = 10 * time.Second
)

// boundedRoutes are the routes whose handlers do the expensive work —
// evidence verification, appraisal, token signing, HPKE sealing,
// certificate issuance and a durable store write — and so run under the
// in-flight bound. Cheap routes (health, challenges, discovery) are never
// queued behind them.
var boundedRoutes = map[string]bool{
	"POST " + api.PathAttest:                   true,
	"POST " + api.PathRelease:                  true,
	"POST " + api.PathAttestRelease:            true,
	"POST " + api.PathDryRun:                   true,
	"POST /attest/{type}":                      true,
	"POST /kbs/v0/attest":                      true,
	"GET /kbs/v0/resource/{repo}/{type}/{tag}": true,
	"POST /keys/{name}/release":                true,
	"POST /keys/{name}/{version}/release":      true,
}

// gate is a counting semaphore with a bounded wait: at most cap(slots)
// bounded requests run at once; the others wait for a slot up to wait,
// then are refused with 503 and Retry-After, so that overload lengthens
// latency and then sheds load instead of piling up work (and memory) the
// machine cannot do. It never changes what an admitted request answers.
type gate struct {
	slots chan struct{}
	wait  time.Duration
}

func newGate(n int, wait time.Duration) *gate {
	if n <= 0 {
		n = inFlightPerCPU * runtime.GOMAXPROCS(0)
	}
	if wait <= 0 {
		wait = defaultQueueTimeout
	}
	return &gate{slots: make(chan struct{}, n), wait: wait}
}

// errOverloaded is why a request was shed.
var errOverloaded = errors.New("the coordinator is at capacity; retry after the delay in Retry-After")

// acquire takes a slot, waiting at most g.wait or until ctx ends; release
// must be called once for every nil return.
func (g *gate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errOverloaded
	case <-ctx.Done():
		return fmt.Errorf("waiting for capacity: %w", ctx.Err())
	}
}

func (g *gate) release() { <-g.slots }

// retryAfterSeconds is what a shed request is told to wait: the queue
// timeout, at least one second.
func (g *gate) retryAfterSeconds() int { return max(1, int(g.wait.Round(time.Second)/time.Second)) }

// bounded wraps the handler of pattern in c.gate when the route is one of
// boundedRoutes; others are returned as they are.
func (c *Coordinator) bounded(pattern string, h http.HandlerFunc) http.HandlerFunc {
	if !boundedRoutes[pattern] {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if err := c.gate.acquire(r.Context()); err != nil {
			w.Header().Set("Retry-After", strconv.Itoa(c.gate.retryAfterSeconds()))
			c.problem(w, r, http.StatusServiceUnavailable, "Overloaded", err)
			return
		}
		defer c.gate.release()
		h(w, r)
	}
}
