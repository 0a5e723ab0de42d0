package token

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// discoveryServer serves /.well-known/openid-configuration and /certs from
// an ES256 and an RS256 issuer sharing one keyring, as the coordinator
// will; the issuer name is the server's URL.
func discoveryServer(t *testing.T, now time.Time) (es, rs *Issuer, srv *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ring, err := NewKeyring(5*time.Minute, testKey(t, ES256, 0, t0), testKey(t, RS256, 0, t0))
	if err != nil {
		t.Fatal(err)
	}
	if es, err = NewIssuer(Config{Issuer: srv.URL, Keyring: ring, TTL: 5 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if rs, err = NewIssuer(Config{Issuer: srv.URL, Keyring: ring, TTL: 5 * time.Minute, Algorithm: RS256, JWKSURL: srv.URL + "/certs"}); err != nil {
		t.Fatal(err)
	}
	serve := func(f func() ([]byte, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := f()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		}
	}
	mux.Handle("GET /.well-known/openid-configuration", serve(func() ([]byte, error) { return es.OpenIDConfiguration(srv.URL) }))
	mux.Handle("GET /certs", serve(func() ([]byte, error) { return es.JWKS(now) }))
	return es, rs, srv
}

// A trustbound token is verified by go-oidc through discovery alone.
func TestGoOIDCVerifiesTokens(t *testing.T) {
	now := t0.Add(time.Minute)
	es, rs, srv := discoveryServer(t, now)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: func() time.Time { return now }})
	for _, iss := range []*Issuer{es, rs} {
		t.Run(iss.alg, func(t *testing.T) {
			c, err := NewClaims(testResult(t))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := iss.Issue(c, t0)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := verifier.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("go-oidc refused a trustbound %s token: %v", iss.alg, err)
			}
			var got map[string]any
			if err := tok.Claims(&got); err != nil {
				t.Fatal(err)
			}
			if tok.Issuer != srv.URL || tok.Subject != "spiffe://prod.test/confidential-vm/web" || tok.Nonce != "n1" ||
				got["x-tb-workload"] != "web" || path(got, "submods", "sev-snp", "ear.status") != "affirming" ||
				got["x-ms-attestation-type"] != "sevsnpvm" {
				t.Errorf("claims through go-oidc: %v", got)
			}
			for name, bad := range map[string]string{"payload": tamperPayload(t, raw), "signature": tamperSignature(t, raw)} {
				if _, err := verifier.Verify(ctx, bad); err == nil || !strings.Contains(err.Error(), "failed to verify signature") {
					t.Errorf("go-oidc on a token with a tampered %s: %v", name, err)
				}
			}
			// Expired for go-oidc too.
			late := provider.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: func() time.Time { return t0.Add(time.Hour) }})
			if _, err := late.Verify(ctx, raw); err == nil {
				t.Error("go-oidc accepted an expired token")
			}
		})
	}
}

// nodeDir holds the test-only Node project (scripts/deps.sh installs it).
const nodeDir = "testdata/node"

// A trustbound token is verified by jose, under Node, given only the JWKS
// URL. Skipped only where node or the installed jose is missing and CI is
// unset; in CI their absence fails the test.
func TestNodeJoseVerifiesTokens(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeDir, "node_modules", "jose", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node with jose is required in CI (run scripts/deps.sh): %v", err)
		}
		t.Skipf("node with jose not available (run scripts/deps.sh): %v", err)
	}
	now := t0.Add(time.Minute)
	es, rs, srv := discoveryServer(t, now)
	run := func(t *testing.T, token string) (map[string]any, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "verify.mjs", srv.URL+"/certs", srv.URL, token, strconv.FormatInt(now.Unix(), 10))
		cmd.Dir = nodeDir
		var stderr []byte
		out, err := cmd.Output()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		if err != nil {
			return nil, errors.New(string(stderr))
		}
		var res map[string]any
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("node output %q: %v", out, err)
		}
		return res, nil
	}
	for _, iss := range []*Issuer{es, rs} {
		t.Run(iss.alg, func(t *testing.T) {
			c, err := NewClaims(testResult(t))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := iss.Issue(c, t0)
			if err != nil {
				t.Fatal(err)
			}
			res, err := run(t, raw)
			if err != nil {
				t.Fatalf("jose refused a trustbound %s token: %v", iss.alg, err)
			}
			key, _ := iss.ring.Current(iss.alg)
			if path(res, "protectedHeader", "alg") != iss.alg || path(res, "protectedHeader", "kid") != key.ID {
				t.Errorf("header %v", res["protectedHeader"])
			}
			p, _ := res["payload"].(map[string]any)
			for _, tc := range []struct {
				path []string
				want any
			}{
				{[]string{"iss"}, srv.URL},
				{[]string{"x-tb-workload"}, "web"},
				{[]string{"x-tb-simulated"}, false},
				{[]string{"submods", "sev-snp", "ear.status"}, "affirming"},
				{[]string{"x-ms-attestation-type"}, "sevsnpvm"},
				{[]string{"x-ms-runtime", "nonce"}, "n1"},
			} {
				if got := path(p, tc.path...); got != tc.want {
					t.Errorf("%v = %#v, want %#v", tc.path, got, tc.want)
				}
			}
			for name, bad := range map[string]string{"payload": tamperPayload(t, raw), "signature": tamperSignature(t, raw)} {
				if _, err := run(t, bad); err == nil || !strings.Contains(err.Error(), "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") {
					t.Errorf("jose on a token with a tampered %s: %v", name, err)
				}
			}
		})
	}
	// The wrong issuer is refused by jose's own issuer check.
	other, err := NewIssuer(Config{Issuer: "https://other.test", Keyring: es.ring, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := other.Issue(Claims{Workload: "web"}, t0)
	if _, err := run(t, raw); err == nil || !strings.Contains(err.Error(), `unexpected "iss" claim value`) {
		t.Errorf("jose on a token of another issuer: %v", err)
	}
}
