package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

// dialMany opens n streams of group key at once, keeps them all open, and
// returns how many failed.
func dialMany(t *testing.T, e *poolEnv, key string, n int) (failed int, firstErr error) {
	t.Helper()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		conns []net.Conn
	)
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := e.p.Dial(ctx, key, proxytest.ExitOnlyName, e.port)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns = append(conns, c)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return failed, firstErr
}

// TestPoolNoGroupCeiling: one isolation group is not capped at what one
// circuit carries. When the exit refuses a stream because the circuit is
// full, or the pool's own per-circuit cap is reached, the group gets
// another circuit.
func TestPoolNoGroupCeiling(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exitCap   int // the exit refuses beyond this
		poolCap   int // the pool stops at this
		n         int
		wantFull  bool
		wantBuilt int
	}{
		{name: "exit refuses", exitCap: 4, poolCap: 0, n: 20, wantFull: true, wantBuilt: 5},
		{name: "pool cap", exitCap: 0, poolCap: 4, n: 20, wantBuilt: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1, MaxStreamsPerCircuit: tc.poolCap}, false)
			e.b.SetStreamCap(tc.exitCap)
			if failed, err := dialMany(t, e, "one group", tc.n); failed != 0 {
				t.Fatalf("%d of %d streams of one group failed: %v", failed, tc.n, err)
			}
			st := e.p.Stats()
			if st.Groups != 1 || st.Streams != tc.n {
				t.Fatalf("stats %+v", st)
			}
			if st.Circuits < tc.wantBuilt {
				t.Fatalf("%d circuits for %d streams, want at least %d", st.Circuits, tc.n, tc.wantBuilt)
			}
			if (st.FullRetries > 0) != tc.wantFull {
				t.Fatalf("%d full retries", st.FullRetries)
			}
			for _, c := range e.b.Circuits() {
				if c.Dead() {
					t.Fatal("a full circuit was closed")
				}
			}
		})
	}
}

// TestPoolBeginTimeoutOtherExit: a stream open that gets no answer within
// the bound learned from the circuit's round trip goes to a circuit
// through another exit at once (not after the 30 s connect timeout), and
// the silent circuit takes no more streams.
func TestPoolBeginTimeoutOtherExit(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 2, ConnectTimeout: 30 * time.Second}, false)
	e.b.SetExits("exit-a", "exit-b", "exit-c")
	e.b.SetRTT(time.Millisecond)
	e.p.Start()
	waitFor(t, "2 prebuilt circuits", func() bool { return e.p.Stats().Clean == 2 })
	first := e.dial(t, "g") // the group's circuit
	_ = first
	var stalled *proxytest.Circuit
	for _, c := range e.b.Circuits() {
		if c.Streams() == 1 {
			stalled = c
		}
	}
	stalled.Stall()
	took := echoDial(t, e, "g")
	if took > 10*time.Second {
		t.Fatalf("retry after %v", took)
	}
	t.Logf("unanswered open retried; stream open after %v", took.Round(time.Millisecond))
	st := e.p.Stats()
	if st.BeginTimeouts != 1 {
		t.Fatalf("%d begin timeouts, want 1", st.BeginTimeouts)
	}
	for _, cc := range e.b.Circuits() {
		if cc != stalled && cc.Streams() == 1 && cc.ExitID() == stalled.ExitID() {
			t.Fatal("retried through the same exit")
		}
	}
	// New streams of the group avoid the silent circuit.
	e.dial(t, "g")
	if n := len(stalled.Opened()); n != 2 {
		t.Fatalf("%d opens on the silent circuit, want 2", n)
	}
}

// TestPoolSparesDifferentExits: the clean circuits the pool keeps ready go
// through different exits, so one exit's death leaves a spare.
func TestPoolSparesDifferentExits(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 3}, false)
	e.b.SetExits("exit-a", "exit-a", "exit-b", "exit-b", "exit-c")
	e.p.Start()
	waitFor(t, "3 prebuilt circuits", func() bool { return e.p.Stats().Clean == 3 })
	seen := map[string]bool{}
	for _, c := range e.b.Circuits() {
		seen[c.ExitID()] = true
	}
	if len(seen) != 3 {
		t.Fatalf("spares through %d exits, want 3: %v", len(seen), seen)
	}
}

// TestPoolSparesShareNoRelay: the spares share no middle either (nor a
// relay that is one's middle and another's exit), so that the death of a
// middle, as of an exit, leaves spares that did not go through it.
func TestPoolSparesShareNoRelay(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 3}, false)
	e.b.SetExits("exit-a", "exit-b", "exit-c")
	e.b.SetMiddles("mid-a", "mid-a", "mid-a", "exit-a", "mid-b", "mid-c")
	e.p.Start()
	waitFor(t, "3 prebuilt circuits", func() bool { return e.p.Stats().Clean == 3 })
	seen := map[string]int{}
	for _, c := range e.b.Circuits() {
		for _, r := range c.RelayIDs() {
			seen[r]++
			if seen[r] > 1 {
				t.Fatalf("relay %s in two spares: %v", r, seen)
			}
		}
	}
}

// TestPoolCircuitFullNotDestinationError: ErrCircuitFull beyond the retries
// reaches the caller as such, never as a destination failure.
func TestPoolCircuitFullNotDestinationError(t *testing.T) {
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1}, false)
	e.b.FailHost(proxytest.ExitOnlyName, endreason.ErrCircuitFull)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.p.Dial(ctx, "g", proxytest.ExitOnlyName, e.port)
	if !errors.Is(err, endreason.ErrCircuitFull) {
		t.Fatalf("err %v", err)
	}
}

// TestPoolRetriesAcrossExits: a stream open whose BEGIN goes unanswered on
// two circuits in a row (two exits hung) goes on to a third exit, as Tor
// retries a stream on new circuits until its stream timeout, rather than
// waiting out ConnectTimeout on the second.
func TestPoolRetriesAcrossExits(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1, ConnectTimeout: 30 * time.Second}, false)
	e.b.SetExits("exit-a", "exit-b", "exit-c")
	e.b.SetRTT(time.Millisecond)
	e.b.StallExit("exit-a")
	e.b.StallExit("exit-b")
	echoDial(t, e, "g")
	if st := e.p.Stats(); st.BeginTimeouts != 2 || st.Retries != 2 {
		t.Fatalf("%d begin timeouts, %d retries; want 2 and 2", st.BeginTimeouts, st.Retries)
	}
	for _, cc := range e.b.Circuits() {
		if cc.Streams() == 1 && cc.ExitID() != "exit-c" {
			t.Fatalf("stream on %s, want exit-c", cc.ExitID())
		}
	}
}

// TestPoolRetriesWithinConnectTimeout: however many exits hang, a stream
// open gives up ConnectTimeout after the Dial, not ConnectTimeout after
// its last retry began.
func TestPoolRetriesWithinConnectTimeout(t *testing.T) {
	checkLeaks(t)
	const connect = 3500 * time.Millisecond // the begin bound is 3 s + 10 ms
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1, ConnectTimeout: connect}, false)
	e.b.SetExits("exit-a", "exit-b", "exit-c")
	e.b.SetRTT(time.Millisecond)
	e.b.StallHost(proxytest.ExitOnlyName)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.p.Dial(ctx, "g", proxytest.ExitOnlyName, e.port)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v, want a deadline error", err)
	}
	// One retry fits: the second attempt waits the rest of ConnectTimeout
	// (before, it waited a whole ConnectTimeout of its own: 6.5 s).
	if took > connect+2*time.Second {
		t.Fatalf("dial failed after %v, want about %v", took, connect)
	}
	if got := openedOn(e.b); len(got) != 2 {
		t.Fatalf("opens %v, want one on each of two circuits", got)
	}
}

// TestPoolBeginBoundLearned: once opens were answered in milliseconds, a
// hung exit is left after about beginFloor (1 s), not after 3 s: browsing
// carries on within about a second of an exit hanging.
func TestPoolBeginBoundLearned(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1, ConnectTimeout: 30 * time.Second}, false)
	e.b.SetExits("exit-a", "exit-b")
	e.b.SetRTT(time.Millisecond)
	for range 8 {
		e.dial(t, "g").Close()
	}
	e.b.StallExit("exit-a") // the group's circuit's
	took := echoDial(t, e, "g")
	t.Logf("hung exit left; stream open after %v", took.Round(time.Millisecond))
	if st := e.p.Stats(); st.BeginTimeouts != 1 {
		t.Fatalf("%d begin timeouts, want 1", st.BeginTimeouts)
	}
	// Before, the bound was 3 s whatever the opens before: well apart
	// from 1 s even on a loaded machine.
	if took >= 2500*time.Millisecond {
		t.Fatalf("hung exit left after %v, want about 1 s", took)
	}
}

// echoDial dials ExitOnlyName for the group key within 20 s, checks the
// stream echoes, closes it at the test's end, and returns how long the
// dial took.
func echoDial(t *testing.T, e *poolEnv, key string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	c, err := e.p.Dial(ctx, key, proxytest.ExitOnlyName, e.port)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Cleanup(func() { c.Close() })
	echo(t, c)
	return took
}

// TestPoolBuildsAvoidDeadCircuitsRelays: for a few seconds after a circuit
// dies, builds pass over its exit and middle (the relay that died is one
// of them), then take them again. Before, the replacement of a circuit
// whose middle was killed could go through that middle again, and fail
// only when the guard's dial of it timed out (TestFailover's middle case:
// a new fetch 1.3 s after the kill).
func TestPoolBuildsAvoidDeadCircuitsRelays(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 1}, false)
	// In turn, the second build would take the first one's relays again.
	e.b.SetExits("exit-a", "exit-a", "exit-b")
	e.b.SetMiddles("mid-a", "mid-a", "mid-b")
	e.p.Start()
	replaced := func(n int) *proxytest.Circuit {
		t.Helper()
		waitFor(t, fmt.Sprintf("build %d", n), func() bool { return e.b.Builds() == n && e.p.Stats().Clean == 1 })
		return e.b.Circuits()[n-1]
	}
	first := replaced(1)
	first.Die()
	second := replaced(2)
	if second.ExitID() == first.ExitID() || slices.Contains(second.RelayIDs(), "mid-a") {
		t.Fatalf("replacement through %v, the dead circuit's relays %v", second.RelayIDs(), first.RelayIDs())
	}
	e.clock.Advance(proxy.DiedAvoidFor)
	second.Die()
	if third := replaced(3); third.ExitID() != "exit-a" || !slices.Contains(third.RelayIDs(), "mid-a") {
		t.Fatalf("relays %v still passed over %v after the first circuit died", first.RelayIDs(), proxy.DiedAvoidFor)
	}
}
