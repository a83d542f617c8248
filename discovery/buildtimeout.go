package discovery

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Settings of the build timeout estimator. The estimate is
//
//	timeout = clamp(P80(last 100 successful build times) * 1.5, 1s, 60s)
//
// and DefaultBuildTimeout until 20 builds succeeded. This is a simpler
// stand-in for Tor's Pareto-fitted circuit build timeout (path-spec 2.4):
// it needs no distribution fit, follows the same recent window, and like
// Tor forgets its samples when many builds in a row time out (the network
// became slower than everything it learned), returning to the default.
const (
	DefaultBuildTimeout  = 30 * time.Second
	MinBuildTimeout      = time.Second
	MaxBuildTimeout      = 60 * time.Second
	buildWindow          = 100
	buildMinSamples      = 20
	buildQuantile        = 0.8
	buildFactor          = 1.5
	buildTimeoutsToReset = 10
)

// TimeoutEstimator learns the circuit build timeout from observed build
// times. It is safe for concurrent use.
type TimeoutEstimator struct {
	mu       sync.Mutex
	samples  []time.Duration // ring of the last buildWindow successes
	next     int
	timeouts int // consecutive timeouts
}

// NewTimeoutEstimator returns an estimator without samples.
func NewTimeoutEstimator() *TimeoutEstimator {
	return &TimeoutEstimator{samples: make([]time.Duration, 0, buildWindow)}
}

// Success records a build that took d.
func (e *TimeoutEstimator) Success(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timeouts = 0
	if len(e.samples) < buildWindow {
		e.samples = append(e.samples, d)
		return
	}
	e.samples[e.next] = d
	e.next = (e.next + 1) % buildWindow
}

// TimedOut records a build that hit the timeout.
func (e *TimeoutEstimator) TimedOut() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timeouts++
	if e.timeouts >= buildTimeoutsToReset {
		e.samples, e.next, e.timeouts = e.samples[:0], 0, 0
	}
}

// Samples returns the number of build times the estimate rests on.
func (e *TimeoutEstimator) Samples() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.samples)
}

// Timeout returns the current build timeout.
func (e *TimeoutEstimator) Timeout() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.samples) < buildMinSamples {
		return DefaultBuildTimeout
	}
	s := slices.Clone(e.samples)
	slices.Sort(s)
	// Nearest-rank quantile.
	i := int(math.Ceil(float64(len(s))*buildQuantile)) - 1
	t := time.Duration(float64(s[min(max(i, 0), len(s)-1)]) * buildFactor)
	return min(max(t, MinBuildTimeout), MaxBuildTimeout)
}
