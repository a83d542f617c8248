package web

import (
	"fmt"
	"testing"
	"time"
)

// TestActivity: per-second samples from circuits' counters keep the
// bytes of circuits that closed; the ring keeps ThroughputWindow; errors
// are capped, newest first, and show destinations only when asked.
func TestActivity(t *testing.T) {
	a := NewActivity()
	t0 := time.Unix(1_800_000_000, 0)
	c1, c2 := new(int), new(int)
	a.SampleCircuits(t0, map[any][2]uint64{c1: {10, 100}})
	a.SampleCircuits(t0.Add(time.Second), map[any][2]uint64{c1: {15, 150}, c2: {1, 1}})
	a.SampleCircuits(t0.Add(2*time.Second), map[any][2]uint64{c2: {3, 4}}) // c1 closed
	if up, down := a.Totals(); up != 15+3 || down != 150+4 {
		t.Fatalf("totals %d/%d, want 18/154", up, down)
	}
	s := a.Samples()
	if len(s) != 2 || s[0] != (Sample{Time: t0.Unix() + 1, Up: 6, Down: 51}) || s[1] != (Sample{Time: t0.Unix() + 2, Up: 2, Down: 3}) {
		t.Fatalf("samples %+v", s)
	}
	for i := range 2 * throughputSamples {
		a.SampleRelay(t0.Add(time.Duration(3+i)*time.Second), uint64(i))
	}
	if s := a.Samples(); len(s) != throughputSamples || s[len(s)-1].Time != t0.Unix()+int64(2+2*throughputSamples) {
		t.Fatalf("%d samples, last %+v", len(s), s[len(s)-1])
	}

	for i := range maxRecentErrors + 5 {
		a.Record("dial", fmt.Sprintf("error %d", i), "example.org:443")
	}
	hidden, shown := a.Recent(false), a.Recent(true)
	if len(hidden) != maxRecentErrors || hidden[0].Message != fmt.Sprintf("error %d", maxRecentErrors+4) {
		t.Fatalf("%d errors, newest %q", len(hidden), hidden[0].Message)
	}
	if hidden[0].Destination != "" || shown[0].Destination != "example.org:443" {
		t.Fatalf("destinations %q / %q", hidden[0].Destination, shown[0].Destination)
	}
}
