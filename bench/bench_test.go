package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMain makes this test binary the child coordinator when Run starts
// it (Options.Coordinator is the test binary, with ChildEnv=1).
func TestMain(m *testing.M) {
	if os.Getenv(ChildEnv) == "1" {
		if err := ServeCoordinator(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunQuick runs the whole harness at its smallest, the coordinator in
// a child process, and checks that every section measured what it says,
// without a failed round trip.
func TestRunQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the harness")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Options{Quick: true, TempDir: t.TempDir(), Coordinator: []string{exe}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sev-snp-report", "az-snp-vtpm", "tdx-quote", "sgx-dcap-quote-v3", "az-tdx-vtpm"}
	if len(r.Verify) != len(want) {
		t.Fatalf("%d formats measured, want %d", len(r.Verify), len(want))
	}
	for i, v := range r.Verify {
		if v.Format != want[i] {
			t.Errorf("format %d is %q, want %q", i, v.Format, want[i])
		}
		if v.WarmNs <= 0 || v.BareNs <= 0 || v.ColdNs <= 0 || v.WarmOverBare <= 0 {
			t.Errorf("%s: warm %v bare %v cold %v", v.Format, v.WarmNs, v.BareNs, v.ColdNs)
		}
		// Only the two formats with a plain Go library have a plain figure.
		hasPlain := v.Format == "sev-snp-report" || v.Format == "tdx-quote"
		if (v.PlainNs > 0) != hasPlain || (!hasPlain && !strings.HasPrefix(v.PlainWhat, "n/a: ")) {
			t.Errorf("%s: plain %v (%q)", v.Format, v.PlainNs, v.PlainWhat)
		}
	}
	rt := r.RoundTrips
	if rt == nil || len(rt.Levels) != 3 || len(rt.SeparateLevels) != 3 || len(rt.AttestOnlyLevels) != 3 || rt.VerifyMs <= 0 ||
		rt.ClientCPUMs <= 0 || rt.SeparateClientCPUMs <= 0 || rt.AttestOnlyClientCPUMs <= 0 {
		t.Fatalf("round trips: %+v", rt)
	}
	// The release routes against the attest-only baseline, level by level.
	for i := range rt.AttestOnlyLevels {
		base := rt.AttestOnlyLevels[i]
		if base.PctOfAttestOnly != 0 || base.Errors != 0 {
			t.Errorf("attest-only c=%d: %+v", base.Concurrency, base)
		}
		for _, l := range []RoundTripResult{rt.Levels[i], rt.SeparateLevels[i]} {
			if l.Concurrency != base.Concurrency || math.Abs(l.PctOfAttestOnly-100*l.OpsPerSec/base.OpsPerSec) > 1e-9 {
				t.Errorf("c=%d: %v%% of attest-only, ops/s %v against %v", l.Concurrency, l.PctOfAttestOnly, l.OpsPerSec, base.OpsPerSec)
			}
		}
	}
	// The floor: every step measured, the sums and ceilings as defined.
	if f := rt.Floor; f == nil {
		t.Error("no floor")
	} else {
		for name, ms := range map[string]float64{"seal": f.SealMs, "certificate": f.CertificateMs, "token": f.TokenMs,
			"record": f.RecordMs, "record (one writer)": f.RecordSoloMs, "record (wall)": f.RecordWallMs, "report signature": f.ReportSignMs} {
			if ms <= 0 {
				t.Errorf("floor: %s %v ms", name, ms)
			}
		}
		if f.VerifyMs != rt.VerifyMs || f.ClientMs != rt.ClientCPUMs || f.ReportSignMs != rt.AttestOnlyClientCPUMs || f.ReportSignMs >= f.ClientMs {
			t.Errorf("floor: verify %v (round trips %v), clients %v (round trips %v), report signature %v", f.VerifyMs, rt.VerifyMs, f.ClientMs, rt.ClientCPUMs, f.ReportSignMs)
		}
		sum := f.VerifyMs + f.SealMs + f.CertificateMs + f.TokenMs + f.RecordMs
		if math.Abs(f.CoordinatorMs-sum) > 1e-9 || math.Abs(f.MaxCoordinatorPct-100*f.VerifyMs/sum) > 1e-9 ||
			math.Abs(f.MaxPctOfVerifyBound-100*f.VerifyMs/(sum+f.ClientMs)) > 1e-9 ||
			math.Abs(f.MinimalMaxPct-100*f.VerifyMs/(f.VerifyMs+f.SealMs+f.ReportSignMs)) > 1e-9 ||
			!(f.MaxPctOfVerifyBound < f.MaxCoordinatorPct && f.MaxCoordinatorPct < f.MinimalMaxCoordinatorPct && f.MinimalMaxCoordinatorPct < 100) {
			t.Errorf("floor sums: %+v", f)
		}
	}
	if !rt.CoordinatorCPUExact || rt.CoordinatorCPUMethod != methodChild {
		t.Errorf("coordinator CPU: exact %v, %q", rt.CoordinatorCPUExact, rt.CoordinatorCPUMethod)
	}
	for _, l := range slices.Concat(rt.Levels, rt.SeparateLevels, rt.AttestOnlyLevels) {
		if l.Errors != 0 || l.Ops < 16 || l.OpsPerSec <= 0 || l.P99Ms < l.P50Ms || l.CPUPerOpMs <= 0 {
			t.Errorf("c=%d: %+v", l.Concurrency, l)
		}
		// Measured in the child: both shares present, adding up to the whole.
		if (l.ServerCPUSource != "schedstat" && l.ServerCPUSource != "stat") || l.ClientCPUPerOpMs <= 0 ||
			math.Abs(l.ClientCPUPerOpMs+l.ServerCPUPerOpMs-l.CPUPerOpMs) > 1e-9 {
			t.Errorf("c=%d: coordinator CPU %v ms (%q), clients %v ms, all %v ms", l.Concurrency, l.ServerCPUPerOpMs, l.ServerCPUSource, l.ClientCPUPerOpMs, l.CPUPerOpMs)
		}
		if l.ServerCPUSource == "schedstat" && (l.ServerCPUPerOpMs <= 0 || l.CoordinatorPctOfVerifyBound <= 0) {
			t.Errorf("c=%d: coordinator CPU %v ms, %v%%", l.Concurrency, l.ServerCPUPerOpMs, l.CoordinatorPctOfVerifyBound)
		}
	}
	m := r.Memory
	if m != nil && m.Process != memChild {
		t.Errorf("memory measured in %q, want the child", m.Process)
	}
	// 1008 audit records: two pages of at most api.MaxAuditLimit.
	if m == nil || m.Workloads != 200 || m.Releases != 1000 || m.AuditRecords != 1000+m.Attested || m.AuditPages != 2 || m.AuditReadError != "" || m.RSSMiB <= 0 || m.StoreMiB <= 0 {
		t.Fatalf("memory: %+v", m)
	}

	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + txt.String())
	if !strings.Contains(txt.String(), "floor, each step alone") {
		t.Error("the text report has no floor")
	}
	ceilings := 0
	for _, tg := range r.Targets {
		if strings.Contains(tg.Name, "ceiling") {
			ceilings++
			if !strings.Contains(tg.Measured, "% / ") {
				t.Errorf("ceiling target %q measured %q", tg.Name, tg.Measured)
			}
		}
	}
	if ceilings != 2 {
		t.Errorf("%d ceiling targets, want 2", ceilings)
	}
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	var back Results
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.Verify) != 5 || back.Memory.Releases != 1000 {
		t.Fatalf("results.json: %v", err)
	}
	for _, name := range []string{"results.txt", "throughput.svg", "latency.svg"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

// svgDoc is what the tests read back of a chart.
type svgDoc struct {
	XMLName   xml.Name `xml:"svg"`
	Polylines []struct {
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Texts []string `xml:"text"`
}

func TestChartSVG(t *testing.T) {
	c := &Chart{Title: "T <&>", XLabel: "clients", YLabel: "ops/s", LogX: true, Series: []Series{
		{Name: "a", Color: "#000", X: []float64{1, 16, 128}, Y: []float64{10, 80, 95}},
		{Name: "b", Color: "#f00", X: []float64{1, 16, 128}, Y: []float64{100, 100, 100}},
	}}
	var b bytes.Buffer
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	if len(doc.Polylines) != 2 {
		t.Fatalf("%d polylines, want 2", len(doc.Polylines))
	}
	// 1 → left edge (x = padL), 16 → 4/7 of the way, 128 → right edge; y 100 is the top (the
	// axis runs to niceMax(100) = 100), 0 the bottom.
	if got := doc.Polylines[1].Points; got != "70.0,40.0 384.3,40.0 620.0,40.0" {
		t.Errorf("series b points %q", got)
	}
	if doc.Texts[0] != "T <&>" {
		t.Errorf("title %q", doc.Texts[0])
	}
	bad := &Chart{Title: "x", Series: []Series{{Name: "a", X: []float64{1}, Y: nil}}}
	if err := bad.WriteSVG(&b); err == nil {
		t.Error("a series with fewer y than x values was drawn")
	}
	logZero := &Chart{Title: "x", LogX: true, Series: []Series{{Name: "a", X: []float64{0}, Y: []float64{1}}}}
	if err := logZero.WriteSVG(&b); err == nil {
		t.Error("x = 0 was drawn on a log axis")
	}
}

func TestNiceMaxAndMedian(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.1: 2, 3: 5, 7: 10, 950: 1000, 2001: 5000} {
		if got := niceMax(in); got != want {
			t.Errorf("niceMax(%v) = %v, want %v", in, got, want)
		}
	}
	if got := median([]float64{5, 1, 3}); got != 3 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
}
