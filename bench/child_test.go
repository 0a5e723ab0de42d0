package bench

import (
	"context"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A /proc/<pid>/stat line of Linux 6.x, its command name holding a space
// and a ')'; utime 1234, stime 56.
const statLine = "4242 (tb (x) y) S 1 4242 4242 0 -1 4194560 1500 0 0 0 1234 56 0 0 20 0 9 0 100 1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

func TestParseProcStat(t *testing.T) {
	got, err := parseProcStat([]byte(statLine))
	if err != nil || got != 1290 {
		t.Fatalf("parseProcStat = %d, %v; want 1290", got, err)
	}
	for _, bad := range []string{"", "4242 tb S 1", "4242 (tb) S 1 2 3", "4242 (tb) S 1 4242 4242 0 -1 4194560 1500 0 0 0 x 56 0", "4242 (tb) S 1 4242 4242 0 -1 4194560 1500 0 0 0 -1 56 0"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	if got, err := parseSchedstat([]byte("171829 0 2\n")); err != nil || got != 171829 {
		t.Fatalf("parseSchedstat = %d, %v; want 171829", got, err)
	}
	for _, bad := range []string{"", " \n", "x 0 2", "-5 0 2"} {
		if _, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("parseSchedstat(%q) accepted", bad)
		}
	}
}

func TestCPUBetween(t *testing.T) {
	a := cpuSample{ticks: 100, threads: map[int]int64{1: 1000, 2: 5000}}
	// Every thread still there, one new: ns from schedstat.
	b := cpuSample{ticks: 103, threads: map[int]int64{1: 4000, 2: 5500, 3: 700}}
	if d, src := cpuBetween(a, b); d != 4200 || src != "schedstat" {
		t.Errorf("cpuBetween = %v %q, want 4.2µs schedstat", d, src)
	}
	// Thread 2 ended: its time is only in the ticks.
	c := cpuSample{ticks: 103, threads: map[int]int64{1: 4000}}
	if d, src := cpuBetween(a, c); d != 30*time.Millisecond || src != "stat" {
		t.Errorf("cpuBetween = %v %q, want 30ms stat", d, src)
	}
}

// TestReadCPUSelf reads this process's CPU time through /proc, as the
// harness reads its child's.
func TestReadCPUSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	s, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.threads) == 0 || s.ticks < 0 {
		t.Fatalf("sample %+v", s)
	}
}

func TestServeCoordinatorRefuses(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "no configuration line",
		"{not json\n":        "configuration line",
		`{"dataKey":"AA=="}`: "dir is empty",
	} {
		err := ServeCoordinator(context.Background(), strings.NewReader(in), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("input %q: error %v, want %q", in, err, want)
		}
	}
}

// TestRoundTripsInProcess is the fallback without a child: the
// coordinator's CPU is labelled an estimate.
func TestRoundTripsInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs round trips")
	}
	rt, err := runRoundTrips(context.Background(), t.TempDir(), quickTiming, []int{2}, 0, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rt.CoordinatorCPUExact || rt.CoordinatorCPUMethod != methodEstimate || len(rt.Levels) != 1 || len(rt.SeparateLevels) != 1 {
		t.Fatalf("round trips: %+v", rt)
	}
	for _, l := range append(rt.Levels, rt.SeparateLevels...) {
		if l.ServerCPUSource != "estimate" || l.ClientCPUPerOpMs != 0 || l.Errors != 0 || l.Ops < 4 {
			t.Errorf("c=%d: %+v", l.Concurrency, l)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte(statLine))
	f.Add([]byte("1 (x) R 0 0 0 0 0 0 0 0 0 0 9223372036854775807 9223372036854775807 0"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := parseProcStat(b); err == nil && n < 0 {
			t.Fatalf("negative ticks %d", n)
		}
	})
}

func FuzzParseSchedstat(f *testing.F) {
	f.Add([]byte("171829 0 2\n"))
	f.Add([]byte("-1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := parseSchedstat(b); err == nil && n < 0 {
			t.Fatalf("negative time %d", n)
		}
	})
}
