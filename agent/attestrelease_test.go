package agent_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/manifest"
)

// routes stands in front of the coordinator: it counts the requests to
// each "METHOD path" and, when older is set, answers POST
// /v1/attest-release as a coordinator older than the route does (Go's
// ServeMux: status older and a plain text body, no problem document).
type routes struct {
	mu    sync.Mutex
	n     map[string]int
	older int
	next  http.Handler
}

func (rt *routes) wrap(next http.Handler) http.Handler {
	rt.next, rt.n = next, map[string]int{}
	return rt
}

func (rt *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	rt.n[r.Method+" "+r.URL.Path]++
	older := rt.older
	rt.mu.Unlock()
	if older != 0 && r.URL.Path == api.PathAttestRelease {
		http.Error(w, http.StatusText(older), older)
		return
	}
	rt.next.ServeHTTP(w, r)
}

// count returns how many requests "METHOD path" had, and resets every count.
func (rt *routes) counts() map[string]int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := rt.n
	rt.n = map[string]int{}
	return n
}

const (
	routeCombined = "POST " + api.PathAttestRelease
	routeAttest   = "POST " + api.PathAttest
	routeRelease  = "POST " + api.PathRelease
)

// checkWebResult checks what web received: a token and claims from the
// attestation, its SPIFFE ID and every secret granted to it, the user
// secret with the value the owner set.
func checkWebResult(t *testing.T, e *env, res *agent.Result) {
	t.Helper()
	if res.Token == "" || strings.Count(res.Token, ".") != 2 {
		t.Errorf("token %q is not a compact JWS", res.Token)
	}
	w, _ := e.m.Workload("web")
	if res.Claims.TEE != w.TEE || !res.Claims.Simulated || !res.Simulated {
		t.Errorf("claims %+v (simulated release %v), want %s simulated", res.Claims, res.Simulated, w.TEE)
	}
	if want := "spiffe://" + e.m.TrustDomain + "/" + string(w.Model) + "/web"; res.SPIFFEID != want {
		t.Errorf("SPIFFE ID %q, want %q", res.SPIFFEID, want)
	}
	granted := e.m.SecretsFor("web")
	if len(res.Secrets) != len(granted) {
		t.Fatalf("%d secrets released, want the %d granted", len(res.Secrets), len(granted))
	}
	for _, s := range granted {
		v, ok := res.Secrets[s.Name]
		switch {
		case !ok || len(v) == 0:
			t.Errorf("secret %q not released", s.Name)
		case s.Type == manifest.User && string(v) != "value-of-"+s.Name:
			t.Errorf("user secret %q: %q, want the value set", s.Name, v)
		}
	}
}

// Against a coordinator that serves it, the agent attests and releases in
// one request, and neither /v1/attest nor /v1/release is called.
func TestRunUsesAttestRelease(t *testing.T) {
	rt := &routes{}
	e := newEnvWith(t, envOptions{wrap: rt.wrap})
	rt.counts()
	_, res, err := agent.Run(context.Background(), e.client, e.tee(t, "web"), "web")
	if err != nil {
		t.Fatal(err)
	}
	checkWebResult(t, e, res)
	if n := rt.counts(); n[routeCombined] != 1 || n[routeAttest] != 0 || n[routeRelease] != 0 {
		t.Errorf("requests %v, want one to %s and none to attest or release", n, api.PathAttestRelease)
	}
}

// Against a coordinator older than /v1/attest-release (404 or 405 from its
// router), the agent presents the same evidence to /v1/attest and the token
// to /v1/release: agent.Run, agent.Start and a renewal all succeed.
func TestAttestFallsBackOnAnOlderCoordinator(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			ctx := context.Background()
			rt := &routes{older: status}
			e := newEnvWith(t, envOptions{wrap: rt.wrap, certTTL: 3 * time.Minute})
			rt.counts()
			want := map[string]int{routeCombined: 1, routeAttest: 1, routeRelease: 1, "POST " + api.PathChallenge: 1}

			id, res, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web")
			if err != nil {
				t.Fatal(err)
			}
			checkWebResult(t, e, res)
			if n := rt.counts(); !equalCounts(n, want) {
				t.Errorf("Run: requests %v, want %v", n, want)
			}

			sess, err := agent.Start(ctx, agent.Config{Coordinator: e.url, HTTPClient: e.hc, Workload: "web", TEE: e.tee(t, "web"), Now: e.clk.now})
			if err != nil {
				t.Fatal(err)
			}
			if len(sess.Secrets) != len(e.m.SecretsFor("web")) || sess.Token == "" {
				t.Errorf("Start: %d secrets, token %q", len(sess.Secrets), sess.Token)
			}
			sess.Close()
			if n := rt.counts(); !equalCounts(n, want) {
				t.Errorf("Start: requests %v, want %v", n, want)
			}

			r := &agent.Renewer{Client: e.client, TEE: e.tee(t, "web"), Workload: "web", Identity: id, Now: e.clk.now}
			e.clk.advance(2 * time.Minute)
			next, did, err := r.RenewIfDue(ctx, res)
			if err != nil || !did {
				t.Fatalf("renewal: %v %v", did, err)
			}
			checkWebResult(t, e, next)
			if n := rt.counts(); !equalCounts(n, want) {
				t.Errorf("renewal: requests %v, want %v", n, want)
			}
		})
	}
}

// Renewal takes the same one-request path as the first release.
func TestRenewalUsesAttestRelease(t *testing.T) {
	ctx := context.Background()
	rt := &routes{}
	e := newEnvWith(t, envOptions{wrap: rt.wrap, certTTL: 3 * time.Minute})
	id, res, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web")
	if err != nil {
		t.Fatal(err)
	}
	rt.counts()
	r := &agent.Renewer{Client: e.client, TEE: e.tee(t, "web"), Workload: "web", Identity: id, Now: e.clk.now}
	e.clk.advance(2 * time.Minute)
	next, did, err := r.RenewIfDue(ctx, res)
	if err != nil || !did {
		t.Fatalf("renewal: %v %v", did, err)
	}
	checkWebResult(t, e, next)
	if next.Token == res.Token {
		t.Error("the renewal carries the first token")
	}
	if n := rt.counts(); n[routeCombined] != 1 || n[routeAttest] != 0 || n[routeRelease] != 0 {
		t.Errorf("renewal: requests %v, want one to %s only", n, api.PathAttestRelease)
	}
}

// A refusal by a coordinator that serves the route — here an unknown
// workload, 404 with a problem document — is returned as is: no fallback
// request is made.
func TestAttestReleaseRefusalIsNotAFallback(t *testing.T) {
	rt := &routes{}
	e := newEnvWith(t, envOptions{wrap: rt.wrap})
	rt.counts()
	_, _, err := agent.Run(context.Background(), e.client, e.tee(t, "web"), "no-such-workload")
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusNotFound || p.Title != "Unknown workload" {
		t.Fatalf("Run for an unknown workload: %v, want the coordinator's 404 problem", err)
	}
	if n := rt.counts(); n[routeCombined] != 1 || n[routeAttest] != 0 || n[routeRelease] != 0 {
		t.Errorf("requests %v, want one to %s and no fallback", n, api.PathAttestRelease)
	}
}

// AttestRelease answers a token and claims with a release sealed under one
// HPKE context, which Identity.Open opens.
func TestClientAttestRelease(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 0)
	id, err := agent.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	req, err := id.Evidence(ctx, e.client, e.tee(t, "web"), "web")
	if err != nil {
		t.Fatal(err)
	}
	ar, err := e.client.AttestRelease(ctx, &api.AttestReleaseRequest{Workload: req.Workload, Evidence: req.Evidence, Secrets: []string{"disk-key"}})
	if err != nil {
		t.Fatal(err)
	}
	if ar.Token == "" || ar.Release.Context == nil || len(ar.Release.Secrets) != 1 || ar.Release.Secrets[0].Name != "disk-key" {
		t.Fatalf("response: token %q, context %v, secrets %+v", ar.Token, ar.Release.Context, ar.Release.Secrets)
	}
	res, err := id.OpenAttestRelease(ar, e.clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Secrets["disk-key"]) != 32 {
		t.Errorf("disk-key: %d bytes, want 32", len(res.Secrets["disk-key"]))
	}
	// The nonce is spent: the same evidence is refused the second time.
	_, err = e.client.AttestRelease(ctx, &api.AttestReleaseRequest{Workload: req.Workload, Evidence: req.Evidence})
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Fatalf("replayed evidence: %v, want 401", err)
	}
}

func equalCounts(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
