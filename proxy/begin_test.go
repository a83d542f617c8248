package proxy

import (
	"testing"
	"time"
)

// TestBeginBoundLearned: the begin bound follows how soon opens were
// answered (four times the slowest of the last ones), between beginFloor
// and the round-trip formula, and only once enough opens were seen.
func TestBeginBoundLearned(t *testing.T) {
	const rtt = 10 * time.Millisecond
	full := beginMin + beginRTTs*rtt
	repeat := func(d time.Duration, n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = d
		}
		return out
	}
	tests := []struct {
		name  string
		opens []time.Duration
		want  time.Duration
	}{
		{"none yet", nil, full},
		{"too few", repeat(5*time.Millisecond, minConnectSamples-1), full},
		{"quick destinations", repeat(5*time.Millisecond, minConnectSamples), beginFloor},
		{"some slower", append(repeat(5*time.Millisecond, 10), 400*time.Millisecond), 1600 * time.Millisecond},
		{"slow destinations", repeat(2*time.Second, minConnectSamples), full},
		{"slow one forgotten", append([]time.Duration{5 * time.Second}, repeat(5*time.Millisecond, connectSamples)...), beginFloor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c connectTimes
			for _, d := range tt.opens {
				c.add(d)
			}
			if got := beginTimeout(rtt, DefaultConnectTimeout, c.bound()); got != tt.want {
				t.Fatalf("bound %v, want %v", got, tt.want)
			}
		})
	}
	if got := beginTimeout(rtt, 2*time.Second, 0); got != 2*time.Second {
		t.Fatalf("bound %v beyond ConnectTimeout", got)
	}
}

// TestAvoidanceRelays: a stream retried after an unanswered BEGIN passes
// over circuits through the failed circuit's relays in any role, not only
// through its exit: a hung exit is often another circuit's middle or
// guard. The guard they share is not avoided.
func TestAvoidanceRelays(t *testing.T) {
	failed := &poolCircuit{guard: "G", exit: "F", relays: []string{"M", "F"}}
	a := avoidance{}.with(failed)
	tests := []struct {
		name string
		pc   *poolCircuit
		want bool
	}{
		{"same exit", &poolCircuit{exit: "F", relays: []string{"N", "F"}}, true},
		{"its exit as middle", &poolCircuit{exit: "B", relays: []string{"F", "B"}}, true},
		{"its middle as exit", &poolCircuit{exit: "M", relays: []string{"N", "M"}}, true},
		{"its exit as guard", &poolCircuit{guard: "F", exit: "B", relays: []string{"N", "B"}}, true},
		{"the same guard", &poolCircuit{guard: "G", exit: "B", relays: []string{"N", "B"}}, false},
		{"other relays", &poolCircuit{exit: "B", relays: []string{"N", "B"}}, false},
		{"exit only known", &poolCircuit{exit: "B"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.avoids(tt.pc); got != tt.want {
				t.Fatalf("avoids %v, want %v", got, tt.want)
			}
			other := &poolCircuit{exit: "C", relays: []string{"P", "C"}}
			if better(tt.pc, other, a, func(x, y *poolCircuit) bool { return true }) == tt.want {
				t.Fatalf("better than a circuit through other relays: %v", !tt.want)
			}
		})
	}
}
