package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustbound/trustbound/manifest"
)

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

// TestQuickstart runs the main job: a real coordinator on loopback HTTPS and
// three simulated workloads, one per deployment model.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	code, out, logs := runCmd(t, "quickstart", "--dir", dir, "--log-level", "debug")
	if code != exitOK {
		t.Fatalf("quickstart exited %d\n%s\n%s", code, out, logs)
	}
	for _, want := range []string{
		"confidential-vm", "enclave", "confidential-container",
		"inside the boundary:  the whole guest", "inside the boundary:  the enclave's code and data", "the pod's agent policy",
		"outside the boundary: host OS", "cloud operator",
		"sev-snp (simulated)", "sgx (simulated)",
		"refused: wrong measurement", "refused: replayed nonce",
		"spiffe://quickstart.trustbound.local/confidential-container/web",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("quickstart output lacks %q", want)
		}
	}
	if n := strings.Count(out, "affirming, served"); n != 3 {
		t.Errorf("%d workloads served, want 3", n)
	}
	// Every file the agents wrote is owner-only, and no secret value
	// reached the coordinator's (debug) log or the output.
	var secrets int
	err := filepath.WalkDir(filepath.Join(dir, "agents"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, info.Mode().Perm())
		}
		if filepath.Base(filepath.Dir(p)) != "secrets" {
			return nil
		}
		secrets++
		v, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, form := range []string{string(v), hex.EncodeToString(v)} {
			if len(form) >= 16 && (strings.Contains(logs, form) || strings.Contains(out, form)) {
				t.Errorf("the value of %s appears in the output or logs", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if secrets != 5 {
		t.Errorf("%d secret files written, want 5 (ledger-vm: db-password, disk-key; signer: signing-key; web: disk-key, tls)", secrets)
	}
	if !strings.Contains(logs, `"msg":"released"`) {
		t.Error("the coordinator's debug log records no release: the log check above checked nothing")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeAndAgentAsCommands runs the pieces as a user would: serve,
// keygen, manifest validate/set, secret set, agent, status.
func TestServeAndAgentAsCommands(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var serveOut, serveErr syncBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--data", filepath.Join(dir, "data"), "--listen", addr, "--log-level", "warn", "--token-key-rotation", "720h"}, &serveOut, &serveErr)
	}()
	ca := filepath.Join(dir, "data", "ca.pem")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(serveOut.String(), "coordinator at") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	url := "https://" + addr
	conn := []string{"--coordinator", url, "--ca", ca}

	keyFile := filepath.Join(dir, "owner.key")
	code, pub, errOut := runCmd(t, "keygen", "--out", keyFile)
	if code != exitOK || !strings.Contains(pub, "BEGIN PUBLIC KEY") {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	mf := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(mf, manifest.SampleWith(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, e := runCmd(t, "manifest", "validate", mf); code != exitOK || !strings.Contains(out, "valid manifest v1, 1 owners, 3 workloads") {
		t.Fatalf("manifest validate: %d %s %s", code, out, e)
	}
	// Without the bootstrap token, the first manifest is refused, even
	// signed by its own owner.
	if code, _, e := runCmd(t, append(append([]string{"manifest", "set"}, conn...), "--owner", manifest.SampleOwner, "--key", keyFile, mf)...); code != exitRefused || !strings.Contains(e, "bootstrap token") {
		t.Fatalf("manifest set without bootstrap token: %d %s", code, e)
	}
	bootstrap := filepath.Join(dir, "data", "bootstrap.token")
	if info, err := os.Stat(bootstrap); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap token file: %v %v", info, err)
	}
	if code, out, e := runCmd(t, append(append([]string{"manifest", "set"}, conn...), "--owner", manifest.SampleOwner, "--key", keyFile, "--bootstrap", bootstrap, mf)...); code != exitOK || !strings.Contains(out, "manifest set: digest") {
		t.Fatalf("manifest set: %d %s %s", code, out, e)
	}
	valueFile := filepath.Join(dir, "pw")
	os.WriteFile(valueFile, []byte("correct horse battery staple"), 0o600)
	if code, out, e := runCmd(t, append(append([]string{"secret", "set"}, conn...), "--owner", manifest.SampleOwner, "--key", keyFile, "--from", valueFile, "db-password")...); code != exitOK || strings.Contains(out, "horse") {
		t.Fatalf("secret set: %d %s %s", code, out, e)
	}
	agentOut := filepath.Join(dir, "ledger")
	code, out, e := runCmd(t, append(append([]string{"agent"}, conn...), "--workload", "ledger-vm", "--out", agentOut,
		"--simulate", "snp", "--sim-measurement", hex.EncodeToString(manifest.SampleLedgerMeasurement[:]))...)
	if code != exitOK || !strings.Contains(out, "ledger-vm attested on a SIMULATED TEE as spiffe://") {
		t.Fatalf("agent: %d %s %s", code, out, e)
	}
	if got, err := os.ReadFile(filepath.Join(agentOut, "secrets", "db-password")); err != nil || string(got) != "correct horse battery staple" {
		t.Fatalf("released db-password: %q %v", got, err)
	}
	// A wrong measurement is refused: exit 1 with the reason on stderr.
	bad := manifest.SampleLedgerMeasurement
	bad[5] ^= 0xff
	code, _, e = runCmd(t, append(append([]string{"agent"}, conn...), "--workload", "ledger-vm", "--out", filepath.Join(dir, "bad"),
		"--simulate", "snp", "--sim-measurement", hex.EncodeToString(bad[:]))...)
	if code != exitRefused || !strings.Contains(e, "measurements: measurement") {
		t.Fatalf("tampered agent: %d %s", code, e)
	}
	code, out, e = runCmd(t, append([]string{"status", "--owner", manifest.SampleOwner, "--key", keyFile}, conn...)...)
	if code != exitOK || !strings.Contains(out, "ledger-vm") || !strings.Contains(out, "inside the boundary") || !strings.Contains(out, "sev-snp (simulated)") {
		t.Fatalf("status: %d %s %s", code, out, e)
	}
	// The audit trail names the release, never the value.
	code, out, e = runCmd(t, append([]string{"audit", "--owner", manifest.SampleOwner, "--key", keyFile}, conn...)...)
	if code != exitOK || !strings.Contains(out, `"secret": "db-password"`) || strings.Contains(out, "horse") {
		t.Fatalf("audit: %d %s %s", code, out, e)
	}
	// Policies: set (parsed before it is stored), read back, refused when malformed.
	pf := filepath.Join(dir, "gate.rego")
	os.WriteFile(pf, []byte("package trustbound\n\nallow if input.claims.tee == \"sev-snp\"\n"), 0o600)
	owner := []string{"--owner", manifest.SampleOwner, "--key", keyFile}
	if code, out, e := runCmd(t, slices.Concat([]string{"policy", "set"}, conn, owner, []string{"gate", pf})...); code != exitOK || !strings.Contains(out, "policy gate set: rego, version 1") {
		t.Fatalf("policy set: %d %s %s", code, out, e)
	}
	if code, out, e := runCmd(t, slices.Concat([]string{"policy", "get"}, conn, owner, []string{"gate"})...); code != exitOK || !strings.Contains(out, `"kind": "rego"`) || !strings.Contains(out, "allow if") {
		t.Fatalf("policy get: %d %s %s", code, out, e)
	}
	os.WriteFile(pf, []byte("version=1.0; authorizationrules { => allow(); };"), 0o600)
	if code, _, e := runCmd(t, slices.Concat([]string{"policy", "set"}, conn, owner, []string{"gate", pf})...); code != exitRefused || !strings.Contains(e, "Policy refused") || !strings.Contains(e, "line 1") {
		t.Fatalf("malformed policy set: %d %s", code, e)
	}
	// Status and audit need an owner.
	if code, _, e := runCmd(t, append([]string{"status", "--owner", "mallory", "--key", keyFile}, conn...)...); code != exitRefused || !strings.Contains(e, "not an owner") {
		t.Fatalf("status as a stranger: %d %s", code, e)
	}
	cancel()
	select {
	case code := <-served:
		if code != exitOK {
			t.Fatalf("serve exited %d after shutdown: %s", code, serveErr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if strings.Contains(serveErr.String(), "horse") {
		t.Error("a secret value reached the coordinator's log")
	}
}

func TestUsageAndRefusalExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\ntrustDomain: Example.org\nowners: []\nworkloads: []\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "usage"},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"manifest"}, exitUsage, "manifest validate FILE"},
		{[]string{"manifest", "validate"}, exitUsage, "manifest validate FILE"},
		{[]string{"manifest", "validate", bad}, exitRefused, "trustDomain"},
		{[]string{"agent", "--workload", "w", "--ca", bad}, exitUsage, "--simulate snp|sgx"},
		{[]string{"agent", "--workload", "w", "--simulate", "snp", "--sim-measurement", "abcd"}, exitUsage, "48 bytes"},
		{[]string{"status", "--owner", "a", "--key", bad}, exitRefused, "no PEM block"},
		{[]string{"status"}, exitUsage, "--owner is required"},
		{[]string{"serve", "--log-level", "loud"}, exitUsage, "--log-level"},
	} {
		code, _, e := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d containing %q", tc.args, code, e, tc.code, tc.want)
		}
	}
	// Status of a manifest file, without a coordinator, prints the boundaries.
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, manifest.SampleWith(testOwnerPEM(t)), 0o600)
	code, out, e := runCmd(t, "status", "--manifest", good)
	if code != exitOK || strings.Count(out, "inside the boundary") != 3 {
		t.Fatalf("status --manifest: %d %s %s", code, out, e)
	}
}

func testOwnerPEM(t *testing.T) string {
	t.Helper()
	code, pub, e := runCmd(t, "keygen", "--out", filepath.Join(t.TempDir(), "k"))
	if code != exitOK {
		t.Fatal(e)
	}
	return pub
}
