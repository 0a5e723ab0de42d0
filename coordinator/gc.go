package coordinator

import (
	"os"
	"runtime/debug"
)

// The garbage collector settings `trustbound serve` runs with. A round
// trip allocates a few hundred KiB that die with the request, while the
// live heap stays small (≈ 11 MiB with 10,000 workloads): at Go's default
// GOGC=100 the collector runs often for little, ≈ 0.3 ms of CPU per round
// trip. A higher percentage with a soft memory limit collects rarely while
// the heap is small and as often as needed near the limit.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 160 << 20 // bytes; soft (runtime/debug.SetMemoryLimit)
)

// TuneGC applies percent and limit (bytes) to this process's garbage
// collector, each unless the operator set it with the GOGC or GOMEMLIMIT
// environment variable; zero leaves a setting as it is.
func TuneGC(percent int, limit int64) {
	if _, set := os.LookupEnv("GOGC"); !set && percent > 0 {
		debug.SetGCPercent(percent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}
