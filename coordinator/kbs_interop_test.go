package coordinator_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/coordinator"
)

// kbsNodeDir holds the test-only Node project with the independent
// implementations (scripts/deps.sh installs it).
const kbsNodeDir = "testdata/node"

// kbsNode runs testdata/node/kbs.mjs: RFC 8785 by canonicalize (an
// implementation by one of the RFC's authors) and JWE decryption by jose.
// Skipped only where node or the packages are missing and CI is not set.
func kbsNode(t *testing.T, canon []string, jwes []map[string]any) (outCanon []string, plain [][]byte) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(kbsNodeDir, "node_modules", "canonicalize", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node with canonicalize and jose is required in CI (run scripts/deps.sh): %v", err)
		}
		t.Skipf("node with canonicalize and jose not available (run scripts/deps.sh): %v", err)
	}
	if canon == nil {
		canon = []string{}
	}
	if jwes == nil {
		jwes = []map[string]any{}
	}
	in, _ := json.Marshal(map[string]any{"canon": canon, "jwe": jwes})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "kbs.mjs")
	cmd.Dir = kbsNodeDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kbs.mjs: %v: %s", err, stderr.String())
	}
	var res struct {
		Canon []string `json:"canon"`
		Plain []string `json:"plain"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("kbs.mjs output %q: %v", out, err)
	}
	for _, p := range res.Plain {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, b)
	}
	return res.Canon, plain
}

// trustbound's canonical runtime data is byte for byte what an independent
// RFC 8785 implementation makes of the same documents, including the
// corners where encoding/json differs from RFC 8785 (U+2028, HTML
// characters, member order beyond the BMP, number forms).
func TestKBSCanonicalJSONMatchesRFC8785Implementation(t *testing.T) {
	docs := []string{
		`{"tee-pubkey":{"kty":"EC","crv":"P-256","x":"AQ","y":"Ag","alg":"ECDH-ES+A256KW"},"nonce":"bm9uY2U="}`,
		`{"nonce":"a<b>&c","tee-pubkey":{"kty":"RSA","n":"xyz","e":"AQAB","alg":"RSA-OAEP-256"}}`,
		"{\"nonce\":\"line\u2028sep\u2029para\",\"tee-pubkey\":{}}",
		`{"nonce":"\u0007\b\f\n\r\t\u001f\"\\/","tee-pubkey":null}`,
		`{"\ud83d\ude00":1,"\ufb33":2,"nonce":"é","tee-pubkey":[]}`,
		`{"nonce":"n","tee-pubkey":{"n":1.0,"m":1e21,"k":-0,"j":0.000001,"i":1e-7,"h":123456789012345680000}}`,
		`{"additional-evidence":"","nonce":"","tee-pubkey":{"kty":"EC"}}`,
	}
	want, _ := kbsNode(t, docs, nil)
	if len(want) != len(docs) {
		t.Fatalf("%d answers for %d documents", len(want), len(docs))
	}
	for i, d := range docs {
		var v map[string]any
		if err := json.Unmarshal([]byte(d), &v); err != nil {
			t.Fatal(err)
		}
		got, err := coordinator.KBSCanonical(v)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if string(got) != want[i] {
			t.Errorf("document %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
}

// A guest that canonicalizes its runtime data with the independent RFC
// 8785 implementation attests, and the resource trustbound releases to its
// RSA or EC tee-pubkey is decrypted by jose to exactly the secret.
func TestKBSInteropWithIndependentClient(t *testing.T) {
	h := kbsHarness(t)
	secret := []byte("interop: correct horse battery staple")
	client := agent.NewClient(h.srv.URL, h.srv.Client())
	if _, err := client.SetSecret(context.Background(), agent.Owner{Name: h.m.Owners[0].Name, Key: h.owner}, "db-password", secret); err != nil {
		t.Fatal(err)
	}
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, key := range map[string]crypto.Signer{"RSA-2048": mustRSA(t), "EC P-256": ec256, "EC P-384": ec384} {
		t.Run(name, func(t *testing.T) {
			g := newKBSGuest(t, h, ledgerCVM)
			alg := "ECDH-ES+A256KW"
			if strings.HasPrefix(name, "RSA") {
				alg = "RSA-OAEP-256"
			}
			pub, _ := json.Marshal(jose.JSONWebKey{Key: key.Public(), Algorithm: alg})
			priv, _ := json.Marshal(jose.JSONWebKey{Key: key, Algorithm: alg})
			nonce := g.auth()
			// The guest's side, as guest-components does it: the canonical
			// runtime data (with the composite evidence's empty additional
			// evidence) by the independent implementation, SHA-384 into
			// the report data.
			doc, _ := json.Marshal(map[string]any{"additional-evidence": "", "nonce": nonce, "tee-pubkey": json.RawMessage(pub)})
			canon, _ := kbsNode(t, []string{string(doc)}, nil)
			sum := sha512.Sum384([]byte(canon[0]))
			var rd [64]byte
			copy(rd[:], sum[:])
			ev := mustAttest(t, g.vm, rd)
			st, out := g.do("POST", "/kbs/v0/attest", map[string]any{
				"runtime-data": map[string]any{"nonce": nonce, "tee-pubkey": json.RawMessage(pub)},
				"tee-evidence": map[string]any{"primary_evidence": json.RawMessage(ev.Data), "additional_evidence": ""},
			})
			if st != http.StatusOK {
				t.Fatalf("attest: %d %s", st, out)
			}
			h.clock.advance(time.Second) // the audit trail keys releases by time
			st, jwe := g.do("GET", "/kbs/v0/resource/default/db-password/latest", nil)
			if st != http.StatusOK {
				t.Fatalf("resource: %d %s", st, jwe)
			}
			var obj, jwk map[string]any
			if err := errors.Join(json.Unmarshal(jwe, &obj), json.Unmarshal(priv, &jwk)); err != nil {
				t.Fatal(err)
			}
			tampered := map[string]any{}
			for k, v := range obj {
				tampered[k] = v
			}
			ct, _ := base64.RawURLEncoding.DecodeString(obj["ciphertext"].(string))
			ct[0] ^= 1
			tampered["ciphertext"] = base64.RawURLEncoding.EncodeToString(ct)
			_, plain := kbsNode(t, nil, []map[string]any{{"jwe": obj, "jwk": jwk}})
			if len(plain) != 1 || !bytes.Equal(plain[0], secret) {
				t.Fatalf("jose decrypted %q, want the secret", plain)
			}
			// The same check refuses a tampered ciphertext.
			node, _ := exec.LookPath("node")
			in, _ := json.Marshal(map[string]any{"canon": []string{}, "jwe": []map[string]any{{"jwe": tampered, "jwk": jwk}}})
			cmd := exec.Command(node, "kbs.mjs")
			cmd.Dir, cmd.Stdin = kbsNodeDir, bytes.NewReader(in)
			if out, err := cmd.Output(); err == nil {
				t.Fatalf("jose decrypted a tampered JWE: %s", out)
			}
		})
	}
}
