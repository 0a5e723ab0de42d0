package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/manifest"
)

// --tee names an interface the machine lacks: exit 1, and the error says
// what is missing and what it needs.
func TestAgentTEEFlagWithoutTheInterface(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/config/tsm/report"); err == nil {
		t.Skip("this machine has configfs-tsm")
	}
	code, _, e := runCmd(t, "agent", "--workload", "w", "--tee", "configfs-tsm")
	if code != exitRefused || !strings.Contains(e, "/sys/kernel/config/tsm/report") || !strings.Contains(e, "no configfs-tsm reports") {
		t.Errorf("--tee configfs-tsm without configfs: exit %d, stderr %q", code, e)
	}
	code, _, e = runCmd(t, "agent", "--workload", "w", "--tee", "sgx")
	if code != exitUsage || !strings.Contains(e, "unknown TEE interface") {
		t.Errorf("--tee sgx: exit %d, stderr %q", code, e)
	}
	code, _, e = runCmd(t, "agent", "--workload", "w", "--tee", "sev-guest", "--simulate", "snp")
	if code != exitUsage || !strings.Contains(e, "--simulate is for --tee simulated") {
		t.Errorf("--tee sev-guest --simulate snp: exit %d, stderr %q", code, e)
	}
}

// agent --serve: a non-loopback address is a usage error (exit 2) before
// anything is attested; a loopback one serves the sidecar API until the
// context ends, and the command then exits 0.
func TestAgentServe(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var serveOut, serveErr syncBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--data", filepath.Join(dir, "data"), "--listen", addr, "--log-level", "warn"}, &serveOut, &serveErr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(serveOut.String(), "coordinator at") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer func() {
		cancel()
		<-served
	}()
	conn := []string{"--coordinator", "https://" + addr, "--ca", filepath.Join(dir, "data", "ca.pem")}
	keyFile := filepath.Join(dir, "owner.key")
	code, pub, e := runCmd(t, "keygen", "--out", keyFile)
	if code != exitOK {
		t.Fatalf("keygen: %s", e)
	}
	mf := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(mf, manifest.SampleWith(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, e := runCmd(t, append(append([]string{"manifest", "set"}, conn...), "--owner", manifest.SampleOwner, "--key", keyFile,
		"--bootstrap", filepath.Join(dir, "data", "bootstrap.token"), mf)...); code != exitOK {
		t.Fatalf("manifest set: %s", e)
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse battery staple"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, e := runCmd(t, append(append([]string{"secret", "set"}, conn...), "--owner", manifest.SampleOwner, "--key", keyFile, "--from", pw, "db-password")...); code != exitOK {
		t.Fatalf("secret set: %s", e)
	}
	agentArgs := func(serve string) []string {
		return append(append([]string{"agent"}, conn...), "--workload", "ledger-vm", "--out", filepath.Join(dir, "ledger"),
			"--simulate", "snp", "--sim-measurement", hex.EncodeToString(manifest.SampleLedgerMeasurement[:]), "--serve", serve)
	}

	for _, bad := range []string{"0.0.0.0:0", "192.0.2.1:8080", "example.com:80"} {
		code, out, e := runCmd(t, agentArgs(bad)...)
		if code != exitUsage || !strings.Contains(e, "not loopback") || strings.Contains(out, "attested") {
			t.Errorf("--serve %s: exit %d, stdout %q, stderr %q; want exit 2 before attesting", bad, code, out, e)
		}
	}

	sidecar := freePort(t)
	actx, stop := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(actx, agentArgs(sidecar), &out, &errOut) }()
	deadline = time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), "key-release sidecar API -> http://"+sidecar) {
		select {
		case code := <-exited:
			stop()
			t.Fatalf("agent --serve exited %d: %s %s", code, out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("agent --serve did not serve: %s %s", out.String(), errOut.String())
		}
	}
	resp, err := http.Get("http://" + sidecar + "/status")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	var status map[string]string
	err = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || status["message"] != "Status OK" {
		t.Errorf("/status: HTTP %d %v (%v)", resp.StatusCode, status, err)
	}
	stop()
	select {
	case code := <-exited:
		if code != exitOK {
			t.Errorf("agent --serve exited %d after its context ended: %s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent --serve did not stop when its context ended")
	}
	if _, err := http.Get("http://" + sidecar + "/status"); err == nil {
		t.Error("the sidecar API still answers after the agent exited")
	}
}
