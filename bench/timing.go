package bench

import (
	"fmt"
	"slices"
	"time"
)

// timing says how long each measurement runs: a warm-up, then reps
// repetitions of at least minRep each, reporting the median per-op time.
type timing struct {
	warmup time.Duration
	minRep time.Duration
	reps   int
}

var (
	fullTiming  = timing{warmup: 200 * time.Millisecond, minRep: 300 * time.Millisecond, reps: 5}
	quickTiming = timing{warmup: 5 * time.Millisecond, minRep: 10 * time.Millisecond, reps: 3}
)

// measure runs op until t says, and returns the median nanoseconds per
// call over the repetitions. The first error stops it.
func (t timing) measure(op func() error) (float64, error) {
	base := time.Now()
	return t.measureBy(func() time.Duration { return time.Since(base) }, op)
}

// measureCPU is measure in this process's CPU time (user + system, all
// its threads) instead of elapsed time: for an op that waits, such as an
// fsync, what it costs this process rather than how long it takes.
// Nothing else of the process should run meanwhile (run the collector
// first); work the kernel does on its own threads is not counted.
func (t timing) measureCPU(op func() error) (float64, error) {
	return t.measureBy(cpuTime, op)
}

// measureBy is measure with clock as the clock of the repetitions; the
// warm-up and the calibration are in elapsed time.
func (t timing) measureBy(clock func() time.Duration, op func() error) (float64, error) {
	// Warm-up, which also calibrates how many calls fill a repetition.
	n, start := 0, time.Now()
	for {
		if err := op(); err != nil {
			return 0, err
		}
		n++
		if time.Since(start) >= t.warmup {
			break
		}
	}
	per := float64(time.Since(start)) / float64(n)
	iters := max(1, int(float64(t.minRep)/per))
	samples := make([]float64, 0, t.reps)
	for range t.reps {
		start := clock()
		for range iters {
			if err := op(); err != nil {
				return 0, err
			}
		}
		samples = append(samples, float64(clock()-start)/float64(iters))
	}
	return median(samples), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fmtDur prints nanoseconds in µs or ms.
func fmtDur(ns float64) string {
	switch {
	case ns <= 0:
		return "-"
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
}
