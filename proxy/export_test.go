package proxy

import (
	"time"
)

// SetPoolClock replaces the pool's clock.
func SetPoolClock(p *Pool, now func() time.Time) {
	p.mu.Lock()
	p.now = now
	p.mu.Unlock()
}

// DiedAvoidFor is how long builds pass over a dead circuit's relays.
const DiedAvoidFor = diedAvoidFor
