package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/manifest"
)

const routeAudit = "GET " + api.PathAudit

// wholeTrail reads the audit trail the way a client older than pages did:
// one owner-signed GET /v1/audit without a query, answered as one array.
func wholeTrail(t *testing.T, e *env) []api.AuditRecord {
	t.Helper()
	ctx := context.Background()
	ch, err := e.client.Challenge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := api.SignOwner(e.owner.Name, e.owner.Key, http.MethodGet, api.PathAudit, ch.Nonce, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+api.PathAudit, nil)
	req.Header.Set("Authorization", auth)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var recs []api.AuditRecord
	if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d, %v", api.PathAudit, resp.StatusCode, err)
	}
	return recs
}

// bulkSecrets grants web n more generated keys, so that one release
// records n more audit records.
func bulkSecrets(n int) func(*manifest.Manifest) {
	return func(m *manifest.Manifest) {
		for i := range n {
			m.Secrets = append(m.Secrets, manifest.Secret{Name: fmt.Sprintf("bulk-%03d", i), Type: manifest.Symmetric, Bits: 128, GrantedTo: []string{"web"}})
		}
	}
}

// More than 2,500 records (13 releases of 200-odd secrets) are read in
// pages of api.MaxAuditLimit: three pages, the whole trail in order, none
// repeated or skipped; Audit collects the same through AuditEach, and an
// error from the callback stops the reading after the page it is in.
func TestAuditEachReadsEveryPage(t *testing.T) {
	ctx := context.Background()
	rt := &routes{}
	e := newEnvWith(t, envOptions{wrap: rt.wrap, edit: bulkSecrets(200)})
	perRelease := len(e.m.SecretsFor("web"))
	const releases = 13
	for range releases {
		if _, _, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web"); err != nil {
			t.Fatal(err)
		}
	}
	whole := wholeTrail(t, e)
	if want := releases * perRelease; len(whole) != want || want <= 2*api.MaxAuditLimit {
		t.Fatalf("the trail holds %d records, want %d (over two pages)", len(whole), want)
	}

	rt.counts()
	var got []api.AuditRecord
	if err := e.client.AuditEach(ctx, e.owner, func(r api.AuditRecord) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, whole) {
		t.Fatalf("AuditEach: %d records, not the %d of the trail in order", len(got), len(whole))
	}
	if n := rt.counts(); n[routeAudit] != 3 {
		t.Errorf("AuditEach read %d pages, want 3", n[routeAudit])
	}

	all, err := e.client.Audit(ctx, e.owner)
	if err != nil || !slices.Equal(all, whole) {
		t.Fatalf("Audit: %d records, %v; want the %d of the trail in order", len(all), err, len(whole))
	}

	errStop := errors.New("enough")
	seen := 0
	err = e.client.AuditEach(ctx, e.owner, func(api.AuditRecord) error {
		seen++
		if seen == api.MaxAuditLimit+1 {
			return errStop
		}
		return nil
	})
	rt.counts() // Audit's pages
	if !errors.Is(err, errStop) || seen != api.MaxAuditLimit+1 {
		t.Fatalf("AuditEach stopped by its callback: %v after %d records", err, seen)
	}
}

// Small pages (limit 2) over a short trail give the same records in the
// same order as the whole trail, one page per two records.
func TestAuditEachSmallPages(t *testing.T) {
	ctx := context.Background()
	rt := &routes{}
	e := newEnvWith(t, envOptions{wrap: rt.wrap})
	for range 3 {
		if _, _, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web"); err != nil {
			t.Fatal(err)
		}
	}
	whole := wholeTrail(t, e)
	if len(whole) != 3*len(e.m.SecretsFor("web")) {
		t.Fatalf("the trail holds %d records", len(whole))
	}
	rt.counts()
	var got []api.AuditRecord
	if err := e.client.AuditEachLimit(ctx, e.owner, 2, func(r api.AuditRecord) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, whole) {
		t.Fatalf("pages of 2: %d records, not the %d of the trail in order", len(got), len(whole))
	}
	if n, want := rt.counts()[routeAudit], (len(whole)+1)/2; n != want {
		t.Errorf("read %d pages of 2 for %d records, want %d", n, len(whole), want)
	}
}

// A coordinator older than pages ignores the query and answers the whole
// trail as one array: Audit takes it as the whole trail, in one request.
func TestAuditOfAnOlderCoordinator(t *testing.T) {
	ctx := context.Background()
	rt := &routes{}
	e := newEnvWith(t, envOptions{wrap: func(next http.Handler) http.Handler {
		return rt.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != api.PathAudit || r.URL.RawQuery == "" {
				next.ServeHTTP(w, r)
				return
			}
			// The signed request is served (the signature covers the
			// query), and its page is answered the old way: the records
			// as one array, no cursor.
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var page api.AuditPage
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &page) != nil || page.Next != "" {
				t.Errorf("the coordinator's page: %d %s", rec.Code, rec.Body)
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(page.Records)
		}))
	}})
	for range 2 {
		if _, _, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web"); err != nil {
			t.Fatal(err)
		}
	}
	whole := wholeTrail(t, e)
	rt.counts()
	got, err := e.client.Audit(ctx, e.owner)
	if err != nil || len(whole) == 0 || !slices.Equal(got, whole) {
		t.Fatalf("Audit: %d records, %v; want the %d of the trail", len(got), err, len(whole))
	}
	if n := rt.counts()[routeAudit]; n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// A server whose pages do not advance, or whose answer is no page, is an
// error, not an endless or a silently short trail.
func TestAuditEachRefusesBadPages(t *testing.T) {
	for name, tc := range map[string]struct {
		page string
		want string
	}{
		"next repeats":          {`{"records":[{"secret":"a"}],"next":"00000000000000000001-0000000000000000-0000000000000000"}`, "does not advance"},
		"next on an empty page": {`{"records":[],"next":"00000000000000000001-0000000000000000-0000000000000000"}`, "does not advance"},
		"no records":            {`{"next":""}`, "records is not an array"},
		"not JSON":              {`<html>`, "the response"},
	} {
		t.Run(name, func(t *testing.T) {
			pages := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case api.PathChallenge:
					_, _ = io.WriteString(w, `{"nonce":"bm9uY2U","expiresAt":"2030-01-01T00:00:00Z"}`)
				case api.PathAudit:
					if pages++; pages > 5 {
						http.Error(w, "too many pages", http.StatusTeapot)
						return
					}
					_, _ = io.WriteString(w, tc.page)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			owner := agent.Owner{Name: "alice", Key: newKey(t)}
			err := agent.NewClient(srv.URL, srv.Client()).AuditEach(context.Background(), owner, func(api.AuditRecord) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AuditEach = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
