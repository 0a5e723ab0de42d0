package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/bench"
)

// TestMain makes this test binary the bench's child coordinator when the
// harness starts it: cmdBench runs os.Executable (this binary) with
// bench.ChildEnv=1, and the test flags are not parsed then.
func TestMain(m *testing.M) {
	if os.Getenv(bench.ChildEnv) == "1" {
		os.Exit(run(context.Background(), []string{"bench", benchChildArg}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the harness")
	}
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bench", "--quick", "--out", out, "--tmp", t.TempDir()}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"sev-snp-report", "tdx-quote", "sgx-dcap-quote-v3", "az-snp-vtpm", "az-tdx-vtpm", "% of verify bound", "Targets"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Quick  bool `json:"quick"`
		Verify []struct {
			Format string `json:"format"`
		} `json:"verify"`
		RoundTrips struct {
			Exact bool `json:"coordinatorCpuExact"`
		} `json:"roundTrips"`
		Memory struct {
			Process string `json:"process"`
		} `json:"memory"`
	}
	if err := json.Unmarshal(b, &r); err != nil || !r.Quick || len(r.Verify) != 5 {
		t.Fatalf("results.json: quick %v, %d formats (%v)", r.Quick, len(r.Verify), err)
	}
	// The coordinator ran in a child process (this test binary again).
	if !r.RoundTrips.Exact || !strings.HasPrefix(r.Memory.Process, "child process") {
		t.Errorf("results.json: coordinator CPU exact %v, memory of %q", r.RoundTrips.Exact, r.Memory.Process)
	}
	for _, f := range []string{"throughput.svg", "latency.svg", "results.txt"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bench", "extra"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d: %s", code, exitUsage, stderr.String())
	}
	if code := run(context.Background(), []string{"bench", "--no-such-flag"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
}
