package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
	}
	if err := json.Unmarshal(b, &r); err != nil || !r.Quick || len(r.Verify) != 5 {
		t.Fatalf("results.json: quick %v, %d formats (%v)", r.Quick, len(r.Verify), err)
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
