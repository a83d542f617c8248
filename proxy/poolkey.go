package proxy

import (
	"context"
	"fmt"
	"net/netip"
)

// resolvingCircuit is a Circuit that can ask its exit to resolve
// (*circuit.Circuit is one).
type resolvingCircuit interface {
	Resolve(ctx context.Context, name string) ([]netip.Addr, error)
	ResolvePTR(ctx context.Context, ip netip.Addr) (string, error)
}

var _ Resolver = (*Pool)(nil)

// Resolve resolves name at the exit of a circuit of the isolation group
// isolationKey (SOCKS RESOLVE).
func (p *Pool) Resolve(ctx context.Context, isolationKey, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := p.withCircuit(ctx, isolationKey, func(ctx context.Context, rc resolvingCircuit) (err error) {
		out, err = rc.Resolve(ctx, name)
		return err
	})
	return out, err
}

// ResolvePTR looks ip up at the exit of a circuit of the isolation group
// isolationKey (SOCKS RESOLVE_PTR).
func (p *Pool) ResolvePTR(ctx context.Context, isolationKey string, ip netip.Addr) (string, error) {
	var out string
	err := p.withCircuit(ctx, isolationKey, func(ctx context.Context, rc resolvingCircuit) (err error) {
		out, err = rc.ResolvePTR(ctx, ip)
		return err
	})
	return out, err
}

// withCircuit runs f on a circuit of the group, counted as a stream while
// f runs, within the pool's connect timeout.
func (p *Pool) withCircuit(ctx context.Context, key string, f func(context.Context, resolvingCircuit) error) error {
	pc, err := p.claim(ctx, key, avoidance{})
	if err != nil {
		return err
	}
	defer p.release(pc)
	rc, ok := pc.c.(resolvingCircuit)
	if !ok {
		return fmt.Errorf("resolve: %w", errNoResolve)
	}
	p.mu.Lock()
	timeout := p.opts.ConnectTimeout
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(ctx, rc)
}

// CircuitFor describes the circuit that new streams of the isolation key
// would use now: the group's live, unretired circuit claimed last. ok is
// false when the key has none (before its first stream, or after
// NewCircuitFor or NewIdentity).
func (p *Pool) CircuitFor(key string) (ci CircuitInfo, ok bool) {
	p.mu.Lock()
	var best *poolCircuit
	now := p.now()
	for pc := range p.circs {
		if pc.bound && pc.key == key && p.usableLocked(pc, now) {
			if best == nil || pc.firstUse.After(best.firstUse) {
				best = pc
			}
		}
	}
	p.unlock()
	if best == nil {
		return CircuitInfo{}, false
	}
	for _, c := range p.Snapshot() {
		if c.ID == best.id {
			return c, true
		}
	}
	return CircuitInfo{}, false
}

// NewCircuitFor retires the circuits of one isolation key for new streams
// (open streams continue): the key's next stream gets a fresh circuit, and
// other keys keep theirs. It returns how many circuits it retired.
func (p *Pool) NewCircuitFor(key string) int {
	p.mu.Lock()
	n := 0
	for pc := range p.circs {
		if pc.bound && pc.key == key && !pc.retired {
			p.retireLocked(pc)
			n++
		}
	}
	p.unlock()
	if n > 0 {
		p.log.WithField("circuits", n).Info("new circuit for one isolation group: retired its circuits")
		p.poke()
	}
	return n
}

// PoolEvent is a circuit entering (Built) or leaving the pool.
type PoolEvent struct {
	Built bool
	ID    uint64
	Group int // isolation group index of a circuit leaving; 0 if clean
}

// SetObserver sets f to be told of every circuit that enters or leaves the
// pool (the control API's event stream). f is called with the pool's lock
// held: it must return quickly and must not call the pool.
func (p *Pool) SetObserver(f func(PoolEvent)) {
	p.mu.Lock()
	p.observer = f
	p.mu.Unlock()
}

func (p *Pool) observeLocked(e PoolEvent) {
	if p.observer != nil {
		p.observer(e)
	}
}

func groupIndex(pc *poolCircuit) int {
	if pc.bound && pc.group != nil {
		return pc.group.index
	}
	return 0
}
