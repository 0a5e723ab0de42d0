// Package bench is trustbound's performance harness: it measures each
// figure beside its baseline in one run — verification per evidence format
// against the bare signature checks it cannot avoid and the plain library
// call, cold against warm, attest-and-release round trips over loopback
// HTTPS against the verification inside them, and the coordinator's memory
// with a large manifest and audit trail — and reports ratios, so that the
// numbers mean something on a loaded or slow machine too. The coordinator
// under measurement can run in a child process (Options.Coordinator,
// ServeCoordinator), so that its CPU per round trip and its memory are
// measured alone rather than estimated.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// Options size a run. The zero value is the full run.
type Options struct {
	// Quick shrinks every size (timings, concurrency levels, manifest and
	// audit trail) so that a run takes seconds; its figures are rough.
	Quick bool
	// TempDir is where the stores are written ("": os.TempDir()).
	TempDir string
	// Progress, if set, receives one line per finished section.
	Progress io.Writer
	// Coordinator is the command line of a child process that runs
	// ServeCoordinator (Run adds ChildEnv=1 to its environment), e.g. the
	// trustbound binary with its hidden "bench __coordinator" command.
	// With it, the round-trip and memory sections run the coordinator in
	// that child and measure its CPU and memory alone; without it, they
	// run it in this process, and its CPU per round trip is an estimate.
	Coordinator []string
}

// Machine describes where the figures were measured.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	LoadAvg    string `json:"loadAvg,omitempty"`
}

// Results is one run: what JSON results.json holds.
type Results struct {
	Quick       bool           `json:"quick"`
	Started     time.Time      `json:"started"`
	Seconds     float64        `json:"seconds"`
	Machine     Machine        `json:"machine"`
	Verify      []VerifyResult `json:"verify"`
	RoundTrips  *RoundTrips    `json:"roundTrips"`
	Memory      *MemoryResult  `json:"memory"`
	Targets     []Target       `json:"targets"`
	MachineNote string         `json:"machineNote,omitempty"`
}

// Target is one goal of the issue and whether this run met it.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// sizes is what Quick changes.
type sizes struct {
	timing                        timing
	levels                        []int
	perLevel                      time.Duration
	minOps                        int
	workloads, releases, attested int
}

func (o Options) sizes() sizes {
	if o.Quick {
		return sizes{timing: quickTiming, levels: []int{1, 4, 16}, perLevel: 0, minOps: 16, workloads: 200, releases: 1000, attested: 8}
	}
	return sizes{timing: fullTiming, levels: []int{1, 16, 128}, perLevel: 5 * time.Second, minOps: 200, workloads: 10000, releases: 100000, attested: 500}
}

// Run measures everything once.
func Run(ctx context.Context, o Options) (*Results, error) {
	sz := o.sizes()
	res := &Results{Quick: o.Quick, Started: time.Now().UTC(), Machine: machine()}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	dir, err := os.MkdirTemp(o.TempDir, "trustbound-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// Memory first, so that the peak it reports is not the round trips'.
	mdir := filepath.Join(dir, "memory")
	if err := os.Mkdir(mdir, 0o700); err != nil {
		return nil, err
	}
	progress("memory: %d workloads, %d releases…", sz.workloads, sz.releases)
	if res.Memory, err = runMemory(ctx, mdir, sz.workloads, sz.releases, sz.attested, o.Coordinator); err != nil {
		return nil, fmt.Errorf("bench: memory: %w", err)
	}
	progress("verification per format…")
	if res.Verify, err = runVerify(ctx, sz.timing); err != nil {
		return nil, err
	}
	rdir := filepath.Join(dir, "roundtrip")
	if err := os.Mkdir(rdir, 0o700); err != nil {
		return nil, err
	}
	progress("round trips at concurrency %v…", sz.levels)
	if res.RoundTrips, err = runRoundTrips(ctx, rdir, sz.timing, sz.levels, sz.perLevel, sz.minOps, o.Coordinator); err != nil {
		return nil, fmt.Errorf("bench: round trips: %w", err)
	}
	res.Seconds = time.Since(res.Started).Seconds()
	res.Targets = targets(res)
	return res, nil
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

// targets checks the goals against a run.
func targets(r *Results) []Target {
	var out []Target
	for _, v := range r.Verify {
		switch v.Format {
		case string(attest.FormatSNPReport):
			out = append(out, Target{"warm SNP vs one bare P-384", "≤ 1.2×", fmt.Sprintf("%.2f×", v.WarmOverBare), v.WarmOverBare <= 1.2})
			out = append(out, Target{"go-sev-guest plain call vs warm SNP", "several × slower", fmt.Sprintf("%.1f×", v.PlainOverWarm), v.PlainOverWarm >= 3})
		case string(attest.FormatTDXQuote):
			out = append(out, Target{"warm TDX vs its two bare P-256", "≤ 1.5×", fmt.Sprintf("%.2f×", v.WarmOverBare), v.WarmOverBare <= 1.5})
			out = append(out, Target{"go-tdx-guest plain call vs warm TDX", "several × slower", fmt.Sprintf("%.1f×", v.PlainOverWarm), v.PlainOverWarm >= 3})
		case string(attest.FormatSGXQuoteV3):
			out = append(out, Target{"warm SGX vs its two bare P-256", "≤ 1.5×", fmt.Sprintf("%.2f×", v.WarmOverBare), v.WarmOverBare <= 1.5})
		}
	}
	if rt := r.RoundTrips; rt != nil {
		for _, l := range rt.Levels {
			if l.Concurrency == 16 {
				out = append(out, Target{"c=16 throughput vs what verification alone allows (clients on the same cores)", "≥ 70%", fmt.Sprintf("%.0f%%", l.PctOfVerifyBound), l.PctOfVerifyBound >= 70})
				how := map[bool]string{true: "measured in a child process", false: "estimated"}[rt.CoordinatorCPUExact]
				out = append(out, Target{"c=16 coordinator CPU: verification ÷ coordinator CPU per round trip (" + how + ")", "≥ 70%", fmt.Sprintf("%.0f%%", l.CoordinatorPctOfVerifyBound), l.CoordinatorPctOfVerifyBound >= 70})
				if f := rt.Floor; f != nil {
					out = append(out, Target{"  ceiling set by the round trip's own crypto and durable write alone (clients on the same cores / coordinator alone)", "≥ 70%",
						fmt.Sprintf("%.0f%% / %.0f%%", f.MaxPctOfVerifyBound, f.MaxCoordinatorPct), f.MaxPctOfVerifyBound >= 70})
					out = append(out, Target{"  ceiling of the least a release can be: verify + seal, the client's report signature (same two ways)", "≥ 70%",
						fmt.Sprintf("%.0f%% / %.0f%%", f.MinimalMaxPct, f.MinimalMaxCoordinatorPct), f.MinimalMaxPct >= 70})
				}
			}
		}
		errs := 0
		for _, l := range slices.Concat(rt.Levels, rt.SeparateLevels, rt.AttestOnlyLevels) {
			errs += l.Errors
		}
		out = append(out, Target{"round-trip errors", "0", fmt.Sprint(errs), errs == 0})
	}
	if m := r.Memory; m != nil {
		peak := max(m.RSSMiB, m.PeakRSSMiB)
		who := map[bool]string{true: "coordinator process", false: "process"}[m.Process == memChild]
		out = append(out, Target{fmt.Sprintf("%s RSS at %d workloads / %d releases (peak)", who, m.Workloads, m.Releases), "< 200 MiB", fmt.Sprintf("%.0f MiB", peak), peak < 200})
		out = append(out, Target{fmt.Sprintf("a manifest of %d workloads accepted", m.WorkloadsAsked), "accepted", fmt.Sprintf("%d fit in %d MiB", m.Workloads, manifest.MaxSize>>20), m.Workloads >= m.WorkloadsAsked})
	}
	return out
}

func ratio(x float64) string {
	if x == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", x)
}

// WriteText prints the run as tables of figures and ratios.
func (r *Results) WriteText(w io.Writer) error {
	var b bytes.Buffer
	m := r.Machine
	fmt.Fprintf(&b, "trustbound bench (%s): %s, %d cores (GOMAXPROCS %d), %s, load average %s\n",
		map[bool]string{true: "quick: rough figures", false: "full"}[r.Quick], m.CPU, m.Cores, m.GOMAXPROCS, m.GoVersion, m.LoadAvg)
	b.WriteString("Each figure is the median of several repetitions; read the ratios, which are measured side by side.\n\n")

	b.WriteString("Verification, one call (warm caches unless said otherwise)\n")
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "format\twarm\tbare checks\twarm/bare\tplain library\tplain/warm\tcold\tcold/warm")
	for _, v := range r.Verify {
		plain := fmtDur(v.PlainNs)
		if v.PlainNs == 0 {
			plain = "n/a"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s\t%s\t%s\t%s\t%s\n", v.Format, fmtDur(v.WarmNs), fmtDur(v.BareNs), v.BareWhat, ratio(v.WarmOverBare), plain, ratio(v.PlainOverWarm), fmtDur(v.ColdNs), ratio(v.ColdOverWarm))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range r.Verify {
		fmt.Fprintf(&b, "  %s: %s\n    plain: %s\n    cold: %s\n", v.Format, v.Vector, v.PlainWhat, v.ColdWhat)
	}

	if rt := r.RoundTrips; rt != nil {
		fmt.Fprintf(&b, "\nAttest-and-release round trips over loopback HTTPS (simulated SEV-SNP VM; challenge, attest, release of 2 secrets + certificate, open)\n")
		fmt.Fprintf(&b, "verification alone: %.3f ms; %d cores → verification alone allows %.0f ops/s\n",
			rt.VerifyMs, rt.Cores, float64(rt.Cores)/(rt.VerifyMs/1e3))
		tables := []struct {
			title     string
			clientCPU float64
			levels    []RoundTripResult
		}{
			{"combined route (POST /v1/attest-release: one request, secrets under one HPKE context)", rt.ClientCPUMs, rt.Levels},
			{"separate requests (POST /v1/attest, then /v1/release with the token; the agent's fallback for an older coordinator)", rt.SeparateClientCPUMs, rt.SeparateLevels},
			{"attest only, the like-for-like baseline (POST /v1/attest: verification, appraisal, token; nothing released)", rt.AttestOnlyClientCPUMs, rt.AttestOnlyLevels},
		}
		if f := rt.Floor; f != nil {
			fmt.Fprintf(&b, "floor, each step alone (no TLS, HTTP, JSON, appraisal or GC): %s\n", f.floorNote())
			fmt.Fprintf(&b, "  → a round trip with only these steps reaches at most %.0f%% of the verification bound with its clients on these cores, %.0f%% for the coordinator alone\n",
				f.MaxPctOfVerifyBound, f.MaxCoordinatorPct)
			fmt.Fprintf(&b, "  → the least a release can be (verify and seal, the durable record taken as free; the client only signs its report): at most %.0f%% with clients on these cores, %.0f%% for the coordinator alone\n",
				f.MinimalMaxPct, f.MinimalMaxCoordinatorPct)
		}
		fmt.Fprintf(&b, "coordinator CPU per round trip %s\n", rt.CoordinatorCPUMethod)
		est := map[bool]string{true: "coordinator", false: "coordinator, est."}[rt.CoordinatorCPUExact]
		for _, t := range tables {
			if len(t.levels) == 0 {
				continue
			}
			fmt.Fprintf(&b, "%s; clients' own crypto per round trip, measured alone: %.3f ms\n", t.title, t.clientCPU)
			tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
			cols := "concurrency\tops\terrors\tops/s\tp50\tp99\tCPU/op (all)\t"
			if rt.CoordinatorCPUExact {
				cols += "CPU/op (clients)\t"
			}
			fmt.Fprintf(tw, "%sCPU/op (%s)\tcoordinator CPU/verify\t%% of verify bound\t%% (coordinator alone)\t%% of attest-only ops/s\n", cols, est)
			for _, l := range t.levels {
				clients := ""
				if rt.CoordinatorCPUExact {
					clients = fmt.Sprintf("%.2f ms\t", l.ClientCPUPerOpMs)
				}
				ofBase := "—"
				if l.PctOfAttestOnly > 0 {
					ofBase = fmt.Sprintf("%.0f%%", l.PctOfAttestOnly)
				}
				fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.2f ms\t%.2f ms\t%.2f ms\t%s%.2f ms\t%.1f×\t%.0f%%\t%.0f%%\t%s\n", l.Concurrency, l.Ops, l.Errors, l.OpsPerSec, l.P50Ms, l.P99Ms, l.CPUPerOpMs, clients, l.ServerCPUPerOpMs, l.CPUOverVerify, l.PctOfVerifyBound, l.CoordinatorPctOfVerifyBound, ofBase)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	if mm := r.Memory; mm != nil {
		proc := mm.Process
		if proc == "" {
			proc = memProcess
		}
		fmt.Fprintf(&b, "\nMemory (%s; after GC)\n", proc)
		if mm.Workloads < mm.WorkloadsAsked {
			fmt.Fprintf(&b, "NOTE: %d workloads asked, but only %d fit in a manifest (manifest.MaxSize, %d MiB; %d bytes)\n", mm.WorkloadsAsked, mm.Workloads, manifest.MaxSize>>20, mm.ManifestBytes)
		}
		fmt.Fprintf(&b, "%d workloads in the manifest (%.1f MiB of JSON), %d releases in the audit trail, %d workloads attested over HTTPS\n", mm.Workloads, float64(mm.ManifestBytes)/(1<<20), mm.Releases, mm.Attested)
		fmt.Fprintf(&b, "RSS before opening the coordinator %.1f MiB, after %.1f MiB (Go heap in use %.1f MiB), peak incl. one full audit read %.1f MiB\n", mm.BaselineRSSMiB, mm.RSSMiB, mm.HeapMiB, mm.PeakRSSMiB)
		fmt.Fprintf(&b, "audit read (GET /v1/audit in %d pages of at most %d, %d records): %.0f ms; store file %.1f MiB\n", mm.AuditPages, api.MaxAuditLimit, mm.AuditRecords, mm.AuditReadMs, mm.StoreMiB)
		if mm.AuditReadError != "" {
			fmt.Fprintf(&b, "audit read FAILED: %s\n", mm.AuditReadError)
		}
	}
	if len(r.Targets) > 0 {
		b.WriteString("\nTargets\n")
		tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
		for _, t := range r.Targets {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", map[bool]string{true: "met", false: "NOT MET"}[t.Met], t.Name, t.Goal, t.Measured)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Charts are the plots of a run: throughput and latency against
// concurrency.
func (r *Results) Charts() map[string]*Chart {
	rt := r.RoundTrips
	if rt == nil || len(rt.Levels) == 0 {
		return nil
	}
	var c, ops, p50, p99, bound, attestOnly []float64
	for _, l := range rt.Levels {
		c = append(c, float64(l.Concurrency))
		ops = append(ops, l.OpsPerSec)
		p50 = append(p50, l.P50Ms)
		p99 = append(p99, l.P99Ms)
		bound = append(bound, float64(rt.Cores)/(rt.VerifyMs/1e3))
	}
	series := []Series{{Name: "attest and release", Color: "#1f77b4", X: c, Y: ops}}
	if len(rt.AttestOnlyLevels) == len(rt.Levels) {
		for _, l := range rt.AttestOnlyLevels {
			attestOnly = append(attestOnly, l.OpsPerSec)
		}
		series = append(series, Series{Name: "attest only (same path, nothing released)", Color: "#ff7f0e", X: c, Y: attestOnly})
	}
	series = append(series, Series{Name: "verification alone allows", Color: "#999999", X: c, Y: bound})
	return map[string]*Chart{
		"throughput.svg": {Title: "Attest-and-release throughput", XLabel: "concurrent clients", YLabel: "round trips per second", LogX: true,
			Series: series},
		"latency.svg": {Title: "Attest-and-release latency", XLabel: "concurrent clients", YLabel: "milliseconds", LogX: true,
			Series: []Series{{Name: "p50", Color: "#2ca02c", X: c, Y: p50}, {Name: "p99", Color: "#d62728", X: c, Y: p99}}},
	}
}

// WriteFiles writes results.json, results.txt and the charts into dir.
func (r *Results) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.txt"), txt.Bytes(), 0o644); err != nil {
		return err
	}
	for name, c := range r.Charts() {
		var b bytes.Buffer
		if err := c.WriteSVG(&b); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
