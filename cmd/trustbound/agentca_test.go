package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCAFile writes a fresh self-signed CA certificate (PEM) and returns
// its path and the hex of its SHA-256.
func testCAFile(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test coordinator CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4e9, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "coordinator-ca.crt")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

// TestAgentCASHA256 checks --ca-sha256: the agent builds its client from
// the CA file only if the file's SHA-256 is the pinned one; otherwise it
// refuses, naming the file and both digests.
func TestAgentCASHA256(t *testing.T) {
	ca, sum := testCAFile(t)
	cf := coordinatorFlags{url: "https://coordinator.test:8443", caFile: ca}

	if c, err := agentClient(&cf, sum); err != nil || c == nil {
		t.Fatalf("the pinned CA is refused: %v", err)
	}
	if c, err := agentClient(&cf, strings.ToUpper(sum)); err != nil || c == nil {
		t.Fatalf("the pinned CA in upper-case hex is refused: %v", err)
	}
	if c, err := agentClient(&cf, ""); err != nil || c == nil {
		t.Fatalf("without --ca-sha256 the CA is refused: %v", err)
	}

	other := strings.Repeat("ab", 32)
	_, err := agentClient(&cf, other)
	if err == nil {
		t.Fatal("a CA with another digest is accepted")
	}
	for _, want := range []string{ca, sum, other} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not name %s", err, want)
		}
	}

	for _, bad := range []string{"zz", sum[:62], sum + "00"} {
		if _, err := agentClient(&cf, bad); err == nil || !strings.Contains(err.Error(), "--ca-sha256 must be") {
			t.Errorf("--ca-sha256 %q: %v, want a usage error", bad, err)
		}
	}
	if _, err := agentClient(&coordinatorFlags{url: cf.url}, sum); err == nil || !strings.Contains(err.Error(), "--ca is required") {
		t.Errorf("--ca-sha256 without --ca: %v", err)
	}

	// A file changed after pinning (one byte appended) is refused.
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, append(b, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agentClient(&cf, sum); err == nil || !strings.Contains(err.Error(), "refusing to trust") {
		t.Errorf("a modified CA file: %v, want a refusal", err)
	}
}

// TestAgentCommandRefusesUnpinnedCA runs `trustbound agent` with a CA file
// whose digest is not --ca-sha256: it stops before talking to anyone
// (exit 1) and says why.
func TestAgentCommandRefusesUnpinnedCA(t *testing.T) {
	ca, sum := testCAFile(t)
	other := strings.Repeat("0f", 32)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"agent", "--simulate", "snp", "--coordinator", "https://127.0.0.1:1",
		"--ca", ca, "--ca-sha256", other, "--workload", "web", "--out", t.TempDir()}, &stdout, &stderr)
	if code != exitRefused {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitRefused, stderr.String())
	}
	for _, want := range []string{ca, sum, other, "refusing to trust"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q does not name %s", stderr.String(), want)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q", stdout.String())
	}

	code = run(context.Background(), []string{"agent", "--simulate", "snp", "--ca", ca, "--ca-sha256", "nothex", "--workload", "web"}, &stdout, &stderr)
	if code != exitUsage {
		t.Errorf("--ca-sha256 nothex: exit %d, want %d", code, exitUsage)
	}
}

// Every command that talks to a coordinator refuses a URL that is not
// https: over plain HTTP the CA (and --ca-sha256) would check nothing.
func TestCoordinatorURLMustBeHTTPS(t *testing.T) {
	ca, sum := testCAFile(t)
	for _, u := range []string{"http://127.0.0.1:1", "127.0.0.1:8443", "https://", "ftp://coordinator.test"} {
		cf := coordinatorFlags{url: u, caFile: ca}
		if _, err := cf.client(); err == nil || !strings.Contains(err.Error(), "https://") {
			t.Errorf("client() with %q: %v", u, err)
		}
		if _, err := agentClient(&cf, sum); err == nil || !strings.Contains(err.Error(), "https://") {
			t.Errorf("agentClient with %q: %v", u, err)
		}
	}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"agent", "--coordinator", "http://127.0.0.1:1", "--ca", ca, "--ca-sha256", sum,
		"--simulate", "snp", "--workload", "w", "--serve", "127.0.0.1:0"}, io.Discard, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "https://") {
		t.Fatalf("agent --serve with an http coordinator: exit %d, %s", code, stderr.String())
	}
}
