package node_test

import (
	"testing"

	"github.com/pikcio/pikcio/circuit"
)

// TestCircuitFailureReachesPathBias: a built circuit that fails for
// integrity counts against its guard in discovery; one closed for lack of
// resources does not.
func TestCircuitFailureReachesPathBias(t *testing.T) {
	n := startNet(t, 4, 2, nil)
	c := n.Client
	onFailure := c.CircuitFailureHook()
	if onFailure == nil {
		t.Fatal("the circuit client is not told to report failures")
	}
	circs := c.ClientCircuits()
	if len(circs) == 0 {
		t.Fatal("no circuit")
	}
	path := circs[0].Path()
	failures := func() int {
		for _, g := range c.Directory().Guards() {
			if g.ID == path[0].ID {
				return g.CircuitFailures
			}
		}
		t.Fatal("the circuit's first hop is not a guard")
		return 0
	}
	onFailure(path, &circuit.DestroyedError{Reason: circuit.DestroyResource})
	if got := failures(); got != 0 {
		t.Fatalf("a resource refusal counted: %d", got)
	}
	onFailure(path, &circuit.DestroyedError{Reason: circuit.DestroyIntegrity})
	if got := failures(); got != 1 {
		t.Fatalf("%d path-bias failures after an integrity failure, want 1", got)
	}
}
