package coordinator_test

import (
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/trustbound/trustbound/coordinator"
)

// gcPercent reads the current GOGC percentage.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// unsetenv unsets key for the test and restores it after.
func unsetenv(t *testing.T, key string) {
	t.Setenv(key, "") // registers the restore
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}

// TuneGC sets what the environment does not set, and leaves what it does.
func TestTuneGC(t *testing.T) {
	oldPct, oldLim := gcPercent(), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPct); debug.SetMemoryLimit(oldLim) })

	unsetenv(t, "GOGC")
	unsetenv(t, "GOMEMLIMIT")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	coordinator.TuneGC(coordinator.DefaultGCPercent, coordinator.DefaultMemoryLimit)
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != coordinator.DefaultGCPercent || l != coordinator.DefaultMemoryLimit {
		t.Fatalf("unset environment: percent %d, limit %d; want %d, %d", p, l, coordinator.DefaultGCPercent, coordinator.DefaultMemoryLimit)
	}

	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(1 << 30)
	coordinator.TuneGC(coordinator.DefaultGCPercent, coordinator.DefaultMemoryLimit)
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != 100 || l != 1<<30 {
		t.Fatalf("GOGC and GOMEMLIMIT set: percent %d, limit %d; the operator's settings must stay", p, l)
	}
}
