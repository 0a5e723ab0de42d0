package coordinator_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/manifest"
)

// kbsGuest is a simulated Azure SNP CVM speaking the KBS protocol as
// guest-components' client does.
type kbsGuest struct {
	t      *testing.T
	h      *maaHarness
	client *http.Client
	key    *rsa.PrivateKey
	vm     simtee.AzureSNP
}

func newKBSGuest(t *testing.T, h *maaHarness, vm simtee.AzureSNP) *kbsGuest {
	jar, _ := cookiejar.New(nil)
	c := *h.srv.Client()
	c.Jar = jar
	return &kbsGuest{t: t, h: h, client: &c, key: mustRSA(t), vm: vm}
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func (g *kbsGuest) do(method, path string, body any, hdr ...string) (int, []byte) {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, g.h.srv.URL+path, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.Header.Get("Content-Type") != "application/problem+json" {
		g.t.Errorf("%s %s: HTTP %d without a problem body: %s", method, path, resp.StatusCode, out)
	}
	return resp.StatusCode, out
}

func (g *kbsGuest) auth() string {
	g.t.Helper()
	st, out := g.do("POST", "/kbs/v0/auth", map[string]any{"version": "0.4.0", "tee": "az-snp-vtpm", "extra-params": map[string]any{}})
	if st != http.StatusOK {
		g.t.Fatalf("auth: %d %s", st, out)
	}
	var ch struct{ Nonce string }
	_ = json.Unmarshal(out, &ch)
	return ch.Nonce
}

// attest sends composite evidence binding nonce (bindNonce into the
// report data, nonce in the runtime data).
func (g *kbsGuest) attest(nonce, bindNonce string) (int, []byte) {
	g.t.Helper()
	pub, _ := json.Marshal(jose.JSONWebKey{Key: &g.key.PublicKey, Algorithm: "RSA-OAEP-256"})
	canon := func(n string) []byte {
		// The canonical JSON guest-components hashes: members sorted.
		var pk any
		_ = json.Unmarshal(pub, &pk)
		b, _ := json.Marshal(map[string]any{"additional-evidence": "", "nonce": n, "tee-pubkey": pk})
		return b
	}
	h := sha512.Sum384(canon(bindNonce))
	var rd [64]byte
	copy(rd[:], h[:])
	ev := mustAttest(g.t, g.vm, rd)
	return g.do("POST", "/kbs/v0/attest", map[string]any{
		"runtime-data": map[string]any{"nonce": nonce, "tee-pubkey": json.RawMessage(pub)},
		"tee-evidence": map[string]any{"primary_evidence": json.RawMessage(ev.Data), "additional_evidence": ""},
	})
}

// token attests under a fresh challenge and returns the token issued.
func (g *kbsGuest) token() string {
	g.t.Helper()
	nonce := g.auth()
	st, out := g.attest(nonce, nonce)
	if st != http.StatusOK {
		g.t.Fatalf("attest: %d %s", st, out)
	}
	var resp struct{ Token string }
	if err := json.Unmarshal(out, &resp); err != nil || resp.Token == "" {
		g.t.Fatalf("no token in the attest answer (%v): %s", err, out)
	}
	return resp.Token
}

func (g *kbsGuest) open(jwe []byte) []byte {
	g.t.Helper()
	obj, err := jose.ParseEncryptedJSON(string(jwe), []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		g.t.Fatalf("not a JWE: %v: %s", err, jwe)
	}
	pt, err := obj.Decrypt(g.key)
	if err != nil {
		g.t.Fatal(err)
	}
	return pt
}

func kbsHarness(t *testing.T) *maaHarness {
	return newMAAHarness(t, time.Now().UTC(), nil, func(m *manifest.Manifest) {
		wl, _ := m.Workload(manifest.SampleLedgerName)
		wl.Reference.PCRs = []manifest.PCR{{Index: 0, Digest: make(attest.Hex, 32)}, {Index: 8, Digest: make(attest.Hex, 32)}}
	})
}

var ledgerCVM = simtee.AzureSNP{SNP: simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}, SecureBoot: true}

func TestKBSAttestAndRelease(t *testing.T) {
	h := kbsHarness(t)
	secret := []byte("correct horse battery staple")
	client := agent.NewClient(h.srv.URL, h.srv.Client())
	if _, err := client.SetSecret(context.Background(), agent.Owner{Name: h.m.Owners[0].Name, Key: h.owner}, "db-password", secret); err != nil {
		t.Fatal(err)
	}
	g := newKBSGuest(t, h, ledgerCVM)

	// No session: refused.
	if st, _ := g.do("GET", "/kbs/v0/resource/default/db-password/latest", nil); st != http.StatusUnauthorized {
		t.Fatalf("resource without a session: %d", st)
	}
	nonce := g.auth()
	if st, out := g.attest(nonce, nonce); st != http.StatusOK {
		t.Fatalf("attest: %d %s", st, out)
	}
	for _, tag := range []string{"latest", "1"} {
		h.clock.advance(time.Second) // the audit trail keys releases by time
		st, out := g.do("GET", "/kbs/v0/resource/default/db-password/"+tag, nil)
		if st != http.StatusOK {
			t.Fatalf("resource %s: %d %s", tag, st, out)
		}
		if got := g.open(out); !bytes.Equal(got, secret) {
			t.Fatalf("resource %s decrypts to another value", tag)
		}
	}
	// Not granted to ledger-vm.
	if st, _ := g.do("GET", "/kbs/v0/resource/default/tls/latest", nil); st != http.StatusForbidden {
		t.Fatalf("secret not granted: %d", st)
	}
	// Other repositories and unknown versions are not found.
	if st, _ := g.do("GET", "/kbs/v0/resource/other/db-password/latest", nil); st != http.StatusNotFound {
		t.Fatalf("other repo: %d", st)
	}
	if st, _ := g.do("GET", "/kbs/v0/resource/default/db-password/7", nil); st != http.StatusNotFound {
		t.Fatalf("unknown version: %d", st)
	}
}

func TestKBSRefusals(t *testing.T) {
	h := kbsHarness(t)

	t.Run("attest without a session", func(t *testing.T) {
		g := newKBSGuest(t, h, ledgerCVM)
		if st, _ := g.attest("x", "x"); st != http.StatusUnauthorized {
			t.Fatalf("%d", st)
		}
	})
	t.Run("unknown TEE", func(t *testing.T) {
		g := newKBSGuest(t, h, ledgerCVM)
		if st, _ := g.do("POST", "/kbs/v0/auth", map[string]any{"version": "0.4.0", "tee": "sample", "extra-params": ""}); st != http.StatusBadRequest {
			t.Fatalf("%d", st)
		}
	})
	t.Run("nonce mismatch, then reuse", func(t *testing.T) {
		g := newKBSGuest(t, h, ledgerCVM)
		nonce := g.auth()
		if st, _ := g.attest("another", "another"); st != http.StatusUnauthorized {
			t.Fatalf("mismatch: %d", st)
		}
		if st, _ := g.attest(nonce, nonce); st != http.StatusUnauthorized {
			t.Fatalf("after a failed attempt the challenge is used: %d", st)
		}
		nonce = g.auth()
		if st, out := g.attest(nonce, nonce); st != http.StatusOK {
			t.Fatalf("fresh: %d %s", st, out)
		}
		if st, _ := g.attest(nonce, nonce); st != http.StatusUnauthorized {
			t.Fatalf("reuse: %d", st)
		}
	})
	t.Run("report data binds another runtime data", func(t *testing.T) {
		g := newKBSGuest(t, h, ledgerCVM)
		nonce := g.auth()
		if st, _ := g.attest(nonce, "other"); st != http.StatusForbidden {
			t.Fatalf("%d", st)
		}
	})
	t.Run("evidence matching no workload", func(t *testing.T) {
		other := ledgerCVM
		other.SNP.Measurement = [48]byte{1}
		g := newKBSGuest(t, h, other)
		nonce := g.auth()
		if st, _ := g.attest(nonce, nonce); st != http.StatusForbidden {
			t.Fatalf("%d", st)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		g := newKBSGuest(t, h, ledgerCVM)
		tok := g.token()
		bare := newKBSGuest(t, h, ledgerCVM)
		if st, out := bare.do("GET", "/kbs/v0/resource/default/disk-key/latest", nil, "Authorization", "Bearer "+tok); st != http.StatusOK {
			t.Fatalf("bearer: %d %s", st, out)
		}
		h.clock.advance(24 * time.Hour) // past the token and session TTL
		if st, _ := bare.do("GET", "/kbs/v0/resource/default/disk-key/latest", nil, "Authorization", "Bearer "+tok); st != http.StatusUnauthorized {
			t.Fatalf("expired bearer: %d", st)
		}
		if st, _ := g.do("GET", "/kbs/v0/resource/default/disk-key/latest", nil); st != http.StatusUnauthorized {
			t.Fatalf("expired session: %d", st)
		}
	})

	t.Run("token from another issuer", func(t *testing.T) {
		other := kbsHarness(t) // another coordinator: its own token keys
		tok := newKBSGuest(t, other, ledgerCVM).token()
		bare := newKBSGuest(t, h, ledgerCVM)
		if st, _ := bare.do("GET", "/kbs/v0/resource/default/disk-key/latest", nil, "Authorization", "Bearer "+tok); st != http.StatusUnauthorized {
			t.Fatalf("another coordinator's token: %d", st)
		}
	})

	t.Run("wrapping key absent", func(t *testing.T) {
		g := newKBSGuest(t, h, ledgerCVM)
		nonce := g.auth()
		if st, out := g.do("POST", "/kbs/v0/attest", map[string]any{
			"runtime-data": map[string]any{"nonce": nonce},
			"tee-evidence": map[string]any{"primary_evidence": map[string]any{}, "additional_evidence": ""},
		}); st != http.StatusBadRequest || !bytes.Contains(out, []byte("tee-pubkey")) {
			t.Fatalf("attest without a tee-pubkey: %d %s", st, out)
		}
	})
}
