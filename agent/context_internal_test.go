package agent

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
)

// contextRelease is release (agent_test.go) with the secrets named, of the
// values given, sealed to id under one HPKE context as /v1/attest-release
// seals them.
func contextRelease(t *testing.T, ca *identity.CA, id *Identity, now time.Time, names []string, values [][]byte) *api.ReleaseResponse {
	t.Helper()
	rel := release(t, ca, id, now)
	pub, err := keybroker.RecipientKey(id.hpke)
	if err != nil {
		t.Fatal(err)
	}
	aads := make([]string, len(names))
	for i, n := range names {
		aads[i] = api.SecretInfo(rel.Workload, n, 1)
	}
	rel.Secrets = make([]api.WrappedSecret, len(names))
	for i, n := range names {
		rel.Secrets[i] = api.WrappedSecret{Name: n, Type: "user", Version: 1, Info: aads[i]}
	}
	info := api.ReleaseInfo(rel.Workload, "token-1", rel.Secrets)
	enc, sealed, err := keybroker.WrapAll(pub, info, aads, values)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rel.Secrets {
		rel.Secrets[i].Sealed = sealed[i]
	}
	rel.Context = &api.ReleaseContext{Enc: enc, Info: info}
	return rel
}

func TestOpenOneContext(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ca, err := identity.NewCA("example.org", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewIdentity()
	b, _ := NewIdentity()
	names := []string{"s", "t", "u"}
	values := [][]byte{[]byte("first"), []byte("second"), []byte("third")}

	res, err := a.open(contextRelease(t, ca, a, now, names, values), "token-1", now)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		if !bytes.Equal(res.Secrets[n], values[i]) {
			t.Errorf("secret %s = %q, want %q", n, res.Secrets[n], values[i])
		}
	}
	if len(res.Secrets) != 3 || res.SPIFFEID != "spiffe://example.org/enclave/w" {
		t.Errorf("result %+v", res)
	}
	// No secret at all: nothing sealed, nothing to open.
	if res, err := a.open(contextRelease(t, ca, a, now, nil, nil), "token-1", now); err != nil || len(res.Secrets) != 0 {
		t.Errorf("Open of a release of no secret: %v, %v", res, err)
	}

	for name, tc := range map[string]struct {
		edit func(*api.ReleaseResponse)
		want string
	}{
		"foreign secret info": {func(r *api.ReleaseResponse) { r.Secrets[1].Info = "forged" }, `secret "t" carries unexpected context`},
		"secret info of another version": {func(r *api.ReleaseResponse) {
			r.Secrets[1].Version = 2
			r.Secrets[1].Info = api.SecretInfo(r.Workload, "t", 2)
		}, "HPKE context carries unexpected info"},
		"a secret twice": {func(r *api.ReleaseResponse) { r.Secrets[2] = r.Secrets[0] }, `secret "s" is released twice`},
		"context of another workload": {func(r *api.ReleaseResponse) {
			r.Context.Info = api.ReleaseInfo("x", "token-1", r.Secrets)
		}, "HPKE context carries unexpected info"},
		"context info of another token": {func(r *api.ReleaseResponse) {
			r.Context.Info = api.ReleaseInfo(r.Workload, "token-2", r.Secrets)
		}, "HPKE context carries unexpected info"},
		"out of order": {func(r *api.ReleaseResponse) { r.Secrets[0], r.Secrets[1] = r.Secrets[1], r.Secrets[0] }, "HPKE context carries unexpected info"},
		"out of order, info to match": {func(r *api.ReleaseResponse) {
			r.Secrets[0], r.Secrets[1] = r.Secrets[1], r.Secrets[0]
			r.Context.Info = api.ReleaseInfo(r.Workload, "token-1", r.Secrets)
		}, `secret "t" does not open`},
		"truncated after the second": {func(r *api.ReleaseResponse) { r.Secrets = r.Secrets[:2] }, "HPKE context carries unexpected info"},
		"truncated to none":          {func(r *api.ReleaseResponse) { r.Secrets = nil }, "HPKE context carries unexpected info"},
		"truncated, info to match": {func(r *api.ReleaseResponse) {
			r.Secrets = r.Secrets[:2]
			r.Context.Info = api.ReleaseInfo(r.Workload, "token-1", r.Secrets)
		}, `secret "s" does not open`},
		"third corrupted": {func(r *api.ReleaseResponse) {
			r.Secrets[2].Sealed = slices.Clone(r.Secrets[2].Sealed)
			r.Secrets[2].Sealed[0] ^= 1
		}, `secret "u" does not open`},
		"sealed to another TEE": {func(r *api.ReleaseResponse) {
			other := contextRelease(t, ca, b, now, names, values)
			r.Secrets, r.Context = other.Secrets, other.Context
		}, "does not open"},
		"certificate for another key": {func(r *api.ReleaseResponse) {
			r.Certificate = release(t, ca, b, now).Certificate
		}, "not for this workload's key"},
	} {
		rel := contextRelease(t, ca, a, now, names, values)
		tc.edit(rel)
		if res, err := a.open(rel, "token-1", now); err == nil || !strings.Contains(err.Error(), tc.want) || res != nil {
			t.Errorf("%s: want refusal containing %q, got %v, %v", name, tc.want, res, err)
		}
	}
	// The context names token-1: opened as a release on token-2, or
	// without a token to check, it is refused.
	if res, err := a.open(contextRelease(t, ca, a, now, names, values), "token-2", now); err == nil || !strings.Contains(err.Error(), "HPKE context carries unexpected info") || res != nil {
		t.Errorf("a release on token-1 opened as one on token-2: %v, %v", res, err)
	}
	if res, err := a.Open(contextRelease(t, ca, a, now, names, values), now); err == nil || !strings.Contains(err.Error(), "OpenAttestRelease") || res != nil {
		t.Errorf("Open of a release under one context: %v, %v", res, err)
	}
}

// jwsWith is a compact JWS (unsigned: tokenID does not verify) whose
// payload is payload.
func jwsWith(payload string) string {
	return "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

// OpenAttestRelease checks the context against the jti of the token in the
// same answer.
func TestOpenAttestReleaseChecksTokenID(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ca, err := identity.NewCA("example.org", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewIdentity()
	names, values := []string{"s", "t"}, [][]byte{[]byte("first"), []byte("second")}
	answer := func(tok string) *api.AttestReleaseResponse {
		ar := &api.AttestReleaseResponse{Release: *contextRelease(t, ca, a, now, names, values)}
		ar.Token = tok
		return ar
	}
	res, err := a.OpenAttestRelease(answer(jwsWith(`{"jti":"token-1","sub":"w"}`)), now)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Secrets["s"]) != "first" || string(res.Secrets["t"]) != "second" || res.Token != jwsWith(`{"jti":"token-1","sub":"w"}`) {
		t.Errorf("result %+v", res)
	}
	for name, tc := range map[string]struct{ tok, want string }{
		"another token id": {jwsWith(`{"jti":"token-2"}`), "HPKE context carries unexpected info"},
		"no jti":           {jwsWith(`{"sub":"w"}`), "no jti"},
		"not a JWS":        {"token-1", "3 (a compact JWS)"},
	} {
		if res, err := a.OpenAttestRelease(answer(tc.tok), now); err == nil || !strings.Contains(err.Error(), tc.want) || res != nil {
			t.Errorf("%s: want refusal containing %q, got %v, %v", name, tc.want, res, err)
		}
	}
	noContext := answer(jwsWith(`{"jti":"token-1"}`))
	noContext.Release.Context = nil
	if _, err := a.OpenAttestRelease(noContext, now); err == nil || !strings.Contains(err.Error(), "no HPKE context") {
		t.Errorf("an answer without a context: %v", err)
	}
}

func TestTokenID(t *testing.T) {
	for raw, want := range map[string]string{
		jwsWith(`{"jti":"abc"}`):                   "abc",
		jwsWith(`{"iss":"x","jti":"a.b","exp":1}`): "a.b",
	} {
		if got, err := tokenID(raw); err != nil || got != want {
			t.Errorf("tokenID(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "a.b", "a.b.c.d", jwsWith(`{"jti":""}`), jwsWith(`{"jti":1}`), jwsWith(`[]`),
		"e30.!!!.c2ln", jwsWith(`{"jti":"x"`), jwsWith(`{"jti":"` + strings.Repeat("a", maxTokenSize) + `"}`),
	} {
		if got, err := tokenID(bad); err == nil {
			t.Errorf("tokenID(%.40q) = %q, want an error", bad, got)
		}
	}
}

// FuzzTokenID: the token comes from the coordinator's answer, untrusted
// bytes until the release under it opens. An id returned is never empty
// and is the payload's jti.
func FuzzTokenID(f *testing.F) {
	f.Add(jwsWith(`{"jti":"abc"}`))
	f.Add("a.b.c")
	f.Add("")
	f.Add(jwsWith(`{"jti":null}`))
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := tokenID(raw)
		if err != nil {
			return
		}
		if id == "" || len(raw) > maxTokenSize || strings.Count(raw, ".") != 2 {
			t.Fatalf("tokenID(%q) = %q", raw, id)
		}
	})
}

// Whatever the unwrapping hands back on a failure, or short of one value
// per secret, is zeroed before openContext returns.
func TestOpenContextZeroesOnError(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ca, _ := identity.NewCA("example.org", now.Add(-time.Hour))
	id, _ := NewIdentity()
	rel := contextRelease(t, ca, id, now, []string{"s", "t"}, [][]byte{[]byte("one"), []byte("two")})

	var handed [][]byte
	partial := func(ss []api.WrappedSecret) ([][]byte, error) {
		handed = [][]byte{[]byte("one"), []byte("tw")}
		return handed, errors.New("authentication failed")
	}
	if got, err := openContext(rel, "token-1", partial); err == nil || !strings.Contains(err.Error(), "authentication failed") || got != nil {
		t.Fatalf("openContext with a failing unwrap = %v, %v", got, err)
	}
	short := func(ss []api.WrappedSecret) ([][]byte, error) {
		handed = append(handed, []byte("one"))
		return handed[len(handed)-1:], nil
	}
	if got, err := openContext(rel, "token-1", short); err == nil || !strings.Contains(err.Error(), "1 values opened of 2 secrets") || got != nil {
		t.Fatalf("openContext with one value for two secrets = %v, %v", got, err)
	}
	if len(handed) != 3 {
		t.Fatalf("%d buffers handed out, want 3", len(handed))
	}
	for i, v := range handed {
		if !bytes.Equal(v, make([]byte, len(v))) {
			t.Errorf("buffer %d holds %q after the failure, want zeros", i, v)
		}
	}
	// The checks come first: nothing is unwrapped for a forged release.
	rel.Secrets[0].Info = "forged"
	called := false
	if _, err := openContext(rel, "token-1", func([]api.WrappedSecret) ([][]byte, error) { called = true; return nil, nil }); err == nil || called {
		t.Errorf("openContext of a forged release: %v, unwrapped %v", err, called)
	}
}

// A release of no secrets (a workload granted none) has a context info and
// no encapsulation: it opens to no secrets when its info says "0 secrets"
// for this token, and is refused when the info names secrets (a cut list)
// or another token.
func TestOpenOneContextNoSecrets(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ca, err := identity.NewCA("example.org", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := NewIdentity()
	rel := release(t, ca, id, now)
	rel.Secrets = nil
	rel.Context = &api.ReleaseContext{Info: api.ReleaseInfo(rel.Workload, "token-1", nil)}
	res, err := id.open(rel, "token-1", now)
	if err != nil || len(res.Secrets) != 0 {
		t.Fatalf("no secrets: %v, %d secrets", err, len(res.Secrets))
	}
	if _, err := id.open(rel, "token-2", now); err == nil || !strings.Contains(err.Error(), "unexpected info") {
		t.Fatalf("another token: %v", err)
	}
	cut := api.ReleaseInfo(rel.Workload, "token-1", []api.WrappedSecret{{Name: "s", Version: 1}})
	rel.Context = &api.ReleaseContext{Info: cut}
	if _, err := id.open(rel, "token-1", now); err == nil || !strings.Contains(err.Error(), "unexpected info") {
		t.Fatalf("a list cut to nothing: %v", err)
	}
}
