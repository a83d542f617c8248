package control

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pikcio/pikcio/internal/sleep"
	"github.com/pikcio/pikcio/proxy"
)

// Pool is what the server reads of the client's circuit pool
// (*proxy.Pool): its events and counters for Watch, and the circuits of
// an isolation key for the circuit requests.
type Pool interface {
	SetObserver(func(proxy.PoolEvent))
	Stats() proxy.PoolStats
	// CircuitFor is the live circuit that new streams of the isolation
	// key use, if any; NewCircuitFor retires the key's circuits only and
	// says how many.
	CircuitFor(key string) (proxy.CircuitInfo, bool)
	NewCircuitFor(key string) int
}

var _ Pool = (*proxy.Pool)(nil)

// ServePool answers the circuit requests from pool (before, and with a
// nil pool, they answer ErrUnavailable) and runs Watch until Close, which
// waits for it. Call it once, before Close.
func (s *Server) ServePool(pool Pool, guards func() []string, every time.Duration) {
	s.poolMu.Lock()
	s.pool = pool
	s.poolMu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	s.wg.Go(func() { s.Watch(s.ctx, pool, guards, every) })
}

// clientPool is ServePool's pool, or ErrUnavailable.
func (s *Server) clientPool() (Pool, error) {
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	if s.pool == nil {
		return nil, fmt.Errorf("%w: no client role", ErrUnavailable)
	}
	return s.pool, nil
}

// Watch publishes events until ctx ends: circuit_built and circuit_closed
// as pool reports them, and circuit_failed and guards_changed by comparing
// pool's build failure counter and guards (the guards' short IDs) with
// what it saw every interval. pool is nil on a node without a client.
func (s *Server) Watch(ctx context.Context, pool Pool, guards func() []string, every time.Duration) {
	var failures uint64
	if pool != nil {
		pool.SetObserver(func(e proxy.PoolEvent) {
			if e.Built {
				s.Publish(Event{Type: EventCircuitBuilt, Circuit: e.ID})
			} else {
				s.Publish(Event{Type: EventCircuitClosed, Circuit: e.ID, Group: e.Group})
			}
		})
		defer pool.SetObserver(nil)
		failures = pool.Stats().BuildFailures
	}
	var last []string
	first := true
	look := func() {
		if pool != nil {
			for st := pool.Stats(); failures < st.BuildFailures; failures++ {
				s.Publish(Event{Type: EventCircuitFailed, Message: "circuit build failed"})
			}
		}
		ids := guards()
		if !first && !slices.Equal(ids, last) {
			s.Publish(Event{Type: EventGuardsChanged, Guards: ids})
		}
		last, first = ids, false
	}
	look()
	sleep.Every(ctx, every, nil, look)
}
