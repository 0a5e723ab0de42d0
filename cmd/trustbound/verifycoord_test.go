package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/coordinator"
)

func startTestCoordinator(t *testing.T) *server {
	t.Helper()
	s, err := startServer(context.Background(), serverOptions{dataDir: t.TempDir(), listen: "127.0.0.1:0",
		logger: slog.New(slog.DiscardHandler), offline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.shutdown(ctx)
	})
	return s
}

// TestVerifyCoordinator verifies a real coordinator on loopback and writes
// the CA it serves its TLS certificate under.
func TestVerifyCoordinator(t *testing.T) {
	s := startTestCoordinator(t)
	out := filepath.Join(t.TempDir(), "ca.pem")
	code, stdout, stderr := runCmd(t, "verify-coordinator", s.url, "--allow-simulated", "--out", out, "--cache", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "SIMULATED") || !strings.Contains(stdout, "2 token keys") {
		t.Errorf("output: %s", stdout)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, s.caPEM) {
		t.Fatalf("written CA differs from the coordinator's")
	}
	// The written CA is what the CLI then trusts.
	c, err := clientWithCA(s.url, got)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Challenge(context.Background()); err != nil {
		t.Fatalf("client with the verified CA: %v", err)
	}

	// The explicit expected measurement works too (flags before the URL).
	sim := hex.EncodeToString(simulatedCoordinatorMeasurement[:])
	if code, _, e := runCmd(t, "verify-coordinator", "--allow-simulated", "--measurement", sim, "--out", out, "--cache", t.TempDir(), s.url); code != exitOK {
		t.Fatalf("with --measurement: exit %d: %s", code, e)
	}
}

func TestVerifyCoordinatorRefusals(t *testing.T) {
	s := startTestCoordinator(t)
	sim := hex.EncodeToString(simulatedCoordinatorMeasurement[:])
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no expectation", []string{s.url}, exitUsage, "--measurement is required"},
		{"http URL", []string{"http://127.0.0.1:1", "--allow-simulated"}, exitUsage, "https"},
		{"bad hex", []string{s.url, "--measurement", "zz"}, exitUsage, "hex"},
		{"two URLs", []string{s.url, s.url, "--allow-simulated"}, exitUsage, "one URL"},
		{"simulated not allowed", []string{s.url, "--measurement", sim}, exitRefused, "simulated"},
		{"wrong measurement", []string{s.url, "--allow-simulated", "--measurement", strings.Repeat("ab", 48)}, exitRefused, "measurement: got"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ca.pem")
			code, _, stderr := runCmd(t, append([]string{"verify-coordinator", "--out", out, "--cache", t.TempDir()}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q: %s", code, tc.code, tc.want, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a CA was written for a refused coordinator")
			}
		})
	}
}

// impostor serves h over TLS with a certificate of the coordinator of s.
func impostor(t *testing.T, h http.Handler, certBy *server) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := certBy.coord.ServerCertificate(key, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, certBy.coord.CA().Raw}, PrivateKey: key}}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL
}

// tamperEvidence serves h, with the coordinator evidence edited by edit.
func tamperEvidence(t *testing.T, h http.Handler, edit func(*coordinator.SelfEvidence)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != coordinator.PathCoordinatorEvidence {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var se coordinator.SelfEvidence
		if err := json.Unmarshal(rec.Body.Bytes(), &se); err != nil {
			t.Error(err)
		}
		edit(&se)
		_ = json.NewEncoder(w).Encode(se)
	})
}

// TestVerifyCoordinatorImpostors: coordinators whose evidence does not
// name the CA, TLS certificate or token keys they present, or whose
// evidence was tampered with, are refused.
func TestVerifyCoordinatorImpostors(t *testing.T) {
	a, b := startTestCoordinator(t), startTestCoordinator(t)
	ah, bh := a.coord.Handler(), b.coord.Handler()
	// B's CA and token keys with A's evidence.
	mixed := func(paths ...string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, p := range paths {
				if r.URL.Path == p {
					bh.ServeHTTP(w, r)
					return
				}
			}
			ah.ServeHTTP(w, r)
		})
	}
	for _, tc := range []struct {
		name string
		url  string
		want string
	}{
		{"TLS certificate of another CA", impostor(t, ah, b), "TLS certificate"},
		{"evidence names another CA", impostor(t, mixed("/v1/ca"), b), "service CA"},
		{"other token keys", impostor(t, mixed("/certs"), a), "token keys"},
		{"tampered runtime data", impostor(t, tamperEvidence(t, ah, func(se *coordinator.SelfEvidence) {
			se.Evidence.RuntimeData = bytes.Replace(se.Evidence.RuntimeData, []byte(`"issuer":"`), []byte(`"issuer":"x`), 1)
		}), a), "runtime data"},
		{"tampered measurement", impostor(t, tamperEvidence(t, ah, func(se *coordinator.SelfEvidence) {
			se.Evidence.Data[0x90] ^= 1 // MEASUREMENT
		}), a), "evidence"},
		{"unlabelled simulation", impostor(t, tamperEvidence(t, ah, func(se *coordinator.SelfEvidence) {
			se.Simulated = false
		}), a), "simulated label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ca.pem")
			code, _, stderr := runCmd(t, "verify-coordinator", tc.url, "--allow-simulated", "--out", out, "--cache", t.TempDir())
			if code != exitRefused || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "coordinator not verified") {
				t.Fatalf("exit %d, want %d naming %q: %s", code, exitRefused, tc.want, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a CA was written for a refused coordinator")
			}
		})
	}
	// The untampered evidence through the same impostor plumbing passes,
	// so the refusals above are the tampering's.
	out := filepath.Join(t.TempDir(), "ca.pem")
	if code, _, e := runCmd(t, "verify-coordinator", impostor(t, tamperEvidence(t, ah, func(*coordinator.SelfEvidence) {}), a), "--allow-simulated", "--out", out, "--cache", t.TempDir()); code != exitOK {
		t.Fatalf("untampered: exit %d: %s", code, e)
	}
}

// TestCoordinatorEvidenceNames: the evidence names the issuer and the
// published token keys, and follows a rotation.
func TestCoordinatorEvidenceNames(t *testing.T) {
	s := startTestCoordinator(t)
	body, err := s.coord.SelfEvidence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var se coordinator.SelfEvidence
	if err := json.Unmarshal(body, &se); err != nil {
		t.Fatal(err)
	}
	if !se.Simulated || se.Evidence.Format != attest.FormatSNPReport {
		t.Fatalf("evidence %+v", se)
	}
	var rd coordinator.SelfRuntimeData
	if err := json.Unmarshal(se.Evidence.RuntimeData, &rd); err != nil {
		t.Fatal(err)
	}
	if rd.Issuer != s.url || len(rd.TokenKeys) != 2 {
		t.Fatalf("runtime data %+v", rd)
	}
	// A rotation changes the evidence: the new keys are named.
	if err := s.coord.RotateTokenKeys(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	body2, err := s.coord.SelfEvidence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(body, body2) {
		t.Fatal("evidence unchanged after a token key rotation")
	}
}
