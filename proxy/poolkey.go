package proxy

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
